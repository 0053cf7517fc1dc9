import {NotFoundError, UsageError, throwUsageErrors} from '../errors.js'
import type {ChangeFeed} from '../events.js'
import type {Db, Queryable} from '../db/types.js'
import {decodeCursor, encodeCursor, pageLimit, type Page, type PageOptions} from './cursor.js'

/** A product as readers see it. Timestamps are ISO strings (JSON-safe, cacheable as they are). */
export interface Product {
  id: number
  creatorId: number
  title: string
  description: string
  priceCents: number
  imageUrl: string | null
  createdAt: string
  updatedAt: string
  /** 1 when created, +1 on every edit and on removal: a copy with a lower version is stale. */
  version: number
}

export interface ProductPatch {
  title?: string
  description?: string
  priceCents?: number
  imageUrl?: string | null
}

/** What writers need: the database and, when readers cache, the feed that tells them. */
export interface CatalogDeps {
  db: Db
  changes?: ChangeFeed
}

interface ProductRow {
  id: number
  creator_id: number
  title: string
  description: string
  price_cents: number
  image_url: string | null
  created_at: Date | string
  updated_at: Date | string
  version: number
}

const COLUMNS = 'id, creator_id, title, description, price_cents, image_url, created_at, updated_at, version'

const SQL = {
  get: {name: 'products.get', text: `SELECT ${COLUMNS} FROM products WHERE id = $1 AND deleted_at IS NULL`},
  insert: {
    name: 'products.insert',
    text: `INSERT INTO products (creator_id, title, description, price_cents, image_url) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
  },
  // COALESCE keeps fields the patch leaves out; $6 says whether image_url was given (it may be set to null)
  update: {
    name: 'products.update',
    text: `UPDATE products SET title = COALESCE($2, title), description = COALESCE($3, description),
             price_cents = COALESCE($4, price_cents), image_url = CASE WHEN $6::boolean THEN $5 ELSE image_url END,
             updated_at = now(), version = version + 1
           WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
  },
  softDelete: {
    name: 'products.soft_delete',
    text: `UPDATE products SET deleted_at = now(), updated_at = now(), version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING id, creator_id, version`,
  },
  // the user behind the product's creator; a removed product has no owner who may change it
  owner: {
    name: 'products.owner',
    text: `SELECT c.user_id, p.deleted_at IS NOT NULL AS deleted FROM products p JOIN creators c ON c.id = p.creator_id WHERE p.id = $1`,
  },
  firstPage: {
    name: 'products.by_creator_first',
    text: `SELECT ${COLUMNS} FROM products WHERE creator_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT $2`,
  },
  nextPage: {
    name: 'products.by_creator_next',
    text: `SELECT ${COLUMNS} FROM products WHERE creator_id = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3`,
  },
}

export const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString())

export function toProduct(r: ProductRow): Product {
  return {
    id: Number(r.id),
    creatorId: Number(r.creator_id),
    title: r.title,
    description: r.description,
    priceCents: Number(r.price_cents),
    imageUrl: r.image_url,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    version: Number(r.version),
  }
}

function productNotFound(id: number): NotFoundError {
  return new NotFoundError(`product ${id} not found`, {hint: 'Check the product id; deleted products are not shown.', details: {productId: id}})
}

function validatePatch(p: ProductPatch): void {
  const errors: UsageError[] = []
  if (p.title !== undefined && (typeof p.title !== 'string' || p.title.trim() === '' || p.title.length > 200)) {
    errors.push(new UsageError('title', 'must be 1–200 characters'))
  }
  if (p.description !== undefined && (typeof p.description !== 'string' || p.description.length > 10_000)) {
    errors.push(new UsageError('description', 'must be at most 10,000 characters'))
  }
  if (p.priceCents !== undefined && !(Number.isSafeInteger(p.priceCents) && p.priceCents >= 0 && p.priceCents <= 2 ** 31 - 1)) {
    errors.push(new UsageError('priceCents', `must be a whole number of cents ≥ 0, got ${p.priceCents}`))
  }
  throwUsageErrors(errors)
}

/** A product that is not deleted, or null. */
export async function getProduct(db: Queryable, id: number): Promise<Product | null> {
  const {rows} = await db.query<ProductRow>(SQL.get, [id])
  return rows[0] ? toProduct(rows[0]) : null
}

export async function createProduct(deps: CatalogDeps, input: {creatorId: number; title: string; description?: string; priceCents: number; imageUrl?: string | null}): Promise<Product> {
  validatePatch(input)
  const {rows} = await deps.db.query<ProductRow>(SQL.insert, [input.creatorId, input.title, input.description ?? '', input.priceCents, input.imageUrl ?? null])
  const product = toProduct(rows[0])
  deps.changes?.emit({type: 'product', productId: product.id, creatorId: product.creatorId})
  return product
}

/** Edits a product; emits a 'product' change after the write. Throws NotFoundError for missing or deleted ones. */
export async function updateProduct(deps: CatalogDeps, id: number, patch: ProductPatch): Promise<Product> {
  validatePatch(patch)
  const {rows} = await deps.db.query<ProductRow>(SQL.update, [
    id,
    patch.title ?? null,
    patch.description ?? null,
    patch.priceCents ?? null,
    patch.imageUrl ?? null,
    patch.imageUrl !== undefined,
  ])
  if (!rows[0]) throw productNotFound(id)
  const product = toProduct(rows[0])
  deps.changes?.emit({type: 'product', productId: product.id, creatorId: product.creatorId})
  return product
}

/** Soft-deletes (sets deleted_at, bumps the version); emits a 'product' change. Throws NotFoundError when missing or already deleted. */
export async function deleteProduct(deps: CatalogDeps, id: number): Promise<{id: number; creatorId: number; version: number}> {
  const {rows} = await deps.db.query<{id: number; creator_id: number; version: number}>(SQL.softDelete, [id])
  if (!rows[0]) throw productNotFound(id)
  const out = {id: Number(rows[0].id), creatorId: Number(rows[0].creator_id), version: Number(rows[0].version)}
  deps.changes?.emit({type: 'product', productId: out.id, creatorId: out.creatorId})
  return out
}

/**
 * The user id of the product's creator (who alone may edit or remove it), or null when there is
 * no such product or it was removed.
 */
export async function productOwner(db: Queryable, id: number): Promise<number | null> {
  const {rows} = await db.query<{user_id: number; deleted: boolean}>(SQL.owner, [id])
  return rows[0] && !rows[0].deleted ? Number(rows[0].user_id) : null
}

/** Product and drop pages: 20 by default, at most 100. */
export const CATALOG_PAGE = {fallback: 20, max: 100}

/** A creator's live (not deleted) products in id order, keyset-paged: stable under inserts and deletes. */
export async function listCreatorProducts(db: Queryable, creatorId: number, options: PageOptions = {}): Promise<Page<Product>> {
  const limit = pageLimit(options.limit, CATALOG_PAGE)
  // one row more than asked says whether a next page exists
  const result = options.cursor
    ? await db.query<ProductRow>(SQL.nextPage, [creatorId, decodeCursor(options.cursor, ['number'])[0], limit + 1])
    : await db.query<ProductRow>(SQL.firstPage, [creatorId, limit + 1])
  const items = result.rows.slice(0, limit).map(toProduct)
  return {items, nextCursor: result.rows.length > limit ? encodeCursor([items[items.length - 1].id]) : null}
}
