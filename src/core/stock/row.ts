import type {Queryable} from '../db/types.js'
import type {DropStatus} from '../events.js'

/**
 * The `row` strategy (also Postgres's side of `redis-gate`): one conditional UPDATE of the drop's
 * row. The caller runs it as the last statement before COMMIT, so the hot row lock is held as
 * briefly as possible. The order that takes the last unit moves the drop to sold_out and writes
 * the sold_out event in the same statement, so both happen exactly once.
 */
const TAKE = {
  name: 'stock.row.take',
  text: `WITH upd AS (
      UPDATE drops SET available = available - $2,
        status = CASE WHEN available = $2 THEN 'sold_out' ELSE status END,
        updated_at = now()
      WHERE id = $1 AND status = 'live' AND available >= $2
      RETURNING id, creator_id, product_id, available, status, low_stock_threshold, low_stock_notified),
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, payload)
      SELECT 'sold_out', id, creator_id, jsonb_build_object('productId', product_id) FROM upd WHERE status = 'sold_out'
      RETURNING 1)
    SELECT available, status, low_stock_threshold, low_stock_notified FROM upd`,
}

/** Flags the drop once as low on stock and writes the stock_low event; we hold the row lock already. */
const STOCK_LOW = {
  name: 'stock.row.stock_low',
  text: `WITH upd AS (
      UPDATE drops SET low_stock_notified = true
      WHERE id = $1 AND NOT low_stock_notified AND available <= low_stock_threshold
      RETURNING id, creator_id, product_id, available, low_stock_threshold)
    INSERT INTO outbox (event_type, drop_id, creator_id, payload)
    SELECT 'stock_low', id, creator_id, jsonb_build_object('productId', product_id, 'available', available, 'threshold', low_stock_threshold)
    FROM upd RETURNING 1`,
}

export interface RowTake {
  available: number
  status: DropStatus
  /** This order took the last unit. */
  soldOut: boolean
  /** This order crossed the low-stock threshold. */
  stockLow: boolean
}

/** Takes qty units, or returns null when the drop is not live or has fewer than qty left. */
export async function takeFromRow(tx: Queryable, dropId: number, qty: number): Promise<RowTake | null> {
  const {rows} = await tx.query<{available: number; status: DropStatus; low_stock_threshold: number; low_stock_notified: boolean}>(TAKE, [dropId, qty])
  if (rows.length === 0) return null
  const r = rows[0]
  let stockLow = false
  if (!r.low_stock_notified && r.available <= r.low_stock_threshold) {
    stockLow = (await tx.query(STOCK_LOW, [dropId])).rowCount === 1
  }
  return {available: r.available, status: r.status, soldOut: r.status === 'sold_out', stockLow}
}
