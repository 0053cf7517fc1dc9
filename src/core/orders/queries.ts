import {NotFoundError} from '../errors.js'
import type {Queryable} from '../db/types.js'
import {decodeCursor, encodeCursor, pageLimit, type Page, type PageOptions} from '../catalog/cursor.js'
import {CATALOG_PAGE} from '../catalog/products.js'

/** An order as its owner sees it. */
export interface OrderView {
  id: number
  dropId: number
  qty: number
  status: string
  createdAt: Date
}

const SQL = {
  one: {
    name: 'orders.get_for_user',
    text: `SELECT id, drop_id, qty, status, created_at FROM orders WHERE id = $1 AND user_id = $2`,
  },
  page: {
    name: 'orders.page_for_user',
    text: `SELECT id, drop_id, qty, status, created_at FROM orders WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
  },
}

interface OrderRow {
  id: number
  drop_id: number
  qty: number
  status: string
  created_at: Date
}

const view = (r: OrderRow): OrderView => ({id: Number(r.id), dropId: Number(r.drop_id), qty: r.qty, status: r.status, createdAt: r.created_at})

/** The user's own order; someone else's is "not found", never "forbidden", so ids leak nothing. */
export async function getOrderForUser(db: Queryable, userId: number, orderId: number): Promise<OrderView> {
  const {rows} = await db.query<OrderRow>(SQL.one, [orderId, userId])
  if (rows.length === 0) throw new NotFoundError(`order ${orderId} not found`)
  return view(rows[0])
}

/** The user's orders, newest first, in keyset pages. */
export async function listUserOrders(db: Queryable, userId: number, options: PageOptions = {}): Promise<Page<OrderView>> {
  const limit = pageLimit(options.limit, CATALOG_PAGE)
  const before = options.cursor ? (decodeCursor(options.cursor, ['number'])[0] as number) : Number.MAX_SAFE_INTEGER
  const {rows} = await db.query<OrderRow>(SQL.page, [userId, before, limit + 1])
  const items = rows.slice(0, limit).map(view)
  return {items, nextCursor: rows.length > limit ? encodeCursor([items[items.length - 1].id]) : null}
}
