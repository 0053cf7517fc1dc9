import {describe, expect, it} from 'vitest'
import {request} from 'undici'
import {mintToken} from '../src/core/tokens.js'
import {seedWorld, TEST_SECRET, useServer} from './helpers/server.js'

const HOUR = 3_600_000

describe('bearer tokens and access over HTTP', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1e6, rateLimitBurst: 1e6})
  const token = (user: number, issuedAgoMs = 0) => mintToken(user, TEST_SECRET, new Date(Date.now() - issuedAgoMs))
  const get = (url: string, authorization?: string) => s.app.inject({method: 'GET', url, headers: authorization ? {authorization} : {}})

  it('seeds users', async () => {
    await seedWorld(s.engine, {users: 5, stock: 10})
  })

  it('tokens expire after their ttl (default 24 h): 401 in the API shape', async () => {
    expect((await get('/me/orders', `Bearer ${token(2, 23 * HOUR)}`)).statusCode).toBe(200)
    for (const stale of [token(2, 25 * HOUR), mintToken(2, TEST_SECRET, new Date(Date.now() - 2 * HOUR), 3600), mintToken(2, TEST_SECRET, new Date(Date.now() + HOUR))]) {
      const res = await get('/me/orders', `Bearer ${stale}`)
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer')
      expect(res.json().error).toMatchObject({code: 'UNAUTHENTICATED', field: 'headers.authorization'})
      expect(res.json().error.hint).toMatch(/livedrop token/)
    }
  })

  it('the Bearer scheme is case-insensitive', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      expect((await get('/me/orders', `${scheme} ${token(2)}`)).statusCode, scheme).toBe(200)
    }
    expect((await get('/me/orders', `Basic ${token(2)}`)).statusCode).toBe(401)
    expect((await get('/me/orders', `Bearer${token(2)}`)).statusCode).toBe(401)
  })

  it('?access_token= opens the event stream, and nothing else', async () => {
    const base = await s.app.listen({port: 0, host: '127.0.0.1'})
    const controller = new AbortController()
    const stream = await request(`${base}/events?access_token=${token(3)}`, {signal: controller.signal})
    expect(stream.statusCode).toBe(200)
    expect(stream.headers['content-type']).toBe('text/event-stream')
    controller.abort()
    await stream.body.dump().catch(() => {})
    expect((await get(`/events?access_token=${token(3, 25 * HOUR)}`)).statusCode).toBe(401)

    for (const [method, url] of [['POST', '/creators/1/follow'], ['DELETE', '/creators/1/follow'], ['POST', '/orders'], ['GET', '/me/orders'], ['GET', '/me/following'], ['GET', '/me/notifications']] as const) {
      const res = await s.app.inject({method, url: `${url}?access_token=${token(3)}`, ...(method === 'POST' ? {payload: {dropId: 1, qty: 1}} : {})})
      expect(res.statusCode, `${method} ${url}`).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, `${method} ${url}`).toBeLessThan(500)
      expect(res.json().error.code, `${method} ${url}`).toMatch(/^(UNAUTHENTICATED|UNKNOWN_FIELD)$/)
    }
    const {rows} = await s.engine.db.query<{n: number}>('SELECT count(*)::int AS n FROM follows WHERE user_id = 3')
    expect(rows[0].n).toBe(0)
  })
})
