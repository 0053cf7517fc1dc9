import {describe, expect, it} from 'vitest'
import {seedWorld, useServer, type TestServer} from './helpers/server.js'

/** A real listening server: the fast path sits in node:http, before fastify (inject bypasses it). */
async function listen(s: TestServer): Promise<string> {
  return s.app.listen({port: 0, host: '127.0.0.1'})
}

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, {headers})

describe('cached product reads answered before fastify (the fast path)', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1, rateLimitBurst: 3, worker: {index: 2, pid: 4242}})
  let base = ''

  it('answers a near-cache hit with the route\'s body and headers, counted in the cache stats and /metrics', async () => {
    await seedWorld(s.engine, {users: 3})
    base = await listen(s)
    // the first read fills the near cache through fastify; the second is the fast path's
    const first = await get(`${base}/products/1`, s.auth(2))
    const before = s.engine.catalog.stats()
    const second = await get(`${base}/products/1`, s.auth(2))
    const after = s.engine.catalog.stats()
    expect(after.nearHits).toBe(before.nearHits + 1)
    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    const body = await second.text()
    expect(body).toBe(await first.text())
    expect(JSON.parse(body)).toMatchObject({id: 1, title: 'Sneaker', priceCents: 12000})
    for (const h of ['content-type', 'content-length', 'livedrop-worker']) expect(second.headers.get(h), h).toBe(first.headers.get(h))
    expect(second.headers.get('livedrop-worker')).toBe('2/4242')
    const metrics = await s.app.inject({method: 'GET', url: '/metrics'})
    expect(metrics.body).toMatch(/livedrop_http_requests_total\{route="\/products\/:id",method="GET",status="200",worker="2",pid="4242"\} 2\b/)
  })

  it('takes the caller\'s rate-limit token: over the limit it is a 429 in the API\'s shape, per user', async () => {
    // user 2 spent 2 of its 3 tokens above; user 3 has its own bucket
    expect((await get(`${base}/products/1`, s.auth(2))).status).toBe(200)
    const limited = await get(`${base}/products/1`, s.auth(2))
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('1')
    expect(limited.headers.get('x-request-id')).toBeTruthy()
    expect(((await limited.json()) as {error: {code: string}}).error.code).toBe('RATE_LIMITED')
    expect((await get(`${base}/products/1`, s.auth(3))).status).toBe(200)
  })

  it('leaves every other form to the route: a query, a padded id, a missing product, HEAD', async () => {
    await new Promise((r) => setTimeout(r, 3100)) // the buckets refill
    const query = await get(`${base}/products/1?x=1`, s.auth(3))
    expect(query.status).toBe(400)
    expect(((await query.json()) as {error: {code: string}}).error.code).toBe('UNKNOWN_FIELD')
    expect((await get(`${base}/products/01`, s.auth(3))).status).toBe(400)
    expect((await fetch(`${base}/products/1`, {method: 'HEAD', headers: s.auth(3)})).status).toBe(200)
    // twice: the second is a near-cache "not found", which the fast path does not answer either
    for (let i = 0; i < 2; i++) {
      const missing = await get(`${base}/products/999`)
      expect(missing.status).toBe(404)
      expect(((await missing.json()) as {error: {code: string}}).error.code).toBe('NOT_FOUND')
    }
  })

  it('shows an edit at once: the near cache it reads is invalidated synchronously', async () => {
    await new Promise((r) => setTimeout(r, 3100))
    expect(JSON.parse(await (await get(`${base}/products/1`, s.auth(3))).text()).title).toBe('Sneaker')
    const edit = await fetch(`${base}/products/1`, {method: 'PATCH', headers: {...s.auth(1), 'content-type': 'application/json'}, body: JSON.stringify({title: 'Sneaker v2'})})
    expect(edit.status).toBe(200)
    expect(JSON.parse(await (await get(`${base}/products/1`, s.auth(3))).text()).title).toBe('Sneaker v2')
  })
})
