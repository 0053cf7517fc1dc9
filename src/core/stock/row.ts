import type {Queryable} from '../db/types.js'

/**
 * The `row` strategy (also Postgres's side of `redis-gate`): one conditional UPDATE of the drop's
 * row, for the caller to put in front of its order-writing statement, so the order, its events and
 * the stored answer are written in the same statement and the hot row lock is held only for the
 * rest of that statement and the COMMIT. The order that takes the last unit moves the drop to
 * sold_out and writes the sold_out event right there, so both happen exactly once.
 * CTE `took` has one row when the units were taken. Parameters: $2 drop id, $3 qty.
 */
export const ROW_TAKE_CTES = `took AS (
      UPDATE drops SET available = available - $3::int,
        status = CASE WHEN available = $3::int THEN 'sold_out' ELSE status END,
        updated_at = now()
      WHERE id = $2::bigint AND status = 'live' AND available >= $3::int
      RETURNING id, creator_id, product_id, available, status, low_stock_threshold, low_stock_notified),
    sold_out_event AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, payload)
      SELECT 'sold_out', id, creator_id, jsonb_build_object('productId', product_id) FROM took WHERE status = 'sold_out'
      RETURNING 1)`

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

/**
 * After an order took units: flags the drop once as low on stock (stock_low event) when it fell to
 * the threshold. The caller holds the row lock, so `low_stock_notified` read there was current.
 */
export async function markStockLow(tx: Queryable, dropId: number): Promise<boolean> {
  return (await tx.query(STOCK_LOW, [dropId])).rowCount === 1
}
