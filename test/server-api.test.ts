import {describe, expect, it} from 'vitest'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {seedWorld, useServer} from './helpers/server.js'

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`HTTP API on ${backend}`, () => {
    const s = useServer(backend, {rateLimitPerSecond: 10_000, rateLimitBurst: 10_000})
    let dropId = 0

    it('seeds a live drop', async () => {
      ;({dropId} = await seedWorld(s.engine, {users: 10, stock: 3}))
      const health = await s.app.inject({method: 'GET', url: '/healthz'})
      expect(health.statusCode).toBe(200)
      expect(health.json()).toMatchObject({ok: true, db: true, redis: null, cache: {nodes: 1, up: 1}})
    })

    it('serves catalog reads through the cache, 404 for unknown ids', async () => {
      const product = await s.app.inject({method: 'GET', url: '/products/1'})
      expect(product.statusCode).toBe(200)
      expect(product.json()).toMatchObject({id: 1, creatorId: 1, title: 'Sneaker', priceCents: 12000})
      expect((await s.app.inject({method: 'GET', url: '/products/1'})).json()).toEqual(product.json())
      expect(s.engine.catalog.stats().hits).toBeGreaterThan(0)
      const drop = await s.app.inject({method: 'GET', url: `/drops/${dropId}`})
      expect(drop.json()).toMatchObject({id: dropId, status: 'live', available: 3})
      expect((await s.app.inject({method: 'GET', url: `/drops/${dropId}/stock`})).json()).toMatchObject({available: 3})
      const live = await s.app.inject({method: 'GET', url: '/drops?status=live'})
      expect(live.json().items.map((d: {id: number}) => d.id)).toEqual([dropId])
      expect((await s.app.inject({method: 'GET', url: '/drops?status=ended'})).json().items).toEqual([])
      expect((await s.app.inject({method: 'GET', url: '/drops?status=soon'})).statusCode).toBe(400)
      expect((await s.app.inject({method: 'GET', url: '/creators/1/products'})).json().items.map((p: {id: number}) => p.id)).toEqual([1])
      expect((await s.app.inject({method: 'GET', url: '/creators/1/products?limit=5'})).json().items).toHaveLength(1)
      expect((await s.app.inject({method: 'GET', url: '/creators/1'})).json().creator).toMatchObject({id: 1, name: 'Creator One'})
      for (const url of ['/products/999', '/drops/999', '/drops/999/stock', '/creators/999', '/creators/999/products']) {
        const r = await s.app.inject({method: 'GET', url})
        expect(r.statusCode, url).toBe(404)
        expect(r.json().error.code).toBe('NOT_FOUND')
      }
    })

    it('requires a valid bearer token on /me and order routes', async () => {
      for (const [method, url] of [['GET', '/me/orders'], ['GET', '/me/following'], ['GET', '/me/notifications'], ['POST', '/orders'], ['GET', '/orders/1'], ['GET', '/events']] as const) {
        const none = await s.app.inject({method, url, payload: method === 'POST' ? {dropId, qty: 1} : undefined})
        expect(none.statusCode, `${method} ${url}`).toBe(401)
        expect(none.json().error.code).toBe('UNAUTHENTICATED')
        const forged = await s.app.inject({method, url, headers: {authorization: 'Bearer abc.def'}})
        expect(forged.statusCode).toBe(401)
      }
    })

    it('follows, lists and unfollows; users see only their own follows', async () => {
      const f = await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(2), payload: {notify: true}})
      expect(f.statusCode).toBe(201)
      expect((await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(2)})).statusCode).toBe(200)
      await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(3)})
      expect((await s.app.inject({method: 'GET', url: '/me/follows/1', headers: s.auth(2)})).json()).toEqual({creatorId: 1, follows: true})
      expect((await s.app.inject({method: 'GET', url: '/me/follows/1', headers: s.auth(4)})).json()).toEqual({creatorId: 1, follows: false})
      const mine = await s.app.inject({method: 'GET', url: '/me/following', headers: s.auth(2)})
      expect(mine.json().items.map((i: {creatorId: number}) => i.creatorId)).toEqual([1])
      expect((await s.app.inject({method: 'GET', url: '/me/following', headers: s.auth(4)})).json().items).toEqual([])

      const page1 = await s.app.inject({method: 'GET', url: '/creators/1/followers?limit=1'})
      expect(page1.statusCode).toBe(200)
      const body1 = page1.json()
      expect(body1.items).toHaveLength(1)
      const page2 = await s.app.inject({method: 'GET', url: `/creators/1/followers?limit=1&cursor=${encodeURIComponent(body1.nextCursor)}`})
      expect(page2.json().items[0].userId).toBeGreaterThan(body1.items[0].userId)

      expect((await s.app.inject({method: 'DELETE', url: '/creators/1/follow', headers: s.auth(3)})).json()).toEqual({removed: true})
      expect((await s.app.inject({method: 'POST', url: '/creators/999/follow', headers: s.auth(3)})).statusCode).toBe(404)
      expect((await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(1)})).statusCode).toBe(400)
    })

    it('takes orders with Idempotency-Key semantics and keeps orders private', async () => {
      const order = (user: number, key: string | undefined, body: unknown) =>
        s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(user), ...(key ? {'idempotency-key': key} : {})}, payload: body as object})
      const missing = await order(2, undefined, {dropId, qty: 1})
      expect(missing.statusCode).toBe(400)
      expect(missing.json().error.field).toBe('headers.idempotency-key')

      const first = await order(2, 'k-1', {dropId, qty: 1})
      expect(first.statusCode).toBe(201)
      expect(first.json()).toMatchObject({dropId, qty: 1, status: 'confirmed'})
      const replay = await order(2, 'k-1', {dropId, qty: 1})
      expect(replay.statusCode).toBe(201)
      expect(replay.headers['idempotent-replayed']).toBe('true')
      expect(replay.json()).toEqual(first.json())
      const reused = await order(2, 'k-1', {dropId, qty: 2})
      expect(reused.statusCode).toBe(422)
      expect(reused.json().error.code).toBe('KEY_REUSED_WITH_DIFFERENT_REQUEST')

      const id = first.json().id
      expect((await s.app.inject({method: 'GET', url: `/orders/${id}`, headers: s.auth(2)})).json()).toMatchObject({id, dropId, qty: 1})
      expect((await s.app.inject({method: 'GET', url: `/orders/${id}`, headers: s.auth(3)})).statusCode).toBe(404)
      expect((await s.app.inject({method: 'GET', url: '/me/orders', headers: s.auth(3)})).json().items).toEqual([])
      expect((await s.app.inject({method: 'GET', url: '/me/orders', headers: s.auth(2)})).json().items.map((o: {id: number}) => o.id)).toEqual([id])

      // stock 3: 2 more units sell, then sold out with a stable code, replayed as it was
      expect((await order(4, 'a', {dropId, qty: 2})).statusCode).toBe(201)
      const sold = await order(5, 'b', {dropId, qty: 1})
      expect(sold.statusCode).toBe(409)
      expect(sold.json().error).toMatchObject({code: 'SOLD_OUT', dropId})
      const soldReplay = await order(5, 'b', {dropId, qty: 1})
      expect(soldReplay.statusCode).toBe(409)
      expect(soldReplay.json()).toEqual(sold.json())
      // sold out is shown at once, through the cache
      expect((await s.app.inject({method: 'GET', url: `/drops/${dropId}`})).json()).toMatchObject({status: 'sold_out', available: 0})
      expect((await s.app.inject({method: 'GET', url: `/drops/${dropId}/stock`})).json()).toMatchObject({available: 0})
    })

    it('rejects bad input with 400 naming the field, unknown routes with 404 JSON, big bodies with 413', async () => {
      const bad = await s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(2), 'idempotency-key': 'x'}, payload: {dropId: 'one', qty: 1}})
      expect(bad.statusCode).toBe(400)
      expect(bad.json().error.field).toBe('body.dropId')
      const extra = await s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(2), 'idempotency-key': 'x'}, payload: {dropId, qty: 1, admin: true}})
      expect(extra.statusCode).toBe(400)
      expect((await s.app.inject({method: 'GET', url: '/creators/abc/followers'})).statusCode).toBe(400)
      expect((await s.app.inject({method: 'GET', url: '/creators/1/followers?cursor=tampered.123'})).statusCode).toBe(400)
      const nf = await s.app.inject({method: 'GET', url: '/nope'})
      expect(nf.statusCode).toBe(404)
      expect(nf.json().error.code).toBe('NOT_FOUND')
      const big = await s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(2), 'idempotency-key': 'y', 'content-type': 'application/json'}, payload: JSON.stringify({dropId, qty: 1, payload: {x: 'a'.repeat(20_000)}})})
      expect(big.statusCode).toBe(413)
      const notJson = await s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(2), 'idempotency-key': 'z', 'content-type': 'application/json'}, payload: '{"dropId": 1,'})
      expect(notJson.statusCode).toBe(400)
    })

    it('serves Prometheus metrics that promtool accepts', async () => {
      const res = await s.app.inject({method: 'GET', url: '/metrics'})
      expect(res.statusCode).toBe(200)
      expect(res.body).toContain('livedrop_http_requests_total{route="/orders",method="POST",status="201"}')
      expect(res.body).toMatch(/livedrop_orders_total\{outcome="confirmed"\} \d/)
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'metrics-')), 'metrics.txt')
      writeFileSync(file, res.body)
      // promtool reads the exposition from stdin and exits non-zero on any problem
      execFileSync('promtool', ['check', 'metrics'], {input: res.body})
    })
  })
}

describe('rate limits', () => {
  const s = useServer('embedded', {rateLimitPerSecond: 1, rateLimitBurst: 2})
  it('answers 429 with Retry-After past the per-user burst', async () => {
    const codes: number[] = []
    let retryAfter: string | undefined
    for (let i = 0; i < 4; i++) {
      const r = await s.app.inject({method: 'GET', url: '/me/orders', headers: s.auth(7)})
      codes.push(r.statusCode)
      retryAfter ??= r.headers['retry-after'] as string | undefined
    }
    expect(codes.slice(0, 2)).toEqual([200, 200])
    expect(codes.slice(2)).toEqual([429, 429])
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
    // another user has a bucket of its own
    expect((await s.app.inject({method: 'GET', url: '/me/orders', headers: s.auth(8)})).statusCode).toBe(200)
  })
})

describe('health with a cache node down', () => {
  const s = useServer('embedded', {engine: {cache: 'redis://127.0.0.1:1'}})
  it('reports the node down, stays healthy, and serves reads from the database', async () => {
    await seedWorld(s.engine, {users: 3, stock: 1})
    const health = await s.app.inject({method: 'GET', url: '/healthz'})
    expect(health.statusCode).toBe(200)
    expect(health.json()).toMatchObject({ok: true, db: true, cache: {nodes: 1, up: 0}})
    const product = await s.app.inject({method: 'GET', url: '/products/1'})
    expect(product.statusCode).toBe(200)
    expect(s.engine.catalog.stats().fallbacks).toBeGreaterThan(0)
  })
})
