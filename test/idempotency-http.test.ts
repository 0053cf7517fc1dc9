import {describe, expect, it} from 'vitest'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import {placeOrder} from '../src/core/orders/place-order.js'
import type {StockStrategyName} from '../src/core/stock/index.js'
import {scanKeys} from '../src/core/redis.js'
import {useRedisPrefix} from './helpers/redis.js'
import {REDIS_URL} from './helpers/env.js'
import {seedWorld, useServer} from './helpers/server.js'

/**
 * Idempotency-Key over HTTP against real Postgres (and the shared Redis for redis-gate drops):
 * a cold drop's burst of retries gets replays, replays are byte-identical, the key is a
 * structured-field string, and an unknown user is a 404 in the API's error shape.
 */
describe('Idempotency-Key over HTTP', () => {
  const redis = useRedisPrefix()
  const s = useServer('postgres', {rateLimitPerSecond: 100_000, rateLimitBurst: 100_000, engine: {redisUrl: REDIS_URL, redisPrefix: redis.prefix}})

  const order = (user: number, key: string | undefined, body: object) =>
    s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(user), ...(key === undefined ? {} : {'idempotency-key': key})}, payload: body})

  async function newDrop(strategy: StockStrategyName, stock: number): Promise<number> {
    const drop = await createDrop(s.engine.deps, {
      creatorId: 1,
      productId: 1,
      stock,
      startsAt: new Date(Date.now() - 1000),
      endsAt: new Date(Date.now() + 3_600_000),
      lowStockThreshold: 0,
      strategy,
      buckets: 4,
    })
    await startDrop(s.engine.deps, drop.id)
    return drop.id
  }

  it('seeds users 1..40', async () => {
    await seedWorld(s.engine, {users: 40, stock: 1})
  })

  for (const strategy of ['row', 'buckets', 'redis-gate'] as const) {
    it(`${strategy}: a burst of 20 retries of one key on a drop this process has not seen gets 1 answer and 19 byte-identical replays`, async () => {
      const dropId = await newDrop(strategy, 10)
      const answers = await Promise.all(Array.from({length: 20}, () => order(2, `burst-${strategy}`, {dropId, qty: 1})))
      expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(201))
      expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(19)
      expect(new Set(answers.map((a) => a.payload)).size).toBe(1)
      const {rows} = await s.engine.db.query<{n: number}>(`SELECT count(*)::int AS n FROM orders WHERE drop_id = $1`, [dropId])
      expect(rows[0].n).toBe(1)
    })

    it(`${strategy}: a sold-out answer and its replays are the same bytes, whichever layer answers`, async () => {
      const dropId = await newDrop(strategy, 1)
      const sold = await order(3, `so-${strategy}-a`, {dropId, qty: 1})
      expect(sold.statusCode).toBe(201)
      expect((await order(3, `so-${strategy}-a`, {dropId, qty: 1})).payload).toBe(sold.payload)
      for (const key of [`so-${strategy}-b`, `so-${strategy}-c`]) {
        const first = await order(4, key, {dropId, qty: 1})
        expect(first.statusCode).toBe(409)
        expect(first.json()).toEqual({error: {code: 'SOLD_OUT', message: `drop ${dropId} is sold out`, dropId, requested: 1}})
        const again = await order(4, key, {dropId, qty: 1})
        expect(again.headers['idempotent-replayed']).toBe('true')
        expect(again.payload).toBe(first.payload)
      }
      // the gate's memory lost (a flush): the replay now comes from Postgres, the same bytes
      await scanKeys(redis.client, redis.prefix, async (keys) => void (await redis.client.del(...keys)))
      const fromPg = await order(4, `so-${strategy}-b`, {dropId, qty: 1})
      expect(fromPg.headers['idempotent-replayed']).toBe('true')
      expect(fromPg.payload).toBe((await order(4, `so-${strategy}-c`, {dropId, qty: 1})).payload)

      // sold out by another instance, never seen by this one: its first answer is the same bytes as its replay
      const elsewhere = await newDrop(strategy, 2)
      const other = new PostgresDb(s.url!, {max: 2})
      try {
        expect((await placeOrder({db: other}, {userId: 10, dropId: elsewhere, qty: 2, idempotencyKey: `other-${strategy}`})).outcome).toBe('confirmed')
      } finally {
        await other.close()
      }
      for (const qty of [1, 3]) {
        const first = await order(11, `cold-so-${strategy}-${qty}`, {dropId: elsewhere, qty})
        expect(first.statusCode).toBe(409)
        const again = await order(11, `cold-so-${strategy}-${qty}`, {dropId: elsewhere, qty})
        expect(again.headers['idempotent-replayed']).toBe('true')
        expect(again.payload).toBe(first.payload)
      }
    })
  }

  it('reads the key as a structured-field string: "abc" and abc are one key; invalid keys get 400 with code and field', async () => {
    const dropId = await newDrop('row', 10)
    const bare = await order(5, 'k-abc', {dropId, qty: 1})
    expect(bare.statusCode).toBe(201)
    const quoted = await order(5, '"k-abc"', {dropId, qty: 1})
    expect(quoted.statusCode).toBe(201)
    expect(quoted.headers['idempotent-replayed']).toBe('true')
    expect(quoted.payload).toBe(bare.payload)
    // a quoted key may hold spaces and escaped quotes and backslashes
    const spaced = await order(6, '"order 7 \\"blue\\" \\\\ x"', {dropId, qty: 1})
    expect(spaced.statusCode).toBe(201)
    const {rows} = await s.engine.db.query<{key: string}>(`SELECT key FROM idempotency_keys WHERE user_id = 6`)
    expect(rows.map((r) => r.key)).toEqual(['order 7 "blue" \\ x'])

    for (const bad of ['"unterminated', '"bad \\x escape"', 'two words', '"abc";param=1', '""', '"a", "b"', `"${'x'.repeat(256)}"`, '"tab\there"']) {
      const r = await order(7, bad, {dropId, qty: 1})
      expect(r.statusCode, bad).toBe(400)
      expect(r.json().error, bad).toMatchObject({code: 'IDEMPOTENCY_KEY_INVALID', field: 'headers.idempotency-key'})
      expect(r.json().error.hint, bad).toMatch(/quoted string/)
    }
    const missing = await order(7, undefined, {dropId, qty: 1})
    expect(missing.statusCode).toBe(400)
    expect(missing.json().error).toMatchObject({code: 'IDEMPOTENCY_KEY_REQUIRED', field: 'headers.idempotency-key'})
    const {rows: none} = await s.engine.db.query(`SELECT 1 FROM idempotency_keys WHERE user_id = 7`)
    expect(none).toHaveLength(0)
  })

  for (const strategy of ['row', 'buckets', 'redis-gate'] as const) {
    it(`${strategy}: a valid token for a user the database does not know gets 404 USER_NOT_FOUND, live or sold out, and leaves nothing behind`, async () => {
      const dropId = await newDrop(strategy, 2)
      const ghost = 999_999
      const r = await order(ghost, `ghost-${strategy}`, {dropId, qty: 1})
      expect(r.statusCode).toBe(404)
      expect(r.json()).toEqual({error: {code: 'USER_NOT_FOUND', message: `user ${ghost} does not exist`, hint: expect.stringMatching(/token/)}})
      // sell out; the unknown user still gets 404, not a stored sold-out answer
      for (const u of [8, 9]) expect((await order(u, `ghost-buy-${strategy}-${u}`, {dropId, qty: 1})).statusCode).toBe(201)
      expect((await order(ghost, `ghost-${strategy}-2`, {dropId, qty: 1})).statusCode).toBe(404)
      expect((await order(ghost, `ghost-${strategy}-2`, {dropId, qty: 1})).statusCode).toBe(404)
      const keys = await s.engine.db.query(`SELECT 1 FROM idempotency_keys WHERE user_id = $1`, [ghost])
      expect(keys.rows).toHaveLength(0)
      const stock = await s.app.inject({method: 'GET', url: `/drops/${dropId}/stock`})
      expect(stock.json()).toMatchObject({available: 0})
    })
  }
})
