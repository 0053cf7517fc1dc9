import fc from 'fast-check'
import {isDeepStrictEqual} from 'node:util'
import {beforeAll, describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {createDrop, endDrop, getDropStatus, startDrop} from '../src/core/catalog/drops.js'
import {DropNotLiveError, KeyReusedWithDifferentRequestError, RequestInFlightError} from '../src/core/errors.js'
import {placeOrder, type PlaceOrderResult} from '../src/core/orders/place-order.js'
import {checkDropInvariants, type AcknowledgedOrder} from '../src/core/audit/drop.js'
import {createDropFixture, type DropFixture} from '../src/core/catalog/fixture.js'

/**
 * Random interleavings of orders, retries (same key, same or different request) and ends of a
 * drop, each batch run concurrently: stock is conserved, nothing is oversold or duplicated,
 * every answer for a key is the same, and nothing sells after the end.
 */
type Op = {kind: 'order'; user: number; key: number; qty: number; variant: number} | {kind: 'end'}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {weight: 12, arbitrary: fc.record({kind: fc.constant('order' as const), user: fc.nat(3), key: fc.nat(5), qty: fc.integer({min: 1, max: 3}), variant: fc.nat(4)})},
  {weight: 1, arbitrary: fc.constant({kind: 'end' as const})},
)

const scenarioArb = fc.record({
  strategy: fc.constantFrom('row' as const, 'buckets' as const),
  stock: fc.integer({min: 1, max: 12}),
  buckets: fc.integer({min: 1, max: 4}),
  lowStock: fc.nat(5),
  batches: fc.array(fc.array(opArb, {minLength: 1, maxLength: 6}), {minLength: 1, maxLength: 6}),
})

for (const backend of BACKENDS) {
  describe(`stock property on ${backend.name}`, () => {
    const t = backend.use()
    let f: DropFixture
    beforeAll(async () => {
      f = await createDropFixture(t.db, 4)
    })

    it('random interleavings of orders, retries and ends preserve conservation', async () => {
      let run = 0
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (s) => {
          run++
          const deps = {db: t.db}
          const drop = await createDrop(deps, {
            creatorId: f.creatorId,
            productId: f.productId,
            stock: s.stock,
            startsAt: new Date(),
            endsAt: new Date(Date.now() + 3_600_000),
            lowStockThreshold: s.lowStock,
            strategy: s.strategy,
            buckets: s.buckets,
          })
          await startDrop(deps, drop.id)
          const answers = new Map<string, PlaceOrderResult['response'][]>()
          const firstRequest = new Map<string, {qty: number; variant: number}>()
          const acked = new Map<string, AcknowledgedOrder>()
          let ended = false
          let ordersAtEnd = -1

          for (const batch of s.batches) {
            await Promise.all(
              batch.map(async (op) => {
                if (op.kind === 'end') return endDrop(deps, drop.id)
                const userId = f.buyerIds[op.user]
                const key = `p${run}-k${op.key}`
                const id = `${userId}:${key}`
                // the variant changes the payload only sometimes: mostly true retries
                const payload = op.variant === 0 ? {gift: true} : undefined
                try {
                  const r = await placeOrder(deps, {userId, dropId: drop.id, qty: op.qty, idempotencyKey: key, payload})
                  answers.set(id, [...(answers.get(id) ?? []), r.response])
                  // every request answered under one key is the same request (else: 422)
                  const request = {qty: op.qty, variant: op.variant === 0 ? 0 : 1}
                  if (!firstRequest.has(id)) firstRequest.set(id, request)
                  expect(request).toEqual(firstRequest.get(id))
                  if (r.outcome === 'confirmed') acked.set(id, {orderId: r.order!.id, userId, key})
                } catch (err) {
                  const expected =
                    err instanceof KeyReusedWithDifferentRequestError || err instanceof RequestInFlightError || err instanceof DropNotLiveError
                  if (!expected) throw err
                  if (err instanceof DropNotLiveError && !s.batches.some((b) => b.some((o) => o.kind === 'end'))) throw err
                }
              }),
            )
            const {rows} = await t.db.query<{n: number}>(`SELECT count(*)::int AS n FROM orders WHERE drop_id = $1`, [drop.id])
            // nothing sells after a batch that ended the drop
            if (ended) expect(rows[0].n).toBe(ordersAtEnd)
            if (!ended && batch.some((o) => o.kind === 'end')) {
              ended = true
              ordersAtEnd = rows[0].n
            }
          }

          for (const list of answers.values()) for (const a of list) expect(isDeepStrictEqual(a, list[0])).toBe(true)
          const checks = await checkDropInvariants(t.db, drop.id, [...acked.values()])
          expect(checks.filter((c) => !c.ok)).toEqual([])
          const status = await getDropStatus(t.db, drop.id)
          expect(status.available + status.sold).toBe(s.stock)
          const {rows} = await t.db.query<{event_type: string; n: number}>(
            `SELECT event_type, count(*)::int AS n FROM outbox WHERE drop_id = $1 GROUP BY 1`,
            [drop.id],
          )
          const events = Object.fromEntries(rows.map((r) => [r.event_type, r.n]))
          expect(events.order_confirmed ?? 0).toBe(status.orders)
          expect(events.stock_low ?? 0).toBeLessThanOrEqual(1)
          expect(events.sold_out ?? 0).toBe(status.status === 'sold_out' ? 1 : 0)
          // (a buckets drop may be ended between its last order's commit and that order's settle)
          if (status.available === 0 && status.status !== 'ended') {
            expect(status.status).toBe('sold_out')
            expect(events.stock_low).toBe(1)
          }
        }),
        {numRuns: backend.name === 'postgres' ? 25 : 20},
      )
    })
  })
}
