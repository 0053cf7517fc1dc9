import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {mintToken, verifyToken} from './auth.js'

describe('bearer tokens', () => {
  it('verifies tokens it minted and names the user', () => {
    fc.assert(fc.property(fc.integer({min: 1, max: 2 ** 40}), (user) => verifyToken(mintToken(user, 's3'), 's3') === user))
  })

  it('rejects other secrets, tampering and garbage', () => {
    const token = mintToken(42, 'a')
    expect(verifyToken(token, 'b')).toBeNull()
    const [body, sig] = token.split('.')
    const forged = Buffer.from(JSON.stringify({sub: 1, iat: 0})).toString('base64url')
    expect(verifyToken(`${forged}.${sig}`, 'a')).toBeNull()
    expect(verifyToken(`${body}.${sig}x`, 'a')).toBeNull()
    for (const bad of ['', '.', 'abc', 'a.b.c', `${body}.`]) expect(verifyToken(bad, 'a')).toBeNull()
  })
})
