import type {Queryable} from '../db/types.js'

export * from './types.js'

const AVAILABLE = {
  name: 'stock.available',
  text: `SELECT CASE WHEN d.strategy = 'buckets'
      THEN (SELECT coalesce(sum(b.available), 0) FROM drop_stock_buckets b WHERE b.drop_id = d.id)
      ELSE d.available END::int AS available
    FROM drops d WHERE d.id = $1`,
}

/**
 * The authoritative units left: drops.available for `row` and `redis-gate`, the sum of the bucket
 * rows for `buckets` (whose drops.available is never decremented). Null for an unknown drop.
 */
export async function availableStock(q: Queryable, dropId: number): Promise<number | null> {
  const {rows} = await q.query<{available: number}>(AVAILABLE, [dropId])
  return rows.length ? Number(rows[0].available) : null
}
