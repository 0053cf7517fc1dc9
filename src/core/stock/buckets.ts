import {hash32} from '../hash.js'
import type {Queryable} from '../db/types.js'

/**
 * The `buckets` strategy: a drop's stock split over N rows of drop_stock_buckets so concurrent
 * buyers lock different rows. A buyer starts at the bucket its key hashes to and moves on to the
 * next unlocked bucket with enough stock (FOR UPDATE SKIP LOCKED), so the last units still sell;
 * only when no single bucket can serve it does it lock every bucket (in bucket order, so two such
 * buyers cannot deadlock) and take from several, or answer sold out when the total is short.
 * drops.available is never decremented here: the sum of the buckets is the truth.
 */

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

export type BucketTake = {taken: true; bucketEmptied: boolean; totalAfter: number} | {taken: false; total: number}

/**
 * The fast path's SQL, for the caller to put in front of its order-writing statement: CTE `pick`
 * locks the first unlocked open bucket with enough stock from the start bucket round the ring
 * (skipping locked ones), `took` takes qty from it (no row when none could serve), and `total`
 * is the snapshot total before this order: an upper bound of what is left (stock only goes down).
 * Parameters: $2 drop id, $3 qty, $7 start bucket, $8 bucket count. `pickAlso` adds conditions
 * (SQL, starting with AND) a bucket may only be picked under.
 */
export const fastTakeCtes = (pickAlso = '') => `pick AS (
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
export async function takeFromBucketsSlow(tx: Queryable, dropId: number, qty: number, start: number, bucketCount: number): Promise<BucketTake> {
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
export async function settleBuckets(q: Queryable, dropId: number): Promise<{stockLow: boolean; soldOut: boolean}> {
  const stockLow = (await q.query(SETTLE_LOW, [dropId])).rowCount === 1
  const soldOut = (await q.query(SETTLE_SOLD_OUT, [dropId])).rowCount === 1
  return {stockLow, soldOut}
}
