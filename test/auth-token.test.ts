import {describe, expect, it} from 'vitest'
import {verifyToken} from '../src/core/tokens.js'
import {runCli} from './helpers/cli.js'
import {seedWorld, TEST_SECRET, useServer} from './helpers/server.js'

const env = {LIVEDROP_SECRET: TEST_SECRET}

describe('livedrop token', () => {
  it('refuses ids the server would reject: exit 2 with a hint, and a JSON error under --json', async () => {
    for (const user of ['0', '1.5', '9007199254740992']) {
      const text = await runCli(['token', '--user', user], {env})
      expect(text.code, `${user}: ${text.stderr}`).toBe(2)
      expect(text.stderr).toContain('--user')
      expect(text.stderr).toMatch(/^Hint: /m)
      expect(text.stdout).toBe('')
    }
    for (const user of ['-3', 'abc', '99999999999999999999']) {
      const json = await runCli(['token', '--user', user, '--json'], {env})
      expect(json.code, `${user}: ${json.stdout}`).toBe(2)
      expect(JSON.parse(json.stdout).error).toMatchObject({code: 'USAGE', exitCode: 2})
      expect(JSON.parse(json.stdout).error.hint).toBeTypeOf('string')
    }
  })

  it('refuses a ttl that is not a duration of 1 s to 365 d', async () => {
    for (const ttl of ['0s', 'forever', '400d']) {
      const res = await runCli(['token', '--user', '2', '--ttl', ttl], {env})
      expect(res.code, `${ttl}: ${res.stderr}`).toBe(2)
      expect(res.stderr).toContain('--ttl')
      expect(res.stderr).toMatch(/^Hint: /m)
    }
  })

  it('mints a token that expires after --ttl (default 24h)', async () => {
    const res = await runCli(['token', '--user', '9007199254740991', '--ttl', '15m', '--json'], {env})
    expect(res.code, res.stderr).toBe(0)
    const out = JSON.parse(res.stdout) as {token: string; userId: number; expiresAt: string}
    expect(out.userId).toBe(Number.MAX_SAFE_INTEGER)
    expect(verifyToken(out.token, TEST_SECRET)).toBe(Number.MAX_SAFE_INTEGER)
    const claims = JSON.parse(Buffer.from(out.token.split('.')[1], 'base64url').toString()) as {iat: number; exp: number}
    expect(claims.exp - claims.iat).toBe(15 * 60)
    expect(new Date(out.expiresAt).getTime()).toBe(claims.exp * 1000)
    expect(verifyToken(out.token, TEST_SECRET, new Date((claims.exp + 120) * 1000))).toBeNull()
    const plain = await runCli(['token', '--user', '42'], {env})
    const day = JSON.parse(Buffer.from(plain.stdout.trim().split('.')[1], 'base64url').toString()) as {iat: number; exp: number}
    expect(day.exp - day.iat).toBe(24 * 3600)
  })
})

describe('a token from the CLI against the server', () => {
  const s = useServer('postgres')
  it('opens the user\'s own listings', async () => {
    await seedWorld(s.engine, {users: 3, stock: 1})
    const token = (await runCli(['token', '--user', '3'], {env})).stdout.trim()
    expect((await s.app.inject({method: 'GET', url: '/me/orders', headers: {authorization: `Bearer ${token}`}})).statusCode).toBe(200)
  })
})
