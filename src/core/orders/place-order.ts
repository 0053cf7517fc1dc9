import {InvalidQuantityError, KeyReusedWithDifferentRequestError, RequestInFlightError, UsageError, isUniqueViolation, sqlState} from '../errors.js'
import type {Db, Queryable} from '../db/types.js'
import {GATE_EPOCH_SQL} from '../stock/redis-gate.js'
import {strategyFor, type ClaimedOrder, type OrderContext} from '../stock/index.js'
import {DEFAULT_IN_FLIGHT_TIMEOUT_MS, clock, type EngineDeps} from './deps.js'
import {MAX_KEY_LENGTH, claimKey, completeKey, keyReused, recordAnswer, releaseKey, requestFingerprint, userNotFound} from './idempotency.js'
import type {DropInfo, OwnedKey, PlaceOrderInput, Placed, StoredResponse} from './types.js'
import {Fenced, notLive, soldOutResponse} from './write.js'

export type {PlaceOrderInput} from './types.js'

/**
 * The most units one order may ask for: a flash-sale limit per buyer (drops are small and sell to
 * many), and the bound the HTTP schema and `drop run --qty` check against.
 */
export const MAX_ORDER_QTY = 100

export interface Order {
  id: number
  dropId: number
  userId: number
  qty: number
  status: 'confirmed'
  /** ISO 8601, UTC. */
  createdAt: string
}

export interface PlaceOrderResult {
  outcome: 'confirmed' | 'sold_out'
  order?: Order
  /** True when this answer is the stored answer of an earlier request with the same key. */
  replay: boolean
  /** The HTTP-style answer (201 with the order, 409 SOLD_OUT) a replay returns verbatim. */
  response: StoredResponse
}

function toResult({response, replay}: {response: StoredResponse; replay: boolean}): PlaceOrderResult {
  if (response.status === 201) return {outcome: 'confirmed', order: response.body as unknown as Order, replay, response}
  return {outcome: 'sold_out', replay, response}
}

const EXISTING_ORDER = {
  name: 'orders.by_key',
  text: `SELECT drop_id, qty, jsonb_build_object('id', id, 'dropId', drop_id, 'userId', user_id, 'qty', qty, 'status', status,
      'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS body
    FROM orders WHERE user_id = $1 AND idempotency_key = $2`,
}

function fencedError(key: string): RequestInFlightError {
  return new RequestInFlightError(`another request took over idempotency key ${JSON.stringify(key)}`, {
    hint: 'Retry the same request in a second; it will replay the stored answer.',
    details: {retryAfterSeconds: 1},
  })
}

async function storeSoldOut(q: Queryable, owned: OwnedKey, input: PlaceOrderInput): Promise<StoredResponse> {
  const response = soldOutResponse(input.dropId, input.qty)
  if (!(await completeKey(q, owned, response))) throw new Fenced()
  return response
}

/** What the strategies get to know about one request, and the idempotency operations they may call. */
function orderContext(deps: EngineDeps, input: PlaceOrderInput, fingerprint: string, info: DropInfo): OrderContext {
  const now = clock(deps)
  const soldOut = soldOutResponse(input.dropId, input.qty)
  return {
    deps,
    input,
    fingerprint,
    info,
    now,
    soldOut,
    recordSoldOut: () => recordAnswer(deps.db, {userId: input.userId, key: input.idempotencyKey, fingerprint}, soldOut, now),
    keyReused: () => keyReused(input.idempotencyKey),
  }
}

/** Postgres's part: claim the key, take stock and write the order atomically, store the answer. */
async function placeInPostgres(deps: EngineDeps, input: PlaceOrderInput, fingerprint: string): Promise<Placed> {
  const db: Db = deps.db
  const claim = await claimKey(
    db,
    {userId: input.userId, key: input.idempotencyKey, dropId: input.dropId, fingerprint},
    () => clock(deps),
    deps.inFlightTimeoutMs ?? DEFAULT_IN_FLIGHT_TIMEOUT_MS,
  )
  if (claim.kind === 'replay') return {response: claim.response, replay: true, pgSoldOut: false}
  const {owned, drop} = claim
  try {
    const strategy = strategyFor(drop.strategy)
    if (drop.status === 'sold_out') return {response: await storeSoldOut(db, owned, input), replay: false, pgSoldOut: true}
    if (drop.status !== 'live') throw notLive(drop.id, drop.status)
    if (drop.available < input.qty) {
      // the claim's snapshot is an upper bound on the stock: sold out for this quantity, no locks needed
      if (drop.available === 0) await strategy.settle?.(deps, drop)
      return {response: await storeSoldOut(db, owned, input), replay: false, pgSoldOut: drop.available === 0}
    }
    const order: ClaimedOrder = {...orderContext(deps, input, fingerprint, drop), owned, drop, storeSoldOut: (q) => storeSoldOut(q, owned, input)}
    return await strategy.placeClaimed(order)
  } catch (err) {
    if (err instanceof Fenced) throw fencedError(input.idempotencyKey)
    if (isUniqueViolation(err, 'orders_user_id_idempotency_key_key')) return adoptExistingOrder(db, owned, input)
    // nothing worth storing happened: free the key so a retry runs afresh (a no-op if the
    // transaction did commit before the connection broke: the key is completed then)
    await releaseKey(db, owned).catch(() => {})
    throw err
  }
}

/**
 * orders' UNIQUE (user_id, idempotency_key) caught a second order for a key whose first answer is
 * not in the key table (a retry across midnight, or after its key was purged): answer with that order.
 */
async function adoptExistingOrder(db: Db, owned: OwnedKey, input: PlaceOrderInput): Promise<Placed> {
  const {rows} = await db.query<{drop_id: number; qty: number; body: Record<string, unknown>}>(EXISTING_ORDER, [input.userId, input.idempotencyKey])
  const existing = rows[0]
  if (!existing || Number(existing.drop_id) !== input.dropId || existing.qty !== input.qty) {
    await releaseKey(db, owned).catch(() => {})
    throw new KeyReusedWithDifferentRequestError(`idempotency key ${JSON.stringify(input.idempotencyKey)} already has an order for another request`, {
      hint: 'Use a new Idempotency-Key for a new request.',
    })
  }
  const response: StoredResponse = {status: 201, body: existing.body}
  if (!(await completeKey(db, owned, response))) throw fencedError(input.idempotencyKey)
  return {response, replay: true, pgSoldOut: false}
}

const DROP_INFO_SQL = {
  name: 'orders.drop_info',
  text: `SELECT id, strategy, creator_id, product_id, bucket_count, low_stock_threshold, ${GATE_EPOCH_SQL} AS epoch FROM drops WHERE id = $1`,
}

/** What never changes about drops seen before, per database, or the one read of it under way. */
const DROP_INFO = new WeakMap<Db, Map<number, DropInfo | Promise<DropInfo | null>>>()
/** Drops remembered per database before the memory starts afresh: far more than run at once, a few MB at most. */
const DROP_INFO_MAX = 100_000

/**
 * What never changes about a drop, read once per process (a drop's opening burst shares the one
 * read), so the first orders on a drop take the same one-statement path as later ones. Null for a
 * drop that does not exist (not remembered: it may be created later).
 */
function dropInfo(db: Db, dropId: number): DropInfo | Promise<DropInfo | null> {
  let map = DROP_INFO.get(db)
  if (!map) DROP_INFO.set(db, (map = new Map()))
  const known = map.get(dropId)
  if (known) return known
  if (map.size > DROP_INFO_MAX) map.clear()
  type Row = {id: number; strategy: string; creator_id: number; product_id: number; bucket_count: number; low_stock_threshold: number; epoch: number}
  const drops = map
  const loading = db.query<Row>(DROP_INFO_SQL, [dropId]).then(
    ({rows}) => {
      if (!rows.length) {
        drops.delete(dropId)
        return null
      }
      const r = rows[0]
      const info: DropInfo = {
        id: Number(r.id),
        strategy: r.strategy,
        creatorId: Number(r.creator_id),
        productId: Number(r.product_id),
        bucketCount: Number(r.bucket_count),
        lowStockThreshold: Number(r.low_stock_threshold),
        epoch: Number(r.epoch),
      }
      drops.set(dropId, info)
      return info
    },
    (err) => {
      drops.delete(dropId)
      throw err
    },
  )
  map.set(dropId, loading)
  return loading
}

function validate(input: PlaceOrderInput): void {
  if (!Number.isInteger(input.qty) || input.qty < 1 || input.qty > MAX_ORDER_QTY) {
    throw new InvalidQuantityError(`qty must be a whole number from 1 to ${MAX_ORDER_QTY}, got ${input.qty}`, {
      hint: `Order between 1 and ${MAX_ORDER_QTY} units.`,
      details: {qty: input.qty},
    })
  }
  if (typeof input.idempotencyKey !== 'string' || input.idempotencyKey.length === 0 || input.idempotencyKey.length > MAX_KEY_LENGTH) {
    throw new UsageError('idempotencyKey', `must be 1 to ${MAX_KEY_LENGTH} characters`, {hint: 'Send a unique Idempotency-Key (a UUID) with each new request.'})
  }
  if (!Number.isSafeInteger(input.userId) || input.userId < 1) throw new UsageError('userId', `must be a positive integer, got ${input.userId}`)
  if (!Number.isSafeInteger(input.dropId) || input.dropId < 1) throw new UsageError('dropId', `must be a positive integer, got ${input.dropId}`)
}

/**
 * Places an order during a live drop: never oversells, idempotent per (userId, idempotencyKey).
 * Sold out is an outcome (stored and replayed), not an error. Throws InvalidQuantityError,
 * DropNotLiveError, NotFoundError, UserNotFoundError, KeyReusedWithDifferentRequestError, RequestInFlightError.
 */
export async function placeOrder(deps: EngineDeps, input: PlaceOrderInput): Promise<PlaceOrderResult> {
  validate(input)
  try {
    return await place(deps, input, requestFingerprint(input))
  } catch (err) {
    // a user deleted between our check and the insert (the check is in the order's own statement)
    if (sqlState(err) === '23503' && /user_id_fkey$/.test((err as {constraint?: string}).constraint ?? '')) throw userNotFound(input.userId)
    throw err
  }
}

/** The strategy's fast path (if any), then one statement for a fresh key, else claim and order. */
async function place(deps: EngineDeps, input: PlaceOrderInput, fingerprint: string): Promise<PlaceOrderResult> {
  const info = await dropInfo(deps.db, input.dropId)
  if (!info) return toResult(await placeInPostgres(deps, input, fingerprint)) // throws NotFoundError
  const strategy = strategyFor(info.strategy)
  const order = orderContext(deps, input, fingerprint, info)
  const admission = strategy.admit ? await strategy.admit(order) : null
  if (admission?.answer) return toResult(admission.answer)
  let placed: Placed
  try {
    placed = (await strategy.placeFresh(order)) || (await placeInPostgres(deps, input, fingerprint))
  } catch (err) {
    await admission?.failed()
    throw err
  }
  await admission?.done(placed)
  return toResult(placed)
}
