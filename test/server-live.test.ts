import {describe, expect, it} from 'vitest'
import {spawn, type ChildProcess} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {request} from 'undici'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {mintToken} from '../src/core/tokens.js'
import {REDIS_URL} from './helpers/redis.js'
import {seedWorld, useServer, TEST_SECRET} from './helpers/server.js'
import {openSse} from './helpers/sse.js'

describe('live events over SSE', () => {
  const s = useServer('postgres', {engine: {fanoutWorkers: 1, fanout: {pollMs: 20}}})

  it('streams drop_started to a follower within 2 s and order_confirmed to the buyer only', async () => {
    const {productId, creatorId} = await seedWorld(s.engine, {users: 5, stock: 10})
    await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(2)})
    const base = await s.app.listen({port: 0, host: '127.0.0.1'})
    const follower = await openSse(`${base}/events`, s.auth(2))
    const stranger = await openSse(`${base}/events`, s.auth(3))
    try {
      const drop = await createDrop(s.engine.deps, {creatorId, productId, stock: 5, startsAt: new Date(), endsAt: new Date(Date.now() + 60_000)})
      const t0 = Date.now()
      await startDrop(s.engine.deps, drop.id)
      s.engine.fanout?.wake()
      const started = await follower.next('drop_started', 2000)
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(started.data).toMatchObject({type: 'drop_started', dropId: drop.id, creatorId})

      const res = await request(`${base}/orders`, {method: 'POST', headers: {...s.auth(2), 'idempotency-key': 'sse-1', 'content-type': 'application/json'}, body: JSON.stringify({dropId: drop.id, qty: 1})})
      expect(res.statusCode).toBe(201)
      await res.body.dump()
      s.engine.fanout?.wake()
      expect((await follower.next('order_confirmed', 2000)).data).toMatchObject({dropId: drop.id})
      await new Promise((r) => setTimeout(r, 200))
      expect(stranger.events).toEqual([])
    } finally {
      follower.close()
      stranger.close()
    }
  })
})

describe('live events for a pull-delivered (celebrity) creator', () => {
  const s = useServer('postgres', {engine: {fanoutWorkers: 1, fanout: {pollMs: 20, pullThreshold: 0}}})

  it('streams drop_started once to every connected follower, opted in or not', async () => {
    const {productId, creatorId} = await seedWorld(s.engine, {users: 5, stock: 10})
    // user 2 opted in ("notify me"): the event's first batch also pushes a row to them
    await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(2), payload: {notify: true}})
    await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(3)})
    const base = await s.app.listen({port: 0, host: '127.0.0.1'})
    const optedIn = await openSse(`${base}/events`, s.auth(2))
    const plain = await openSse(`${base}/events`, s.auth(3))
    const stranger = await openSse(`${base}/events`, s.auth(4))
    try {
      const drop = await createDrop(s.engine.deps, {creatorId, productId, stock: 5, startsAt: new Date(), endsAt: new Date(Date.now() + 60_000)})
      await startDrop(s.engine.deps, drop.id)
      s.engine.fanout?.wake()
      for (const stream of [optedIn, plain]) expect((await stream.next('drop_started', 2000)).data).toMatchObject({dropId: drop.id})
      await new Promise((r) => setTimeout(r, 300))
      expect(optedIn.events.filter((e) => e.event === 'drop_started')).toHaveLength(1)
      expect(stranger.events).toEqual([])
    } finally {
      for (const stream of [optedIn, plain, stranger]) stream.close()
    }
  })
})

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))

function serve(dbUrl: string): Promise<{child: ChildProcess; base: string; exited: Promise<number | null>}> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--db', dbUrl, '--redis', REDIS_URL, '--workers-fanout', '1'], {
    env: {...process.env, LIVEDROP_SECRET: TEST_SECRET},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr!.on('data', (d) => (err += d))
    child.stdout!.on('data', (d) => {
      out += d
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve({child, base: m[1], exited})
    })
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)))
    setTimeout(() => reject(new Error(`serve did not start: ${out} ${err}`)), 20_000)
  })
}

describe('two serve processes on one Postgres and Redis', () => {
  const s = useServer('postgres')

  it('behave as one: shared follows, idempotent replays across processes, SSE across processes, graceful SIGTERM', async () => {
    await seedWorld(s.engine, {users: 5, stock: 10})
    const [a, b] = await Promise.all([serve(s.url!), serve(s.url!)])
    const auth = (user: number) => ({authorization: `Bearer ${mintToken(user, TEST_SECRET)}`})
    const sseOnB = await openSse(`${b.base}/events`, auth(4))
    try {
      const f = await request(`${a.base}/creators/1/follow`, {method: 'POST', headers: auth(4)})
      expect(f.statusCode).toBe(201)
      await f.body.dump()
      const check = await request(`${b.base}/me/follows/1`, {headers: auth(4)})
      expect(await check.body.json()).toEqual({creatorId: 1, follows: true})

      const order = (base: string) =>
        request(`${base}/orders`, {method: 'POST', headers: {...auth(4), 'idempotency-key': 'two-proc', 'content-type': 'application/json'}, body: JSON.stringify({dropId: 1, qty: 1})})
      const first = await order(a.base)
      const firstBody = await first.body.json()
      const again = await order(b.base)
      expect(again.statusCode).toBe(first.statusCode)
      expect(await again.body.json()).toEqual(firstBody)
      expect(again.headers['idempotent-replayed']).toBe('true')

      // the confirmation is delivered by whichever process's worker claims it, and reaches B's stream via Redis
      expect((await sseOnB.next('order_confirmed', 5000)).data).toMatchObject({dropId: 1})
    } finally {
      sseOnB.close()
      a.child.kill('SIGTERM')
      b.child.kill('SIGTERM')
    }
    expect(await a.exited).toBe(0)
    expect(await b.exited).toBe(0)
  })
})
