import {UsageError} from '../errors.js'
import type {Queryable} from '../db/types.js'
import type {DropStatus} from '../events.js'
import {decodeCursor, encodeCursor, pageLimit, type Page, type PageOptions} from './cursor.js'
import {CATALOG_PAGE, iso, listCreatorProducts, type Product} from './products.js'
import {availableSql, type StockStrategyName} from '../stock/index.js'

/** Stock a reader sees: the drop's strategy says where its units left are (stock/index.ts availableSql). */
export interface DropStock {
  dropId: number
  status: DropStatus
  stockTotal: number
  available: number
  lowStockThreshold: number
  /** status sold_out, or nothing left */
  soldOut: boolean
}

export interface DropView extends DropStock {
  id: number
  productId: number
  creatorId: number
  strategy: StockStrategyName
  startsAt: string
  endsAt: string
  /** null when the product was deleted after the drop was made */
  product: Pick<Product, 'id' | 'title' | 'description' | 'priceCents' | 'imageUrl'> | null
}

/** The browse tabs: upcoming = scheduled; live = live; ended = ended or sold out. */
export type DropListing = 'upcoming' | 'live' | 'ended'

const LISTING_STATUSES: Record<DropListing, DropStatus[]> = {
  upcoming: ['scheduled'],
  live: ['live'],
  ended: ['ended', 'sold_out'],
}

interface DropRow {
  id: number
  product_id: number
  creator_id: number
  starts_at: Date | string
  ends_at: Date | string
  starts_us: number | string
  stock_total: number
  available_now: number
  low_stock_threshold: number
  status: DropStatus
  strategy: DropView['strategy']
  p_id: number | null
  title: string | null
  description: string | null
  price_cents: number | null
  image_url: string | null
}

const AVAILABLE = `${availableSql('d')} AS available_now`

const VIEW = `SELECT d.id, d.product_id, d.creator_id, d.starts_at, d.ends_at,
    (extract(epoch FROM d.starts_at) * 1000000)::bigint AS starts_us,
    d.stock_total, ${AVAILABLE}, d.low_stock_threshold, d.status, d.strategy,
    p.id AS p_id, p.title, p.description, p.price_cents, p.image_url
  FROM drops d LEFT JOIN products p ON p.id = d.product_id AND p.deleted_at IS NULL`

// keyset on (starts_at, id); the cursor carries starts_at as exact epoch microseconds
const AFTER = `(d.starts_at, d.id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::bigint)`
const BEFORE = `(d.starts_at, d.id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::bigint)`

const SQL = {
  view: {name: 'browse.drop_view', text: `${VIEW} WHERE d.id = $1`},
  stock: {
    name: 'browse.drop_stock',
    text: `SELECT d.id, d.status, d.stock_total, ${AVAILABLE}, d.low_stock_threshold FROM drops d WHERE d.id = $1`,
  },
  ascFirst: {name: 'browse.drops_asc_first', text: `${VIEW} WHERE d.status = ANY($1::text[]) ORDER BY d.starts_at, d.id LIMIT $2`},
  ascNext: {name: 'browse.drops_asc_next', text: `${VIEW} WHERE d.status = ANY($1::text[]) AND ${AFTER} ORDER BY d.starts_at, d.id LIMIT $4`},
  descFirst: {name: 'browse.drops_desc_first', text: `${VIEW} WHERE d.status = ANY($1::text[]) ORDER BY d.starts_at DESC, d.id DESC LIMIT $2`},
  descNext: {
    name: 'browse.drops_desc_next',
    text: `${VIEW} WHERE d.status = ANY($1::text[]) AND ${BEFORE} ORDER BY d.starts_at DESC, d.id DESC LIMIT $4`,
  },
  creator: {name: 'browse.creator', text: `SELECT id, name, is_celebrity, follower_count FROM creators WHERE id = $1`},
  creatorDrops: {
    name: 'browse.creator_drops',
    text: `${VIEW} WHERE d.creator_id = $1 AND d.status IN ('scheduled', 'live') ORDER BY d.starts_at, d.id LIMIT $2`,
  },
}

function stockOf(id: number, status: DropStatus, stockTotal: number, available: number, lowStockThreshold: number): DropStock {
  return {dropId: id, status, stockTotal, available, lowStockThreshold, soldOut: status === 'sold_out' || available <= 0}
}

function toView(r: DropRow): DropView {
  const id = Number(r.id)
  return {
    id,
    productId: Number(r.product_id),
    creatorId: Number(r.creator_id),
    strategy: r.strategy,
    startsAt: iso(r.starts_at),
    endsAt: iso(r.ends_at),
    ...stockOf(id, r.status, Number(r.stock_total), Number(r.available_now), Number(r.low_stock_threshold)),
    product:
      r.p_id === null
        ? null
        : {id: Number(r.p_id), title: r.title!, description: r.description!, priceCents: Number(r.price_cents), imageUrl: r.image_url},
  }
}

/** A drop with its product and authoritative remaining stock, or null. */
export async function getDropView(db: Queryable, id: number): Promise<DropView | null> {
  const {rows} = await db.query<DropRow>(SQL.view, [id])
  return rows[0] ? toView(rows[0]) : null
}

/** Only a drop's status and stock: the small, short-lived part of the drop view. */
export async function getDropStock(db: Queryable, id: number): Promise<DropStock | null> {
  const {rows} = await db.query<{id: number; status: DropStatus; stock_total: number; available_now: number; low_stock_threshold: number}>(SQL.stock, [id])
  const r = rows[0]
  return r ? stockOf(Number(r.id), r.status, Number(r.stock_total), Number(r.available_now), Number(r.low_stock_threshold)) : null
}

export interface ListDropsOptions extends PageOptions {
  status: DropListing
}

/**
 * Drops of one browse tab, keyset-paged on (starts_at, id): upcoming and live soonest first,
 * ended (ended or sold out) latest first. Deterministic: ties in starts_at are ordered by id,
 * and a drop changing tab between pages is simply not repeated.
 */
export async function listDrops(db: Queryable, options: ListDropsOptions): Promise<Page<DropView>> {
  const statuses = LISTING_STATUSES[options.status]
  if (!statuses) throw new UsageError('status', `must be upcoming, live or ended, got ${options.status}`)
  const limit = pageLimit(options.limit, CATALOG_PAGE)
  const desc = options.status === 'ended'
  let result
  if (options.cursor) {
    const [startsUs, id] = decodeCursor(options.cursor, ['number', 'number'])
    result = await db.query<DropRow>(desc ? SQL.descNext : SQL.ascNext, [statuses, startsUs, id, limit + 1])
  } else {
    result = await db.query<DropRow>(desc ? SQL.descFirst : SQL.ascFirst, [statuses, limit + 1])
  }
  const rows = result.rows.slice(0, limit)
  const last = rows[rows.length - 1]
  return {items: rows.map(toView), nextCursor: result.rows.length > limit ? encodeCursor([Number(last.starts_us), Number(last.id)]) : null}
}

export interface CreatorPage {
  creator: {id: number; name: string; isCelebrity: boolean; followerCount: number}
  /** The first page of products; page on with listCreatorProducts. */
  products: Page<Product>
  /** Upcoming and live drops, soonest first (up to the limit). */
  drops: DropView[]
}

/** A creator's page: profile, first products page, upcoming and live drops. Null when no such creator. */
export async function getCreatorPage(db: Queryable, creatorId: number, options: {limit?: number} = {}): Promise<CreatorPage | null> {
  const limit = pageLimit(options.limit, CATALOG_PAGE)
  const {rows} = await db.query<{id: number; name: string; is_celebrity: boolean; follower_count: number}>(SQL.creator, [creatorId])
  if (!rows[0]) return null
  const [products, drops] = await Promise.all([
    listCreatorProducts(db, creatorId, {limit}),
    db.query<DropRow>(SQL.creatorDrops, [creatorId, limit]),
  ])
  const c = rows[0]
  return {
    creator: {id: Number(c.id), name: c.name, isCelebrity: c.is_celebrity, followerCount: Number(c.follower_count)},
    products,
    drops: drops.rows.map(toView),
  }
}
