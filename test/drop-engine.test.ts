import {beforeAll, describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {createDrop, endDrop, getDropStatus, startDrop, type CreateDropInput} from '../src/core/catalog/drops.js'
import {ChangeFeed, type ChangeEvent} from '../src/core/events.js'
import {
  DropNotLiveError,
  DropStateError,
  InvalidQuantityError,
  KeyReusedWithDifferentRequestError,
  NotFoundError,
  RequestInFlightError,
  UsageError,
} from '../src/core/errors.js'
import type {Db} from '../src/core/db/types.js'
import {placeOrder, type PlaceOrderResult} from '../src/core/orders/place-order.js'
import type {EngineDeps} from '../src/core/orders/deps.js'
import {checkDropInvariants} from '../src/core/audit/drop.js'
import {createDropFixture, type DropFixture} from '../src/core/catalog/fixture.js'
import type {StockStrategyName} from '../src/core/stock/index.js'

async function outboxCounts(db: Db, dropId: number): Promise<Record<string, number>> {
  const {rows} = await db.query<{event_type: string; n: number}>(`SELECT event_type, count(*)::int AS n FROM outbox WHERE drop_id = $1 GROUP BY 1`, [dropId])
  return Object.fromEntries(rows.map((r) => [r.event_type, r.n]))
}

async function liveDrop(deps: EngineDeps, f: DropFixture, over: Partial<CreateDropInput> = {}): Promise<number> {
  const drop = await createDrop(deps, {
    creatorId: f.creatorId,
    productId: f.productId,
    stock: 100,
    startsAt: new Date(),
    endsAt: new Date(Date.now() + 3_600_000),
    lowStockThreshold: 10,
    ...over,
  })
  await startDrop(deps, drop.id)
  return drop.id
}

for (const backend of BACKENDS) {
  describe(`drop engine on ${backend.name}`, () => {
    const t = backend.use()
    let f: DropFixture
    const deps = (): EngineDeps => ({db: t.db})
    beforeAll(async () => {
      f = await createDropFixture(t.db, 600)
    })

    it('creates, starts and ends drops forward only, with outbox rows and change events', async () => {
      const changes = new ChangeFeed()
      const seen: ChangeEvent[] = []
      changes.on((e) => seen.push(e))
      const d = {db: t.db, changes}
      await expect(
        createDrop(d, {creatorId: f.creatorId, productId: f.productId, stock: 0, startsAt: new Date(), endsAt: new Date(0), lowStockThreshold: -1}),
      ).rejects.toThrow(/--stock.*--low-stock.*--ends-at/)
      await expect(
        createDrop(d, {creatorId: f.creatorId, productId: f.productId, stock: 5, startsAt: new Date(), endsAt: new Date(Date.now() + 1000), strategy: 'redis-gate'}),
      ).rejects.toBeInstanceOf(UsageError)
      await expect(createDrop(d, {creatorId: f.creatorId, productId: 999_999, stock: 5, startsAt: new Date(), endsAt: new Date(Date.now() + 1000)})).rejects.toBeInstanceOf(NotFoundError)

      const drop = await createDrop(d, {creatorId: f.creatorId, productId: f.productId, stock: 5, startsAt: new Date(), endsAt: new Date(Date.now() + 60_000)})
      expect(drop.status).toBe('scheduled')
      await expect(placeOrder(d, {userId: f.buyerIds[0], dropId: drop.id, qty: 1, idempotencyKey: 'early'})).rejects.toBeInstanceOf(DropNotLiveError)
      // a refused request leaves no key behind: the same key works once the drop is live
      expect((await startDrop(d, drop.id)).changed).toBe(true)
      expect((await startDrop(d, drop.id)).changed).toBe(false)
      expect((await placeOrder(d, {userId: f.buyerIds[0], dropId: drop.id, qty: 1, idempotencyKey: 'early'})).outcome).toBe('confirmed')
      expect((await endDrop(d, drop.id)).changed).toBe(true)
      await expect(startDrop(d, drop.id)).rejects.toBeInstanceOf(DropStateError)
      expect((await endDrop(d, drop.id)).changed).toBe(false)
      await expect(placeOrder(d, {userId: f.buyerIds[1], dropId: drop.id, qty: 1, idempotencyKey: 'late'})).rejects.toBeInstanceOf(DropNotLiveError)
      await expect(placeOrder(d, {userId: f.buyerIds[1], dropId: 999_999, qty: 1, idempotencyKey: 'nodrop'})).rejects.toBeInstanceOf(NotFoundError)
      await expect(placeOrder(d, {userId: f.buyerIds[1], dropId: drop.id, qty: 0, idempotencyKey: 'q'})).rejects.toBeInstanceOf(InvalidQuantityError)

      const status = await getDropStatus(t.db, drop.id)
      expect(status).toMatchObject({total: 5, available: 4, sold: 1, orders: 1, status: 'ended', strategy: 'row'})
      expect(await outboxCounts(t.db, drop.id)).toEqual({drop_started: 1, order_confirmed: 1, drop_ended: 1})
      const started = await t.db.query<{creator_id: number}>(`SELECT creator_id FROM outbox WHERE drop_id = $1 AND event_type = 'drop_started'`, [drop.id])
      expect(Number(started.rows[0].creator_id)).toBe(f.creatorId)
      expect(seen.filter((e) => e.type === 'drop' && e.dropId === drop.id).map((e) => (e as {reason: string}).reason)).toEqual(['created', 'started', 'ended'])
    })

    it('replays the stored answer, sold-out included, and refuses a used key with another request', async () => {
      const dropId = await liveDrop(deps(), f, {stock: 2, lowStockThreshold: 0})
      const u = f.buyerIds
      const a = await placeOrder(deps(), {userId: u[0], dropId, qty: 2, idempotencyKey: 'k1', payload: {note: 'x', ship: {to: 'A'}}})
      expect(a).toMatchObject({outcome: 'confirmed', replay: false, response: {status: 201}})
      expect(a.order).toMatchObject({dropId, userId: u[0], qty: 2, status: 'confirmed'})
      // same request, keys of the payload in another order: a replay of the very same answer
      const again = await placeOrder(deps(), {userId: u[0], dropId, qty: 2, idempotencyKey: 'k1', payload: {ship: {to: 'A'}, note: 'x'}})
      expect(again.replay).toBe(true)
      expect(again.response).toEqual(a.response)
      await expect(placeOrder(deps(), {userId: u[0], dropId, qty: 1, idempotencyKey: 'k1'})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)
      await expect(placeOrder(deps(), {userId: u[0], dropId, qty: 2, idempotencyKey: 'k1', payload: {note: 'y'}})).rejects.toMatchObject({httpStatus: 422})
      // the same key of another user is another key
      const other = await placeOrder(deps(), {userId: u[1], dropId, qty: 1, idempotencyKey: 'k1'})
      expect(other).toMatchObject({outcome: 'sold_out', replay: false, response: {status: 409, body: {error: {code: 'SOLD_OUT'}}}})
      const otherAgain = await placeOrder(deps(), {userId: u[1], dropId, qty: 1, idempotencyKey: 'k1'})
      expect(otherAgain).toMatchObject({outcome: 'sold_out', replay: true})
      expect(otherAgain.response).toEqual(other.response)
      const s = await getDropStatus(t.db, dropId)
      expect(s).toMatchObject({status: 'sold_out', available: 0, sold: 2, orders: 1})
      expect(await outboxCounts(t.db, dropId)).toEqual({drop_started: 1, order_confirmed: 1, stock_low: 1, sold_out: 1})
    })

    it('takes over a stale in-flight key and tells a waiting retry when the answer will be there', async () => {
      const dropId = await liveDrop(deps(), f)
      const u = f.buyerIds[5]
      const now = new Date()
      const fp = (await import('../src/core/orders/idempotency.js')).requestFingerprint({dropId, qty: 1})
      await t.db.query(`INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, locked_at, created_at) VALUES ($1, 'fresh', $2::date, $3, 'in_flight', $4, $4)`, [
        u,
        now.toISOString().slice(0, 10),
        fp,
        now,
      ])
      // the first request looks alive: a retry waits for it (up to a second), then is told 1 s, not the 10 s timeout
      const err = await placeOrder({db: t.db, inFlightTimeoutMs: 10_000}, {userId: u, dropId, qty: 1, idempotencyKey: 'fresh'}).catch((e) => e)
      expect(err).toBeInstanceOf(RequestInFlightError)
      expect(err.httpStatus).toBe(409)
      expect(err.details.retryAfterSeconds).toBe(1)
      // in flight for 7 s it looks dead: the answer comes with the takeover at 10 s, never later
      const stuck = {db: t.db, inFlightTimeoutMs: 10_000, now: () => new Date(now.getTime() + 7_000)}
      const err7 = await placeOrder(stuck, {userId: u, dropId, qty: 1, idempotencyKey: 'fresh'}).catch((e) => e)
      expect(err7.details.retryAfterSeconds).toBe(3)
      // the first request died: after the timeout a retry takes over and places the order once
      const later = {db: t.db, inFlightTimeoutMs: 10_000, now: () => new Date(now.getTime() + 11_000)}
      const r = await placeOrder(later, {userId: u, dropId, qty: 1, idempotencyKey: 'fresh'})
      expect(r).toMatchObject({outcome: 'confirmed', replay: false})
      expect((await placeOrder(later, {userId: u, dropId, qty: 1, idempotencyKey: 'fresh'})).response).toEqual(r.response)
    })

    it("stops a second order for one key across midnight and after the key was purged (orders' UNIQUE)", async () => {
      const dropId = await liveDrop(deps(), f)
      const u = f.buyerIds[7]
      const evening = new Date('2030-03-01T23:59:59.900Z')
      const first = await placeOrder({db: t.db, now: () => evening}, {userId: u, dropId, qty: 1, idempotencyKey: 'midnight'})
      // next day: the key lives in yesterday's partition and is still found
      const nextDay = {db: t.db, now: () => new Date('2030-03-02T00:00:00.100Z')}
      expect((await placeOrder(nextDay, {userId: u, dropId, qty: 1, idempotencyKey: 'midnight'})).response).toEqual(first.response)
      // the key row gone (purged): the order's unique constraint still answers with the first order
      await t.db.query(`DELETE FROM idempotency_keys WHERE user_id = $1 AND key = 'midnight'`, [u])
      const afterPurge = await placeOrder(nextDay, {userId: u, dropId, qty: 1, idempotencyKey: 'midnight'})
      expect(afterPurge).toMatchObject({outcome: 'confirmed', replay: true})
      expect(afterPurge.response).toEqual(first.response)
      await t.db.query(`DELETE FROM idempotency_keys WHERE user_id = $1 AND key = 'midnight'`, [u])
      await expect(placeOrder(nextDay, {userId: u, dropId, qty: 2, idempotencyKey: 'midnight'})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)

      // racing twins either side of midnight: claims land in two day partitions, one order results
      const keys = Array.from({length: 20}, (_, i) => `twin-${i}`)
      const answers = await Promise.all(
        keys.flatMap((key) => [
          placeOrder({db: t.db, now: () => evening}, {userId: u, dropId, qty: 1, idempotencyKey: key}).catch((e) => e),
          placeOrder(nextDay, {userId: u, dropId, qty: 1, idempotencyKey: key}).catch((e) => e),
        ]),
      )
      for (const a of answers) if (!(a instanceof RequestInFlightError)) expect(a.outcome).toBe('confirmed')
      const {rows} = await t.db.query<{n: number; keys: number}>(
        `SELECT count(*)::int AS n, count(DISTINCT idempotency_key)::int AS keys FROM orders WHERE user_id = $1 AND idempotency_key LIKE 'twin-%'`,
        [u],
      )
      expect(rows[0].n).toBe(rows[0].keys)
      expect(rows[0].n).toBeLessThanOrEqual(20)
    })

    const strategies: StockStrategyName[] = ['row', 'buckets']
    for (const strategy of strategies) {
      it(`${strategy}: ${backend.name === 'postgres' ? 2000 : 200} concurrent attempts for ${backend.name === 'postgres' ? 100 : 20} units sell exactly the stock`, async () => {
        const big = backend.name === 'postgres'
        const stock = big ? 100 : 20
        const attempts = big ? 2000 : 200
        const changes = new ChangeFeed()
        const reasons: string[] = []
        changes.on((e) => e.type === 'drop' && reasons.push(e.reason))
        const d = {db: t.db, changes}
        const dropId = await liveDrop(d, f, {stock, strategy, lowStockThreshold: 10, buckets: 8})
        const results: PlaceOrderResult[] = []
        let next = 0
        await Promise.all(
          Array.from({length: 48}, async () => {
            while (next < attempts) {
              const i = next++
              results.push(await placeOrder(d, {userId: f.buyerIds[i % f.buyerIds.length], dropId, qty: 1, idempotencyKey: `c-${strategy}-${i}`}))
            }
          }),
        )
        const confirmed = results.filter((r) => r.outcome === 'confirmed')
        expect(confirmed.length).toBe(stock)
        expect(results.filter((r) => r.outcome === 'sold_out').length).toBe(attempts - stock)
        const acked = confirmed.map((r) => ({orderId: r.order!.id, userId: r.order!.userId, key: `c-${strategy}-${results.indexOf(r)}`}))
        const checks = await checkDropInvariants(t.db, dropId, [], {minSoldOutQty: 1})
        expect(checks.filter((c) => !c.ok)).toEqual([])
        expect(acked.length).toBe(stock)
        expect(await getDropStatus(t.db, dropId)).toMatchObject({status: 'sold_out', available: 0, sold: stock, orders: stock})
        expect(await outboxCounts(t.db, dropId)).toEqual({drop_started: 1, order_confirmed: stock, stock_low: 1, sold_out: 1})
        expect(reasons.filter((r) => r === 'stock_low' || r === 'sold_out').sort()).toEqual(['sold_out', 'stock_low'])
      })
    }

    it('buckets: nothing sells before the start or after the end, on the first request or later ones', async () => {
      const drop = await createDrop(deps(), {creatorId: f.creatorId, productId: f.productId, stock: 8, startsAt: new Date(), endsAt: new Date(Date.now() + 60_000), strategy: 'buckets', buckets: 4})
      // the first request reads the drop through the claim; later ones take the one-statement path
      for (const key of ['pre-1', 'pre-2', 'pre-3']) {
        await expect(placeOrder(deps(), {userId: f.buyerIds[30], dropId: drop.id, qty: 1, idempotencyKey: key})).rejects.toBeInstanceOf(DropNotLiveError)
      }
      await startDrop(deps(), drop.id)
      expect((await placeOrder(deps(), {userId: f.buyerIds[30], dropId: drop.id, qty: 1, idempotencyKey: 'pre-1'})).outcome).toBe('confirmed')
      await endDrop(deps(), drop.id)
      for (const key of ['post-1', 'post-2']) {
        await expect(placeOrder(deps(), {userId: f.buyerIds[31], dropId: drop.id, qty: 1, idempotencyKey: key})).rejects.toBeInstanceOf(DropNotLiveError)
      }
      expect(await getDropStatus(t.db, drop.id)).toMatchObject({status: 'ended', sold: 1, available: 7})
    })

    it('buckets: multi-unit orders take from several buckets and sell the last units', async () => {
      const dropId = await liveDrop(deps(), f, {stock: 10, strategy: 'buckets', buckets: 4, lowStockThreshold: 3})
      // [3, 3, 2, 2]: an order of 5 needs two buckets
      const big = await placeOrder(deps(), {userId: f.buyerIds[20], dropId, qty: 5, idempotencyKey: 'big'})
      expect(big.outcome).toBe('confirmed')
      const tooMany = await placeOrder(deps(), {userId: f.buyerIds[21], dropId, qty: 6, idempotencyKey: 'too-many'})
      expect(tooMany.outcome).toBe('sold_out')
      expect((await placeOrder(deps(), {userId: f.buyerIds[22], dropId, qty: 5, idempotencyKey: 'rest'})).outcome).toBe('confirmed')
      expect(await getDropStatus(t.db, dropId)).toMatchObject({status: 'sold_out', available: 0, sold: 10})
      expect(await outboxCounts(t.db, dropId)).toEqual({drop_started: 1, order_confirmed: 2, stock_low: 1, sold_out: 1})
    })

    it('retry storms: many concurrent retries of the same keys give one order per key and identical answers', async () => {
      for (const strategy of ['row', 'buckets'] as const) {
        const [nKeys, copies] = [30, 8]
        const dropId = await liveDrop(deps(), f, {stock: Math.floor(nKeys / 2), strategy, buckets: 4})
        const keys = Array.from({length: nKeys}, (_, i) => ({userId: f.buyerIds[100 + i], key: `storm-${strategy}-${i}`}))
        const answers = new Map<string, unknown[]>()
        await Promise.all(
          keys.flatMap((k) =>
            Array.from({length: copies}, async () => {
              for (;;) {
                try {
                  const r = await placeOrder(deps(), {userId: k.userId, dropId, qty: 1, idempotencyKey: k.key})
                  answers.set(k.key, [...(answers.get(k.key) ?? []), r.response])
                  return
                } catch (err) {
                  if (!(err instanceof RequestInFlightError)) throw err
                  await new Promise((r) => setTimeout(r, 20))
                }
              }
            }),
          ),
        )
        for (const list of answers.values()) for (const a of list) expect(a).toEqual(list[0])
        const confirmed = [...answers.values()].filter((l) => (l[0] as {status: number}).status === 201).length
        expect(confirmed).toBe(Math.floor(nKeys / 2))
        const {rows} = await t.db.query<{n: number}>(`SELECT count(*)::int AS n FROM orders WHERE drop_id = $1`, [dropId])
        expect(rows[0].n).toBe(Math.floor(nKeys / 2))
      }
    })
  })
}
