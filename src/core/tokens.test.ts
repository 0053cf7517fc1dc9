import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {SignJWT, jwtVerify} from 'jose'
import {CLOCK_SKEW_SECONDS, mintToken, verifyToken} from './tokens.js'

const key = (secret: string) => new TextEncoder().encode(secret)

describe('bearer tokens', () => {
  it('verifies tokens it minted and names the user', () => {
    fc.assert(fc.property(fc.integer({min: 1, max: Number.MAX_SAFE_INTEGER}), (user) => verifyToken(mintToken(user, 's3cret-1'), 's3cret-1') === user))
  })

  it('rejects other secrets, tampering, other algorithms and garbage', () => {
    const token = mintToken(42, 'a-secret')
    expect(verifyToken(token, 'b-secret')).toBeNull()
    const [header, claims, sig] = token.split('.')
    const forged = Buffer.from(JSON.stringify({sub: '1', iat: 0, exp: 2e9})).toString('base64url')
    expect(verifyToken(`${header}.${forged}.${sig}`, 'a-secret')).toBeNull()
    expect(verifyToken(`${header}.${claims}.${sig}x`, 'a-secret')).toBeNull()
    const none = Buffer.from(JSON.stringify({alg: 'none'})).toString('base64url')
    expect(verifyToken(`${none}.${claims}.`, 'a-secret')).toBeNull()
    for (const bad of ['', '.', '..', 'abc', 'a.b.c', `${header}.${claims}`, `${header}.${claims}.`]) expect(verifyToken(bad, 'a-secret')).toBeNull()
  })

  it('refuses to mint for ids the server would reject', () => {
    for (const bad of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) expect(() => mintToken(bad, 'a-secret')).toThrow(/userId/)
  })

  it('expires after the ttl, tolerating the clock skew both ways', () => {
    const issued = new Date('2030-01-01T00:00:00Z')
    const at = (seconds: number) => new Date(issued.getTime() + seconds * 1000)
    const token = mintToken(7, 'a-secret', issued, 3600)
    expect(verifyToken(token, 'a-secret', at(0))).toBe(7)
    expect(verifyToken(token, 'a-secret', at(3600 + CLOCK_SKEW_SECONDS - 1))).toBe(7)
    expect(verifyToken(token, 'a-secret', at(3600 + CLOCK_SKEW_SECONDS))).toBeNull()
    // issued by a machine whose clock runs ahead
    expect(verifyToken(token, 'a-secret', at(-CLOCK_SKEW_SECONDS + 1))).toBe(7)
    expect(verifyToken(token, 'a-secret', at(-CLOCK_SKEW_SECONDS - 1))).toBeNull()
    // the default lifetime is a day
    expect(verifyToken(mintToken(7, 'a-secret', at(-23 * 3600)), 'a-secret', issued)).toBe(7)
    expect(verifyToken(mintToken(7, 'a-secret', at(-25 * 3600)), 'a-secret', issued)).toBeNull()
  })

  it('are standard JWTs: jose reads ours, and we read jose\'s', async () => {
    const ours = mintToken(42, 'a-secret')
    const {payload, protectedHeader} = await jwtVerify(ours, key('a-secret'), {algorithms: ['HS256']})
    expect(protectedHeader.alg).toBe('HS256')
    expect(payload.sub).toBe('42')
    expect(payload.exp! - payload.iat!).toBe(24 * 3600)
    const theirs = await new SignJWT({}).setProtectedHeader({alg: 'HS256'}).setSubject('9').setIssuedAt().setExpirationTime('1h').sign(key('a-secret'))
    expect(verifyToken(theirs, 'a-secret')).toBe(9)
    // without an expiry a token never expires: refused
    const eternal = await new SignJWT({}).setProtectedHeader({alg: 'HS256'}).setSubject('9').setIssuedAt().sign(key('a-secret'))
    expect(verifyToken(eternal, 'a-secret')).toBeNull()
    const notYet = await new SignJWT({}).setProtectedHeader({alg: 'HS256'}).setSubject('9').setNotBefore('1h').setExpirationTime('2h').sign(key('a-secret'))
    expect(verifyToken(notYet, 'a-secret')).toBeNull()
    for (const sub of ['0', '-1', '1.5', '9007199254740992', 'abc']) {
      const t = await new SignJWT({}).setProtectedHeader({alg: 'HS256'}).setSubject(sub).setExpirationTime('1h').sign(key('a-secret'))
      expect(verifyToken(t, 'a-secret'), sub).toBeNull()
    }
  })
})
