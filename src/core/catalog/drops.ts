import {checkWholeNumber, DropStateError, NotFoundError, throwUsageErrors, UsageError} from '../errors.js'
import type {Queryable} from '../db/types.js'
import type {DropChangeReason, DropStatus} from '../events.js'
import type {EngineDeps} from '../orders/deps.js'
import {withRetry} from '../orders/retry.js'
import {GATE_EPOCH_SQL} from '../stock/redis-gate.js'
import {DEFAULT_BUCKETS, STOCK_STRATEGIES, availableStock, isStockStrategy, strategyFor, type StockStrategyName} from '../stock/index.js'

/**
 * The low-stock threshold a drop gets unless told otherwise: 10% of its stock, rounded down
 * (stock_low then fires with a tenth left; a drop under 10 units has none). Example: 500 → 50.
 */
export function defaultLowStockThreshold(stock: number): number {
  return Math.floor(stock / 10)
}

/**
 * Drops: a product's limited stock on sale between two times. Status only moves forward:
 * scheduled → live → sold_out | ended (a scheduled drop may also be ended: cancelled).
 * Start and end write their outbox event in the same transaction; the ChangeFeed hears of every
 * status or stock-threshold change after the commit.
 */

export interface CreateDropInput {
  creatorId: number
  productId: number
  /** Units on sale, ≥ 1. */
  stock: number
  startsAt: Date
  endsAt: Date
  /** stock_low is announced once when available falls to this or below. Default defaultLowStockThreshold(stock): 10% of the stock. */
  lowStockThreshold?: number
  /** Default 'row'. */
  strategy?: StockStrategyName
  /** Bucket rows for the `buckets` strategy, clamped to the stock. Default 16. */
  buckets?: number
}

export interface Drop {
  id: number
  creatorId: number
  productId: number
  startsAt: string
  endsAt: string
  stockTotal: number
  lowStockThreshold: number
  status: DropStatus
  strategy: StockStrategyName
  bucketCount: number
  createdAt: string
}

export interface DropStatusReport extends Drop {
  total: number
  available: number
  sold: number
  orders: number
}

const DROP_COLUMNS = `id, creator_id, product_id, starts_at, ends_at, stock_total, low_stock_threshold, status, strategy, bucket_count, created_at,
  ${GATE_EPOCH_SQL} AS epoch`

interface DropRow {
  id: number
  creator_id: number
  product_id: number
  starts_at: Date
  ends_at: Date
  stock_total: number
  low_stock_threshold: number
  status: DropStatus
  strategy: StockStrategyName
  bucket_count: number
  created_at: Date
  epoch: number
}

function toDrop(r: DropRow): Drop {
  return {
    id: Number(r.id),
    creatorId: Number(r.creator_id),
    productId: Number(r.product_id),
    startsAt: new Date(r.starts_at).toISOString(),
    endsAt: new Date(r.ends_at).toISOString(),
    stockTotal: r.stock_total,
    lowStockThreshold: r.low_stock_threshold,
    status: r.status,
    strategy: r.strategy,
    bucketCount: r.bucket_count,
    createdAt: new Date(r.created_at).toISOString(),
  }
}

const PRODUCT = {name: 'drops.product', text: `SELECT creator_id FROM products WHERE id = $1 AND deleted_at IS NULL`}
const INSERT_DROP = {
  name: 'drops.insert',
  text: `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, low_stock_threshold, strategy, bucket_count)
    VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) RETURNING ${DROP_COLUMNS}`,
}
const GET = {name: 'drops.get', text: `SELECT ${DROP_COLUMNS} FROM drops WHERE id = $1`}

function emit(deps: EngineDeps, drop: Drop, reason: DropChangeReason): void {
  deps.changes?.emit({type: 'drop', dropId: drop.id, productId: drop.productId, creatorId: drop.creatorId, status: drop.status, reason})
}

function notFound(dropId: number): NotFoundError {
  return new NotFoundError(`drop ${dropId} does not exist`, {hint: 'Check the drop id (`livedrop drop status ID`).'})
}

/** Creates a scheduled drop (and whatever rows its strategy keeps). Throws UsageError naming every bad field. */
export async function createDrop(deps: EngineDeps, input: CreateDropInput): Promise<Drop> {
  const name = input.strategy ?? 'row'
  const low = input.lowStockThreshold ?? defaultLowStockThreshold(input.stock)
  const errors: UsageError[] = []
  checkWholeNumber(errors, '--stock', input.stock, 1)
  checkWholeNumber(errors, '--low-stock', low, 0)
  if (!(input.startsAt instanceof Date) || Number.isNaN(input.startsAt.getTime())) errors.push(new UsageError('--starts-at', 'is not a valid time'))
  if (!(input.endsAt instanceof Date) || Number.isNaN(input.endsAt.getTime())) errors.push(new UsageError('--ends-at', 'is not a valid time'))
  else if (input.endsAt <= input.startsAt) errors.push(new UsageError('--ends-at', 'must be after --starts-at'))
  const strategy = isStockStrategy(name) ? strategyFor(name) : null
  if (!strategy) errors.push(new UsageError('--strategy', `must be one of ${STOCK_STRATEGIES.join(', ')}, got ${name}`))
  const buckets = input.buckets ?? DEFAULT_BUCKETS
  checkWholeNumber(errors, '--buckets', buckets, 1)
  const unavailable = strategy?.unavailable?.(deps)
  if (unavailable) errors.push(unavailable)
  throwUsageErrors(errors)

  const bucketCount = strategy!.bucketCount(input.stock, buckets)
  const drop = await deps.db.transaction(async (tx) => {
    const product = await tx.query<{creator_id: number}>(PRODUCT, [input.productId])
    if (!product.rows.length) throw new NotFoundError(`product ${input.productId} does not exist`, {hint: 'Check the product id.'})
    if (Number(product.rows[0].creator_id) !== input.creatorId) {
      throw new UsageError('--product', `product ${input.productId} belongs to creator ${product.rows[0].creator_id}, not ${input.creatorId}`)
    }
    const {rows} = await tx.query<DropRow>(INSERT_DROP, [input.productId, input.creatorId, input.startsAt, input.endsAt, input.stock, low, name, bucketCount])
    const drop = toDrop(rows[0])
    await strategy!.created?.(tx, {id: drop.id, stock: input.stock, bucketCount})
    return drop
  })
  emit(deps, drop, 'created')
  return drop
}

const START = {
  name: 'drops.start',
  text: `WITH upd AS (
      UPDATE drops SET status = 'live', updated_at = now() WHERE id = $1 AND status = 'scheduled'
      RETURNING ${DROP_COLUMNS}),
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, payload)
      SELECT 'drop_started', id, creator_id, jsonb_build_object('productId', product_id, 'stock', stock_total, 'endsAt', ends_at) FROM upd
      RETURNING 1)
    SELECT * FROM upd`,
}

export interface DropTransition {
  drop: Drop
  /** False when the drop was already in the asked-for state (the call was a no-op). */
  changed: boolean
}

/** scheduled → live, writing drop_started; a live drop is left as it is. Syncs the redis gate. */
export async function startDrop(deps: EngineDeps, dropId: number): Promise<DropTransition> {
  const {rows} = await deps.db.query<DropRow>(START, [dropId])
  if (!rows.length) {
    const drop = await getDrop(deps.db, dropId)
    if (drop.status === 'live') return {drop, changed: false}
    throw new DropStateError(`drop ${dropId} is ${drop.status}; only a scheduled drop can start`, {
      hint: 'Status only moves forward: scheduled → live → sold_out | ended.',
      details: {dropId, status: drop.status},
    })
  }
  const drop = toDrop(rows[0])
  await strategyFor(drop.strategy).started?.(deps, {id: drop.id, epoch: Number(rows[0].epoch)})
  emit(deps, drop, 'started')
  return {drop, changed: true}
}

const END = {
  name: 'drops.end',
  text: `WITH upd AS (
      UPDATE drops SET status = 'ended', updated_at = now() WHERE id = $1 AND status IN ('scheduled', 'live')
      RETURNING ${DROP_COLUMNS}),
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, payload)
      SELECT 'drop_ended', id, creator_id, jsonb_build_object('productId', product_id) FROM upd
      RETURNING 1)
    SELECT * FROM upd`,
}

/**
 * scheduled | live → ended, writing drop_ended; an ended or sold-out drop is left as it is.
 * The strategy locks what orders lock first (buckets: every bucket, so orders holding one finish
 * first) and closes it, so no order that takes stock afterwards can commit.
 */
export async function endDrop(deps: EngineDeps, dropId: number): Promise<DropTransition> {
  const strategy = strategyFor((await getDrop(deps.db, dropId)).strategy)
  // an order may hold a bucket it locked out of order (a lock kept after a failed re-check): a
  // deadlock with it is retried
  const rows = await withRetry(() =>
    deps.db.transaction(async (tx) => {
      await strategy.lockForEnd?.(tx, dropId)
      const ended = (await tx.query<DropRow>(END, [dropId])).rows
      if (ended.length) await strategy.closeForEnd?.(tx, dropId)
      return ended
    }),
  )
  if (!rows.length) {
    const drop = await getDrop(deps.db, dropId)
    return {drop, changed: false}
  }
  const drop = toDrop(rows[0])
  await strategy.ended?.(deps, {id: drop.id, epoch: Number(rows[0].epoch)})
  emit(deps, drop, 'ended')
  return {drop, changed: true}
}

export async function getDrop(q: Queryable, dropId: number): Promise<Drop> {
  const {rows} = await q.query<DropRow>(GET, [dropId])
  if (!rows.length) throw notFound(dropId)
  return toDrop(rows[0])
}

const SOLD = {
  name: 'drops.sold',
  text: `SELECT count(*)::int AS orders, coalesce(sum(qty), 0)::int AS sold FROM orders WHERE drop_id = $1 AND status = 'confirmed'`,
}

/** total, available (authoritative for the strategy), sold, orders, status, strategy and the rest. */
export async function getDropStatus(db: Queryable, dropId: number): Promise<DropStatusReport> {
  const drop = await getDrop(db, dropId)
  const available = (await availableStock(db, dropId)) ?? 0
  const {rows} = await db.query<{orders: number; sold: number}>(SOLD, [dropId])
  return {...drop, total: drop.stockTotal, available, sold: rows[0].sold, orders: rows[0].orders}
}

export interface ReconcileResult {
  drop: Drop
  available: number
  /** Events a buckets drop was still owed (its settle after an order did not run). */
  settled: {stockLow: boolean; soldOut: boolean}
  /** The redis gate as written from Postgres; null when the drop has no gate. */
  gate: {tokens: number; marked: number} | null
}

/**
 * Brings derived state in line with Postgres: a buckets drop's owed stock_low / sold_out, and the
 * redis gate's tokens and known keys (after Redis lost data, or leaked tokens to crashed buyers).
 */
export async function reconcileDrop(deps: EngineDeps, dropId: number): Promise<ReconcileResult> {
  let drop = await getDrop(deps.db, dropId)
  const {settled, gate} = (await strategyFor(drop.strategy).reconcile?.(deps, dropId)) ?? {settled: {stockLow: false, soldOut: false}, gate: null}
  if (settled.stockLow || settled.soldOut) {
    drop = await getDrop(deps.db, dropId)
    if (settled.stockLow) emit(deps, drop, 'stock_low')
    if (settled.soldOut) emit(deps, drop, 'sold_out')
  }
  return {drop, available: (await availableStock(deps.db, dropId)) ?? 0, settled, gate}
}

/**
 * Parses a drop time: ISO 8601, `now`, or `now` plus an offset like `+30m`, `+2h`, `+1d`, `-10s`.
 * Example: parseWhen('+2h', new Date('2030-01-01T00:00:00Z')) → 2030-01-01T02:00:00Z.
 */
export function parseWhen(text: string, now: Date, field: string): Date {
  const t = text.trim()
  if (t === 'now') return new Date(now)
  const rel = /^([+-])(\d+)(s|m|h|d)$/.exec(t)
  if (rel) {
    const unit = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}[rel[3] as 's' | 'm' | 'h' | 'd']
    return new Date(now.getTime() + (rel[1] === '-' ? -1 : 1) * Number(rel[2]) * unit)
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(t) ? new Date(t) : new Date(Number.NaN)
  if (Number.isNaN(at.getTime())) {
    throw new UsageError(field, `expected an ISO 8601 time, \`now\` or an offset like +2h, got ${text}`, {hint: 'Example: --starts-at now --ends-at +2h'})
  }
  return at
}
