import {hash32} from '../hash.js'
import type {Queryable} from '../db/types.js'
import type {DropStatus} from '../events.js'
import type {EngineDeps} from '../orders/deps.js'
import {withRetry} from '../orders/retry.js'
import type {DropInfo, Placed, StoredResponse} from '../orders/types.js'
import {
  COMPLETE_KEY_CTE,
  Fenced,
  NotTaken,
  ORDER_CTES,
  PRIOR_CTE,
  dropState,
  emitDrop,
  eventsCte,
  freshAnswerCtes,
  freshResponse,
  notLive,
  queryFresh,
  utcDay,
  WARM_UP_ORDER,
  type FreshRow,
} from '../orders/write.js'
import type {ClaimedOrder, FreshOrder, OrderContext, StockStrategy} from './types.js'

/**
 * The `buckets` strategy: a drop's stock split over N rows of drop_stock_buckets so concurrent
 * buyers lock different rows. A buyer starts at the bucket its key hashes to and moves on to the
 * next unlocked bucket with enough stock (FOR UPDATE SKIP LOCKED), so the last units still sell;
 * only when no single bucket can serve it does it lock every bucket (in bucket order, so two such
 * buyers cannot deadlock) and take from several, or answer sold out when the total is short.
 * drops.available is never decremented here: the sum of the buckets is the truth.
 */

/** Buckets a `buckets` drop is split into unless told otherwise. */
export const DEFAULT_BUCKETS = 16

/** Splits stock over n buckets as evenly as possible: 10 over 4 → [3, 3, 2, 2]. */
export function splitStock(stock: number, n: number): number[] {
  const base = Math.floor(stock / n)
  return Array.from({length: n}, (_, i) => base + (i < stock % n ? 1 : 0))
}

/** A stable start bucket for a buyer's key, so retries of one key start at one bucket. */
export function startBucket(userId: number, key: string, n: number): number {
  return hash32(`${userId}:${key}`) % n
}

/**
 * Takes qty from several buckets, visiting them from `start` round the ring; null when their
 * total is short. Example: [{0: 1}, {1: 0}, {2: 5}], qty 3, start 0 → [{bucket 0, take 1}, {bucket 2, take 2}].
 */
export function planTakes(buckets: Array<{bucket: number; available: number}>, qty: number, start: number): Array<{bucket: number; take: number}> | null {
  const total = buckets.reduce((sum, b) => sum + b.available, 0)
  if (total < qty) return null
  const n = buckets.length
  const ordered = [...buckets].sort((a, b) => ((a.bucket - start + n * 2) % n) - ((b.bucket - start + n * 2) % n))
  const plan: Array<{bucket: number; take: number}> = []
  let left = qty
  for (const b of ordered) {
    if (left === 0) break
    const take = Math.min(left, b.available)
    if (take > 0) plan.push({bucket: b.bucket, take})
    left -= take
  }
  return plan
}

const TOTAL = `(SELECT coalesce(sum(available), 0) FROM drop_stock_buckets WHERE drop_id = $1)::int`

/** Every bucket with enough stock is locked by someone: wait for the first one in our order. */
const WAIT_ONE = {
  name: 'stock.buckets.wait_one',
  text: `UPDATE drop_stock_buckets SET available = available - $2
    WHERE drop_id = $1 AND open AND available >= $2 AND bucket = (
      SELECT bucket FROM drop_stock_buckets WHERE drop_id = $1 AND open AND available >= $2
      ORDER BY (bucket - $3::int + $4::int) % $4::int LIMIT 1)
    RETURNING bucket, available, ${TOTAL} - $2 AS total_after`,
}

// closed buckets (an ended drop) are locked too but offer nothing
const LOCK_ALL = {
  name: 'stock.buckets.lock_all',
  text: `SELECT bucket, CASE WHEN open THEN available ELSE 0 END AS available FROM drop_stock_buckets WHERE drop_id = $1 ORDER BY bucket FOR UPDATE`,
}

const TAKE_MANY = {
  name: 'stock.buckets.take_many',
  text: `UPDATE drop_stock_buckets b SET available = b.available - t.take
    FROM unnest($2::int[], $3::int[]) AS t(bucket, take)
    WHERE b.drop_id = $1 AND b.bucket = t.bucket`,
}

type BucketTake = {taken: true; bucketEmptied: boolean; totalAfter: number} | {taken: false; total: number}

/**
 * The take's SQL, in front of the order-writing CTEs: CTE `pick`
 * locks the first unlocked open bucket with enough stock from the start bucket round the ring
 * (skipping locked ones), `took` takes qty from it (no row when none could serve), and `total`
 * is the snapshot total before this order: an upper bound of what is left (stock only goes down).
 * Parameters: $2 drop id, $3 qty, $7 start bucket, $8 bucket count. `pickAlso` adds conditions
 * (SQL, starting with AND) a bucket may only be picked under.
 */
const takeCtes = (pickAlso = '') => `pick AS (
      SELECT bucket FROM drop_stock_buckets
      WHERE drop_id = $2::bigint AND open AND available >= $3::int ${pickAlso}
      ORDER BY (bucket - $7::int + $8::int) % $8::int
      LIMIT 1 FOR UPDATE SKIP LOCKED),
    took AS (
      UPDATE drop_stock_buckets b SET available = b.available - $3::int
      FROM pick WHERE b.drop_id = $2::bigint AND b.bucket = pick.bucket AND b.open AND b.available >= $3::int
      RETURNING b.bucket, b.available),
    total AS (SELECT coalesce(sum(available), 0)::int AS n FROM drop_stock_buckets WHERE drop_id = $2::bigint)`

/**
 * The slow path, inside the caller's transaction, after the fast path found no bucket: waits for
 * one bucket with enough stock, else locks every bucket and takes from several. Reports not taken
 * with the exact total when the drop has fewer than qty left.
 */
async function takeFromBucketsSlow(tx: Queryable, dropId: number, qty: number, start: number, bucketCount: number): Promise<BucketTake> {
  const {rows: waited} = await tx.query<{available: number; total_after: number}>(WAIT_ONE, [dropId, qty, start, bucketCount])
  if (waited.length) return {taken: true, bucketEmptied: waited[0].available === 0, totalAfter: Math.max(0, waited[0].total_after)}
  const {rows} = await tx.query<{bucket: number; available: number}>(LOCK_ALL, [dropId])
  const plan = planTakes(rows, qty, start)
  const total = rows.reduce((sum, b) => sum + b.available, 0)
  if (!plan) return {taken: false, total}
  await tx.query(TAKE_MANY, [dropId, plan.map((p) => p.bucket), plan.map((p) => p.take)])
  const emptied = plan.some((p) => rows.find((r) => r.bucket === p.bucket)!.available === p.take)
  return {taken: true, bucketEmptied: emptied, totalAfter: total - qty}
}

const SETTLE_LOW = {
  name: 'stock.buckets.settle_low',
  text: `WITH s AS (SELECT ${TOTAL} AS avail),
    upd AS (
      UPDATE drops d SET low_stock_notified = true FROM s
      WHERE d.id = $1 AND NOT d.low_stock_notified AND d.status IN ('live', 'sold_out') AND s.avail <= d.low_stock_threshold
      RETURNING d.id, d.creator_id, d.product_id, s.avail, d.low_stock_threshold)
    INSERT INTO outbox (event_type, drop_id, creator_id, payload)
    SELECT 'stock_low', id, creator_id, jsonb_build_object('productId', product_id, 'available', avail, 'threshold', low_stock_threshold)
    FROM upd RETURNING 1`,
}

// a committed total of 0 is final (stock never comes back), so no bucket lock is needed
const SETTLE_SOLD_OUT = {
  name: 'stock.buckets.settle_sold_out',
  text: `WITH upd AS (
      UPDATE drops d SET status = 'sold_out', updated_at = now()
      WHERE d.id = $1 AND d.status = 'live' AND ${TOTAL} = 0
      RETURNING d.id, d.creator_id, d.product_id)
    INSERT INTO outbox (event_type, drop_id, creator_id, payload)
    SELECT 'sold_out', id, creator_id, jsonb_build_object('productId', product_id) FROM upd RETURNING 1`,
}

/**
 * Writes stock_low and sold_out for a buckets drop once their condition holds in committed data.
 * An order's own transaction cannot tell (other buckets' decrements are invisible to it), so it
 * runs after the order commits; the last order to commit always sees the final total.
 */
async function settleBuckets(q: Queryable, dropId: number): Promise<{stockLow: boolean; soldOut: boolean}> {
  const stockLow = (await q.query(SETTLE_LOW, [dropId])).rowCount === 1
  const soldOut = (await q.query(SETTLE_SOLD_OUT, [dropId])).rowCount === 1
  return {stockLow, soldOut}
}

/**
 * stock_low / sold_out of a buckets drop need committed totals (see settleBuckets); a failure here
 * is healed by the next order attempt or `drop reconcile`, so it must not fail a confirmed order.
 */
async function settleAndEmit(deps: EngineDeps, drop: DropInfo): Promise<void> {
  const settled = await settleBuckets(deps.db, drop.id).catch(() => ({stockLow: false, soldOut: false}))
  if (settled.stockLow) emitDrop(deps, drop, settled.soldOut ? 'sold_out' : 'live', 'stock_low')
  if (settled.soldOut) emitDrop(deps, drop, 'sold_out', 'sold_out')
}

const INSERT_BUCKETS = {
  name: 'stock.buckets.insert',
  text: `INSERT INTO drop_stock_buckets (drop_id, bucket, available)
    SELECT $1, b - 1, a FROM unnest($2::int[]) WITH ORDINALITY AS t(a, b)`,
}
// in bucket order, like the order path's lock-all, so the two cannot deadlock
const LOCK_BUCKETS = {name: 'stock.buckets.lock_for_end', text: `SELECT bucket FROM drop_stock_buckets WHERE drop_id = $1 ORDER BY bucket FOR UPDATE`}
const CLOSE_BUCKETS = {name: 'stock.buckets.close', text: `UPDATE drop_stock_buckets SET open = false WHERE drop_id = $1`}

/**
 * A fresh key: one unlocked open bucket (SKIP LOCKED), the order, the answer. Only a drop live in
 * the snapshot sells (a start racing us is simply not seen yet); a closed bucket (the drop ended,
 * re-checked on the locked row) never serves. $6 fingerprint, $7 start bucket, $8 bucket count,
 * $9 now, $10 sold-out body.
 */
const FRESH = {
  name: 'orders.fresh.buckets',
  text: `WITH ${PRIOR_CTE},
    snap AS (SELECT status FROM drops WHERE id = $2::bigint AND strategy = 'buckets'),
    ${takeCtes("AND NOT EXISTS (SELECT 1 FROM prior) AND EXISTS (SELECT 1 FROM snap WHERE status = 'live')")},
    d AS (SELECT drops.id, drops.creator_id FROM drops, took WHERE drops.id = $2::bigint),
    ${ORDER_CTES},
    sold AS (
      SELECT $10::jsonb AS b FROM snap, total
      WHERE NOT EXISTS (SELECT 1 FROM took) AND NOT EXISTS (SELECT 1 FROM prior)
        AND snap.status IN ('live', 'sold_out') AND total.n < $3::int),
    ${freshAnswerCtes('$9')},
    ${eventsCte()}
    SELECT (SELECT count(*) FROM prior)::int AS prior, snap.status AS snap_status, answer.status AS response_status, answer.b AS body,
      took.available AS bucket_left, total.n AS total
    FROM (SELECT 1) one LEFT JOIN snap ON true LEFT JOIN answer ON true LEFT JOIN took ON true LEFT JOIN total ON true`,
}

/** FRESH's parameters for an order (listed above FRESH). */
function freshParams({input, fingerprint, now, soldOut, info}: FreshOrder): unknown[] {
  const start = startBucket(input.userId, input.idempotencyKey, info.bucketCount)
  return [input.userId, input.dropId, input.qty, input.idempotencyKey, utcDay(now), fingerprint, start, info.bucketCount, now, JSON.stringify(soldOut.body)]
}

/**
 * A claimed key, in its transaction: lock and take from a bucket, then write the order. The
 * bucket's `open` flag (cleared by an end, re-checked on the locked row) stands for "live".
 * $5 key day, $6 the claim's token, $7 start bucket, $8 bucket count.
 */
const CLAIMED = {
  name: 'orders.claimed.buckets',
  text: `WITH ${takeCtes()},
    d AS (SELECT drops.id, drops.creator_id FROM drops, took WHERE drops.id = $2::bigint),
    ${ORDER_CTES},
    ${COMPLETE_KEY_CTE},
    ${eventsCte()}
    SELECT took.bucket, took.available, total.n AS total, body.b AS body, (SELECT count(*) FROM k)::int AS keyed
    FROM total LEFT JOIN took ON true LEFT JOIN body ON true`,
}

/** After the slow path took the units: the order, if the drop is live (a new statement: it sees an end committed before it). */
const FINISH = {
  name: 'orders.claimed.buckets_finish',
  text: `WITH d AS (SELECT id, creator_id FROM drops WHERE id = $2::bigint AND status = 'live'),
    ${ORDER_CTES},
    ${COMPLETE_KEY_CTE},
    ${eventsCte()}
    SELECT body.b AS body, (SELECT count(*) FROM k)::int AS keyed FROM body`,
}

export const buckets: StockStrategy = {
  name: 'buckets',
  bucketed: true,
  bucketCount: (stock, asked) => Math.min(asked, stock),

  async created(tx, drop) {
    await tx.query(INSERT_BUCKETS, [drop.id, splitStock(drop.stock, drop.bucketCount)])
  },
  async lockForEnd(tx, dropId) {
    await tx.query(LOCK_BUCKETS, [dropId])
  },
  async closeForEnd(tx, dropId) {
    await tx.query(CLOSE_BUCKETS, [dropId])
  },
  async reconcile(deps, dropId) {
    return {settled: await settleBuckets(deps.db, dropId), gate: null}
  },

  // before the buckets exist (a drop row written by hand) drops.available holds the stock
  available: (d) => `COALESCE((SELECT sum(b.available) FROM drop_stock_buckets b WHERE b.drop_id = ${d}.id), ${d}.available)`,

  async placeFresh(order: OrderContext): Promise<Placed | null> {
    const {deps, input, info} = order
    const r = await queryFresh<FreshRow & {bucket_left: number | null; total: number | null}>(deps.db, FRESH, freshParams(order))
    const response = r && freshResponse(r, input.dropId)
    if (!r || !response) return null
    const confirmed = response.status === 201
    const totalAfter = r.total! - (confirmed ? input.qty : 0)
    if ((confirmed && (r.bucket_left === 0 || totalAfter <= info.lowStockThreshold)) || (!confirmed && r.total === 0)) await settleAndEmit(deps, info)
    return {response, replay: false, pgSoldOut: !confirmed && (r.snap_status === 'sold_out' || r.total === 0)}
  },

  async warmFresh(q: Queryable): Promise<void> {
    await q.query(FRESH, freshParams(WARM_UP_ORDER))
  },

  async placeClaimed(order: ClaimedOrder): Promise<Placed> {
    const {deps, input, owned, drop} = order
    const start = startBucket(input.userId, input.idempotencyKey, drop.bucketCount)
    type Out =
      | {kind: 'confirmed'; body: Record<string, unknown>; settle: boolean}
      | {kind: 'sold_out'; response: StoredResponse; stockLow: boolean; soldOut: boolean; status: DropStatus}
    const lowSoon = (totalAfter: number) => !drop.lowStockNotified && totalAfter <= drop.lowStockThreshold
    const keyed = [input.userId, input.dropId, input.qty, input.idempotencyKey, owned.day, owned.token]
    let out: Out
    try {
      out = await withRetry(() =>
        deps.db.transaction(async (tx): Promise<Out> => {
          type Fast = {bucket: number | null; available: number; total: number; body: Record<string, unknown> | null; keyed: number}
          const fast = (await tx.query<Fast>(CLAIMED, [...keyed, start, drop.bucketCount])).rows[0]
          if (fast.bucket !== null) {
            if (fast.keyed !== 1) throw new Fenced()
            return {kind: 'confirmed', body: fast.body!, settle: fast.available === 0 || lowSoon(fast.total - input.qty)}
          }
          // fewer than qty left even before any lock: sold out for this quantity, no waiting on locks;
          // otherwise every bucket that could serve is locked (or the drop ended): the slow path
          const take = fast.total < input.qty ? ({taken: false, total: fast.total} as const) : await takeFromBucketsSlow(tx, input.dropId, input.qty, start, drop.bucketCount)
          if (!take.taken) {
            const settled = take.total === 0 ? await settleBuckets(tx, input.dropId) : {stockLow: false, soldOut: false}
            const {status} = await dropState(tx, input.dropId)
            if (status !== 'live' && status !== 'sold_out') throw new NotTaken()
            return {kind: 'sold_out', response: await order.storeSoldOut(tx), ...settled, status}
          }
          const {rows} = await tx.query<{body: Record<string, unknown>; keyed: number}>(FINISH, keyed)
          if (!rows.length) throw new NotTaken()
          if (rows[0].keyed !== 1) throw new Fenced()
          return {kind: 'confirmed', body: rows[0].body, settle: take.bucketEmptied || lowSoon(take.totalAfter)}
        }),
      )
    } catch (err) {
      if (!(err instanceof NotTaken)) throw err
      throw notLive(input.dropId, (await dropState(deps.db, input.dropId)).status)
    }
    if (out.kind === 'sold_out') {
      if (out.stockLow) emitDrop(deps, drop, out.status, 'stock_low')
      if (out.soldOut) emitDrop(deps, drop, 'sold_out', 'sold_out')
      return {response: out.response, replay: false, pgSoldOut: out.status === 'sold_out'}
    }
    if (out.settle) await settleAndEmit(deps, drop)
    return {response: {status: 201, body: out.body}, replay: false, pgSoldOut: false}
  },

  settle: settleAndEmit,
}
