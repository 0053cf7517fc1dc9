import pg from 'pg'
import {beforeAll, describe, expect, it} from 'vitest'
import {createDrop, getDropStatus, reconcileDrop, startDrop} from '../src/core/catalog/drops.js'
import {KeyReusedWithDifferentRequestError, UserNotFoundError} from '../src/core/errors.js'
import type {EngineDeps} from '../src/core/orders/deps.js'
import {placeOrder, type PlaceOrderResult} from '../src/core/orders/place-order.js'
import {GATE_EPOCH_SQL, GATE_SOLD_OUT, gateTokens} from '../src/core/stock/redis-gate.js'
import type {StockStrategyName} from '../src/core/stock/index.js'
import {checkDropInvariants} from '../src/core/audit/drop.js'
import {createDropFixture, type DropFixture} from '../src/core/catalog/fixture.js'
import {usePostgres} from './helpers/db.js'
import {useRedisPrefix} from './helpers/redis.js'

/**
 * The redis gate's answers are exactly as trustworthy as Postgres's: never "sold out" while
 * Postgres still has the units, and every answer is the key's one answer whichever layer gave it.
 * Real Postgres, real Redis, real concurrency; the database and every stored answer are checked.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('redis-gate answers', () => {
  const t = usePostgres({max: 40})
  const shared = useRedisPrefix()
  let f: DropFixture
  const deps = (): EngineDeps => ({db: t.db, redis: shared.client, redisPrefix: shared.prefix})
  beforeAll(async () => {
    f = await createDropFixture(t.db, 200)
  })

  async function liveDrop(strategy: StockStrategyName, stock: number): Promise<number> {
    const drop = await createDrop(deps(), {
      creatorId: f.creatorId,
      productId: f.productId,
      stock,
      startsAt: new Date(),
      endsAt: new Date(Date.now() + 3_600_000),
      lowStockThreshold: 0,
      strategy,
    })
    await startDrop(deps(), drop.id)
    return drop.id
  }

  async function tokens(dropId: number): Promise<number | null> {
    const {rows} = await t.db.query<{epoch: number}>(`SELECT ${GATE_EPOCH_SQL} AS epoch FROM drops WHERE id = $1`, [dropId])
    return gateTokens(shared.client, {prefix: shared.prefix, dropId, epoch: Number(rows[0].epoch)})
  }

  /** Each answer is the one stored in Postgres for its key, and a retry replays it. */
  async function expectStoredAndReplayed(dropId: number, answers: Array<{userId: number; key: string; result: PlaceOrderResult}>): Promise<void> {
    for (const a of answers) {
      const {rows} = await t.db.query<{state: string; response_status: number; response_body: unknown}>(
        `SELECT state, response_status, response_body FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
        [a.userId, a.key],
      )
      expect(rows, a.key).toEqual([{state: 'completed', response_status: a.result.response.status, response_body: a.result.response.body}])
      const again = await placeOrder(deps(), {userId: a.userId, dropId, qty: 1, idempotencyKey: a.key})
      expect(again, a.key).toMatchObject({replay: true, response: a.result.response})
    }
  }

  it('an admitted request that fails in Postgres while others buy: nobody is told sold out while a unit remains', async () => {
    const dropId = await liveDrop('redis-gate', 5)
    const buyer = (i: number) => f.buyerIds[10 + i]
    for (let i = 0; i < 4; i++) expect((await placeOrder(deps(), {userId: buyer(i), dropId, qty: 1, idempotencyKey: `w-sell-${i}`})).outcome).toBe('confirmed')
    await reconcileDrop(deps(), dropId)
    expect(await tokens(dropId)).toBe(1)

    // another request with this key is committing right now (another instance): ours is admitted by
    // the gate (the last token), locks the drop row, and waits for that commit, then fails with 422
    const reuser = f.buyerIds[0]
    const held = new pg.Client({connectionString: t.url!})
    await held.connect()
    await held.query('BEGIN')
    await held.query(
      `INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
       VALUES ($1, 'w-reused', (now() AT TIME ZONE 'UTC')::date, 'sha256:another-request', 'completed', 409, '{}', now(), now())`,
      [reuser],
    )
    const failing = placeOrder(deps(), {userId: reuser, dropId, qty: 1, idempotencyKey: 'w-reused'}).catch((e: unknown) => e)
    for (let i = 0; i < 200; i++) {
      const {rows} = await t.db.query<{n: number}>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted AND a.datname = current_database()`,
      )
      if (rows[0].n > 0) break
      await sleep(10)
    }
    expect(await tokens(dropId)).toBe(0)

    // ten buyers arrive in the window; the failing request's token comes back only after the commit
    const keys = Array.from({length: 10}, (_, i) => ({userId: buyer(10 + i), key: `w-buy-${i}`}))
    const buying = Promise.all(keys.map(async (k) => ({...k, result: await placeOrder(deps(), {userId: k.userId, dropId, qty: 1, idempotencyKey: k.key})})))
    await sleep(300)
    await held.query('COMMIT')
    await held.end()
    expect(await failing).toBeInstanceOf(KeyReusedWithDifferentRequestError)
    const answers = await buying

    // the last unit went to one of them; the others were told sold out once it was gone
    expect(answers.filter((a) => a.result.outcome === 'confirmed')).toHaveLength(1)
    expect(await getDropStatus(t.db, dropId)).toMatchObject({status: 'sold_out', available: 0, sold: 5, orders: 5})
    expect(await tokens(dropId)).toBe(GATE_SOLD_OUT)
    const checks = await checkDropInvariants(t.db, dropId, [], {minSoldOutQty: 1})
    expect(checks.filter((c) => !c.ok)).toEqual([])
    await expectStoredAndReplayed(dropId, answers)
  })

  it('40 buyers for 40 units racing 20 admitted requests that fail in Postgres: all 40 buy, every answer stored', async () => {
    const stock = 40
    const dropId = await liveDrop('redis-gate', stock)
    // keys the failing requests reuse, first used on another drop
    const other = await liveDrop('row', 100)
    const reusers = Array.from({length: 10}, (_, i) => f.buyerIds[100 + i])
    for (const u of reusers) await placeOrder(deps(), {userId: u, dropId: other, qty: 1, idempotencyKey: `m-reused-${u}`})

    const buyers = Array.from({length: stock}, (_, i) => ({userId: f.buyerIds[40 + i], key: `m-buy-${i}`}))
    type Attempt = {kind: 'buyer'; userId: number; key: string} | {kind: 'ghost'; userId: number; key: string} | {kind: 'reuse'; userId: number; key: string}
    const attempts: Attempt[] = [
      ...buyers.map((b) => ({kind: 'buyer' as const, ...b})),
      ...Array.from({length: 10}, (_, i) => ({kind: 'ghost' as const, userId: 9_000_000 + i, key: `m-ghost-${i}`})),
      ...reusers.map((u) => ({kind: 'reuse' as const, userId: u, key: `m-reused-${u}`})),
    ]
    // interleave: a failing request between every few buyers, all at once
    attempts.sort((a, b) => (a.key.length % 3) - (b.key.length % 3) || a.key.localeCompare(b.key))
    const results = await Promise.all(
      attempts.map(async (a) => ({a, out: await placeOrder(deps(), {userId: a.userId, dropId, qty: 1, idempotencyKey: a.key}).catch((e: unknown) => e)})),
    )
    for (const {a, out} of results) {
      if (a.kind === 'ghost') expect(out, a.key).toBeInstanceOf(UserNotFoundError)
      if (a.kind === 'reuse') expect(out, a.key).toBeInstanceOf(KeyReusedWithDifferentRequestError)
      if (a.kind === 'buyer') expect((out as PlaceOrderResult).outcome, a.key).toBe('confirmed')
    }
    expect(await getDropStatus(t.db, dropId)).toMatchObject({status: 'sold_out', available: 0, sold: stock, orders: stock})
    const acked = results.filter((r) => r.a.kind === 'buyer').map((r) => ({orderId: (r.out as PlaceOrderResult).order!.id, userId: r.a.userId, key: r.a.key}))
    const checks = await checkDropInvariants(t.db, dropId, acked, {minSoldOutQty: 1})
    expect(checks.filter((c) => !c.ok)).toEqual([])
    await expectStoredAndReplayed(
      dropId,
      results.filter((r) => r.a.kind === 'buyer').map((r) => ({userId: r.a.userId, key: r.a.key, result: r.out as PlaceOrderResult})),
    )
    // nothing was stored for the failed requests beyond what they reused
    const {rows} = await t.db.query(`SELECT 1 FROM idempotency_keys WHERE key LIKE 'm-ghost-%'`)
    expect(rows).toHaveLength(0)
    // after the sell-out the gate answers alone, and records each answer
    const late = await placeOrder(deps(), {userId: f.buyerIds[150], dropId, qty: 1, idempotencyKey: 'm-late'})
    expect(late).toMatchObject({outcome: 'sold_out', replay: false})
    await expectStoredAndReplayed(dropId, [{userId: f.buyerIds[150], key: 'm-late', result: late}])
  })

  it('one key, one answer: a key answered by the gate is refused on another drop or payload with 422, as with `row`, both ways round', async () => {
    const gated = await liveDrop('redis-gate', 1)
    expect((await placeOrder(deps(), {userId: f.buyerIds[160], dropId: gated, qty: 1, idempotencyKey: 'one-sell'})).outcome).toBe('confirmed')
    const rowDrop = await liveDrop('row', 10)
    const u = f.buyerIds[161]

    // answered by the gate (the drop is sold out in Postgres), then reused elsewhere
    const fromGate = await placeOrder(deps(), {userId: u, dropId: gated, qty: 1, idempotencyKey: 'one-a'})
    expect(fromGate).toMatchObject({outcome: 'sold_out', replay: false})
    expect(await tokens(gated)).toBe(GATE_SOLD_OUT)
    await expect(placeOrder(deps(), {userId: u, dropId: rowDrop, qty: 1, idempotencyKey: 'one-a'})).rejects.toMatchObject({httpStatus: 422, code: 'KEY_REUSED_WITH_DIFFERENT_REQUEST'})
    await expect(placeOrder(deps(), {userId: u, dropId: gated, qty: 2, idempotencyKey: 'one-a'})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)
    await expect(placeOrder(deps(), {userId: u, dropId: gated, qty: 1, idempotencyKey: 'one-a', payload: {note: 'x'}})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)

    // answered by Postgres on the row drop, then reused on the gated drop (which the gate alone would call sold out)
    expect((await placeOrder(deps(), {userId: u, dropId: rowDrop, qty: 1, idempotencyKey: 'one-b'})).outcome).toBe('confirmed')
    await expect(placeOrder(deps(), {userId: u, dropId: gated, qty: 1, idempotencyKey: 'one-b'})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)

    // the same sequence on `row` drops only, for comparison
    const rowSold = await liveDrop('row', 1)
    await placeOrder(deps(), {userId: f.buyerIds[162], dropId: rowSold, qty: 1, idempotencyKey: 'one-row-sell'})
    expect((await placeOrder(deps(), {userId: u, dropId: rowSold, qty: 1, idempotencyKey: 'one-c'})).outcome).toBe('sold_out')
    await expect(placeOrder(deps(), {userId: u, dropId: rowDrop, qty: 1, idempotencyKey: 'one-c'})).rejects.toBeInstanceOf(KeyReusedWithDifferentRequestError)

    const {rows} = await t.db.query<{drop_id: number; idempotency_key: string}>(`SELECT drop_id, idempotency_key FROM orders WHERE user_id = $1`, [u])
    expect(rows.map((r) => [Number(r.drop_id), r.idempotency_key])).toEqual([[rowDrop, 'one-b']])
  })
})
