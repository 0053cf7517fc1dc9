import type {Queryable} from '../db/types.js'
import {availableStock} from '../stock/index.js'

/** An order the engine acknowledged (answered "confirmed") to a buyer. */
export interface AcknowledgedOrder {
  orderId: number
  userId: number
  key: string
}

export interface InvariantResult {
  name: 'no_oversell' | 'no_duplicate_orders' | 'every_ack_persisted' | 'stock_conserved' | 'replays_identical'
  ok: boolean
  details: Record<string, unknown>
}

export interface InvariantOptions {
  /**
   * The smallest quantity the run was answered "sold out" for: the stock left must be below it,
   * or a buyer was refused while stock remained (with qty 1 this means sold = total). Default: not checked.
   */
  minSoldOutQty?: number
}

const TOTALS = {
  name: 'invariants.totals',
  text: `SELECT d.stock_total AS total,
      (SELECT coalesce(sum(qty), 0) FROM orders o WHERE o.drop_id = d.id AND o.status = 'confirmed')::int AS sold,
      (SELECT count(*) FROM drop_stock_buckets b WHERE b.drop_id = d.id AND b.available < 0)::int AS negative_buckets
    FROM drops d WHERE d.id = $1`,
}

const DUPLICATES = {
  name: 'invariants.duplicates',
  text: `SELECT user_id, idempotency_key, count(*)::int AS n FROM orders WHERE drop_id = $1
    GROUP BY user_id, idempotency_key HAVING count(*) > 1 LIMIT 20`,
}

/**
 * The acknowledged orders not stored as acknowledged. Joined on the order's id alone, so each is
 * one primary-key lookup: with the drop's conditions inside a NOT EXISTS, a drop too new for the
 * statistics (estimated at 2 orders) got a nested loop over all of its orders for every
 * acknowledgement, 5 s for 20,000 orders and quadratic beyond.
 */
const PERSISTED = {
  name: 'invariants.persisted',
  text: `SELECT a.id FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS a(id, user_id, key)
    LEFT JOIN orders o ON o.id = a.id
    WHERE o.id IS NULL OR (o.user_id, o.idempotency_key, o.drop_id, o.status) IS DISTINCT FROM (a.user_id, a.key, $1::bigint, 'confirmed')
    LIMIT 20`,
}

/**
 * Checks a drop against the database after a run: no unit sold beyond the stock, at most one order
 * per (user, key), every acknowledged order stored as acknowledged, and available + sold = total
 * (across buckets for the buckets strategy).
 */
export async function checkDropInvariants(
  db: Queryable,
  dropId: number,
  acknowledged: AcknowledgedOrder[],
  options: InvariantOptions = {},
): Promise<InvariantResult[]> {
  const {rows} = await db.query<{total: number; sold: number; negative_buckets: number}>(TOTALS, [dropId])
  if (!rows.length) throw new Error(`checkDropInvariants: drop ${dropId} does not exist`)
  const {total, sold, negative_buckets: negativeBuckets} = rows[0]
  const available = (await availableStock(db, dropId)) ?? 0

  const oversold = sold > total
  const undersold = options.minSoldOutQty !== undefined && available >= options.minSoldOutQty
  const duplicates = await db.query<{user_id: number; idempotency_key: string; n: number}>(DUPLICATES, [dropId])
  const missing = await db.query<{id: number}>(PERSISTED, [
    dropId,
    acknowledged.map((a) => a.orderId),
    acknowledged.map((a) => a.userId),
    acknowledged.map((a) => a.key),
  ])

  return [
    {
      name: 'no_oversell',
      ok: !oversold && !undersold,
      details: {total, sold, available, ...(options.minSoldOutQty !== undefined ? {minSoldOutQty: options.minSoldOutQty, undersold} : {})},
    },
    {
      name: 'no_duplicate_orders',
      ok: duplicates.rows.length === 0,
      details: {duplicates: duplicates.rows.map((r) => ({userId: Number(r.user_id), key: r.idempotency_key, orders: r.n}))},
    },
    {
      name: 'every_ack_persisted',
      ok: missing.rows.length === 0,
      details: {acknowledged: acknowledged.length, missing: missing.rows.map((r) => Number(r.id))},
    },
    {
      name: 'stock_conserved',
      ok: available + sold === total && available >= 0 && negativeBuckets === 0,
      details: {total, available, sold, negativeBuckets},
    },
  ]
}

const OUTCOME = {
  name: 'audit.outcome',
  text: `SELECT d.status, (SELECT coalesce(sum(qty), 0)::int FROM orders o WHERE o.drop_id = d.id) AS sold FROM drops d WHERE d.id = $1`,
}

/** A drop's status and the units its orders hold (any status), for a run's report. */
export async function dropOutcome(db: Queryable, dropId: number): Promise<{status: string; unitsSold: number}> {
  const {rows} = await db.query<{status: string; sold: number}>(OUTCOME, [dropId])
  if (!rows.length) throw new Error(`dropOutcome: drop ${dropId} does not exist`)
  return {status: rows[0].status, unitsSold: Number(rows[0].sold)}
}
