import {DropNotLiveError, InvalidQuantityError, KeyReusedWithDifferentRequestError, RequestInFlightError, UsageError, isUniqueViolation, sqlState} from '../errors.js'
import type {Db, Queryable} from '../db/types.js'
import type {DropStatus} from '../events.js'
import {fastTakeCtes, settleBuckets, startBucket, takeFromBucketsSlow} from '../stock/buckets.js'
import {GATE_EPOCH_SQL, gateAdmit, gateEmpty, gateMark, gateRefund, syncGate, type GateAnswer, type GateClient, type GateRef} from '../stock/redis-gate.js'
import {ROW_TAKE_CTES, markStockLow} from '../stock/row.js'
import {DEFAULT_IN_FLIGHT_TIMEOUT_MS, DEFAULT_REDIS_PREFIX, clock, type EngineDeps} from './deps.js'
import {
  MAX_KEY_LENGTH,
  claimKey,
  completeKey,
  keyReused,
  recordAnswer,
  releaseKey,
  requestFingerprint,
  userNotFound,
  utcDay,
  type DropFacts,
  type DropInfo,
  type OwnedKey,
  type StoredResponse,
} from './idempotency.js'
import {withRetry} from './retry.js'

/** The most units one order may ask for. */
export const MAX_ORDER_QTY = 100

export interface PlaceOrderInput {
  userId: number
  dropId: number
  qty: number
  /** The client's Idempotency-Key: retries of one request carry the same key. */
  idempotencyKey: string
  /** Anything else the request carried (shipping, notes); part of the request fingerprint. */
  payload?: unknown
}

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

/** The stored answer for a sold-out request: a function of the request alone, so every replay path agrees. */
export function soldOutResponse(dropId: number, qty: number): StoredResponse {
  const message = qty === 1 ? `drop ${dropId} is sold out` : `drop ${dropId} has fewer than ${qty} units left`
  // the API's one error shape, so clients read error.code for sold out as for every other refusal.
  // Keys in jsonb's order (shorter first, then bytewise): a replay read back from Postgres's jsonb
  // column must serialise to the very bytes of the first answer.
  return {status: 409, body: {error: {code: 'SOLD_OUT', dropId, message, requested: qty}}}
}

function toResult({response, replay}: {response: StoredResponse; replay: boolean}): PlaceOrderResult {
  if (response.status === 201) return {outcome: 'confirmed', order: response.body as unknown as Order, replay, response}
  return {outcome: 'sold_out', replay, response}
}

/** After CTE `d` (one row only when the order may be written): the order and its answer's body. */
export const ORDER_CTES = `o AS (
      INSERT INTO orders (user_id, drop_id, qty, idempotency_key)
      SELECT $1::bigint, d.id, $3::int, $4::text FROM d
      RETURNING id, created_at),
    body AS (
      SELECT jsonb_build_object('id', o.id, 'dropId', $2::bigint, 'userId', $1::bigint, 'qty', $3::int, 'status', 'confirmed',
        'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS b
      FROM o)`

/**
 * After CTE `d` (the drop's id and creator_id, one row only when the order may be written): the
 * order, its order_confirmed event and the key's stored answer (state completed, fenced by the
 * claim's token), all in one statement. $1 user, $2 drop, $3 qty, $4 key, $5 key day, $6 token.
 */
const WRITE_ORDER_CTES = `${ORDER_CTES},
    k AS (
      UPDATE idempotency_keys SET state = 'completed', response_status = 201, response_body = body.b, completed_at = now(), locked_at = NULL
      FROM body
      WHERE user_id = $1::bigint AND key = $4::text AND created_day = $5::date AND state = 'in_flight' AND locked_at = $6::timestamptz
      RETURNING 1),
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, user_id, payload)
      SELECT 'order_confirmed', d.id, d.creator_id, $1::bigint, jsonb_build_object('orderId', o.id, 'qty', $3::int) FROM d, o
      RETURNING 1)`

/** Writes the order if the drop is live (a new statement: it sees an end committed before it). */
const FINISH = {
  name: 'orders.finish',
  text: `WITH d AS (SELECT id, creator_id FROM drops WHERE id = $2::bigint AND status = 'live'),
    ${WRITE_ORDER_CTES}
    SELECT body.b AS body, (SELECT count(*) FROM k)::int AS keyed FROM body`,
}

/** row / redis-gate in one statement: the hot row's conditional UPDATE, then the order. */
const ROW_ORDER = {
  name: 'orders.row',
  text: `WITH ${ROW_TAKE_CTES},
    d AS (SELECT id, creator_id FROM took),
    ${WRITE_ORDER_CTES}
    SELECT took.available, took.status, took.low_stock_threshold, took.low_stock_notified, body.b AS body, (SELECT count(*) FROM k)::int AS keyed
    FROM took LEFT JOIN body ON true`,
}

/**
 * buckets' fast path in one statement: lock and take from a bucket, then write the order. The
 * bucket's `open` flag (cleared by an end, re-checked on the locked row) stands for "live".
 */
const BUCKETS_FAST = {
  name: 'orders.buckets_fast',
  text: `WITH ${fastTakeCtes()},
    d AS (SELECT drops.id, drops.creator_id FROM drops, took WHERE drops.id = $2::bigint),
    ${WRITE_ORDER_CTES}
    SELECT took.bucket, took.available, total.n AS total, body.b AS body, (SELECT count(*) FROM k)::int AS keyed
    FROM total LEFT JOIN took ON true LEFT JOIN body ON true`,
}

const EXISTING_ORDER = {
  name: 'orders.by_key',
  text: `SELECT drop_id, qty, jsonb_build_object('id', id, 'dropId', drop_id, 'userId', user_id, 'qty', qty, 'status', status,
      'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS body
    FROM orders WHERE user_id = $1 AND idempotency_key = $2`,
}

const DROP_STATE = {
  name: 'orders.drop_state',
  text: `SELECT status, available FROM drops WHERE id = $1`,
}

/** Internal signals that end a transaction with a rollback. */
class NotTaken extends Error {}
class Fenced extends Error {}

function fencedError(key: string): RequestInFlightError {
  return new RequestInFlightError(`another request took over idempotency key ${JSON.stringify(key)}`, {
    hint: 'Retry the same request in a second; it will replay the stored answer.',
    details: {retryAfterSeconds: 1},
  })
}

export function notLive(dropId: number, status: string): DropNotLiveError {
  return new DropNotLiveError(`drop ${dropId} is ${status}, not live: orders are not accepted`, {
    hint: status === 'scheduled' ? 'Start it first (`livedrop drop start ID`).' : 'The drop has ended.',
    details: {dropId, status},
  })
}

/** Inserts the order, its order_confirmed event and the key's stored answer in one statement. */
async function finishOrder(tx: Queryable, owned: OwnedKey, input: PlaceOrderInput): Promise<Record<string, unknown> | null> {
  const {rows} = await tx.query<{body: Record<string, unknown>; keyed: number}>(FINISH, [
    input.userId,
    input.dropId,
    input.qty,
    input.idempotencyKey,
    owned.day,
    owned.token,
  ])
  if (!rows.length) return null
  if (rows[0].keyed !== 1) throw new Fenced()
  return rows[0].body
}

/** An answer and whether Postgres said the drop is sold out (status sold_out: final), which empties the gate. */
export type Placed = {response: StoredResponse; replay: boolean; pgSoldOut: boolean}

export function emit(deps: EngineDeps, drop: DropInfo, status: DropStatus, reason: 'stock_low' | 'sold_out'): void {
  deps.changes?.emit({type: 'drop', dropId: drop.id, productId: drop.productId, creatorId: drop.creatorId, status, reason})
}

async function storeSoldOut(q: Queryable, owned: OwnedKey, input: PlaceOrderInput): Promise<StoredResponse> {
  const response = soldOutResponse(input.dropId, input.qty)
  if (!(await completeKey(q, owned, response))) throw new Fenced()
  return response
}

/** `row` and `redis-gate`: stock and order in one statement, then COMMIT. */
async function orderRow(deps: EngineDeps, owned: OwnedKey, drop: DropFacts, input: PlaceOrderInput): Promise<Placed> {
  type Row = {available: number; status: DropStatus; low_stock_threshold: number; low_stock_notified: boolean; body: Record<string, unknown>; keyed: number}
  try {
    const {row, stockLow} = await withRetry(() =>
      deps.db.transaction(async (tx) => {
        const {rows} = await tx.query<Row>(ROW_ORDER, [input.userId, input.dropId, input.qty, input.idempotencyKey, owned.day, owned.token])
        if (!rows.length) throw new NotTaken()
        const row = rows[0]
        if (row.keyed !== 1) throw new Fenced()
        const stockLow = !row.low_stock_notified && row.available <= row.low_stock_threshold && (await markStockLow(tx, input.dropId))
        return {row, stockLow}
      }),
    )
    if (stockLow) emit(deps, drop, row.status, 'stock_low')
    if (row.status === 'sold_out') emit(deps, drop, 'sold_out', 'sold_out')
    return {response: {status: 201, body: row.body}, replay: false, pgSoldOut: row.status === 'sold_out'}
  } catch (err) {
    if (!(err instanceof NotTaken)) throw err
  }
  // not live any more, or fewer units than asked: read why
  const {rows} = await deps.db.query<{status: DropStatus; available: number}>(DROP_STATE, [input.dropId])
  const state = rows[0]
  if (state.status === 'sold_out' || (state.status === 'live' && state.available < input.qty)) {
    return {response: await storeSoldOut(deps.db, owned, input), replay: false, pgSoldOut: state.status === 'sold_out'}
  }
  throw notLive(input.dropId, state.status)
}

/**
 * stock_low / sold_out of a buckets drop need committed totals (see settleBuckets); a failure here
 * is healed by the next order attempt or `drop reconcile`, so it must not fail a confirmed order.
 */
export async function settleAndEmit(deps: EngineDeps, drop: DropInfo): Promise<void> {
  const settled = await settleBuckets(deps.db, drop.id).catch(() => ({stockLow: false, soldOut: false}))
  if (settled.stockLow) emit(deps, drop, settled.soldOut ? 'sold_out' : 'live', 'stock_low')
  if (settled.soldOut) emit(deps, drop, 'sold_out', 'sold_out')
}

/** `buckets`: a bucket row locked and the order written in one statement, then COMMIT. */
async function orderBuckets(deps: EngineDeps, owned: OwnedKey, drop: DropFacts, input: PlaceOrderInput): Promise<Placed> {
  const start = startBucket(input.userId, input.idempotencyKey, drop.bucketCount)
  type Out =
    | {kind: 'confirmed'; body: Record<string, unknown>; settle: boolean}
    | {kind: 'sold_out'; response: StoredResponse; stockLow: boolean; soldOut: boolean; status: DropStatus}
  const lowSoon = (totalAfter: number) => !drop.lowStockNotified && totalAfter <= drop.lowStockThreshold
  let out: Out
  try {
    out = await withRetry(() =>
      deps.db.transaction(async (tx): Promise<Out> => {
        type Fast = {bucket: number | null; available: number; total: number; body: Record<string, unknown> | null; keyed: number}
        const fast = (
          await tx.query<Fast>(BUCKETS_FAST, [input.userId, input.dropId, input.qty, input.idempotencyKey, owned.day, owned.token, start, drop.bucketCount])
        ).rows[0]
        if (fast.bucket !== null) {
          if (fast.keyed !== 1) throw new Fenced()
          return {kind: 'confirmed', body: fast.body!, settle: fast.available === 0 || lowSoon(fast.total - input.qty)}
        }
        // fewer than qty left even before any lock: sold out for this quantity, no waiting on locks;
        // otherwise every bucket that could serve is locked (or the drop ended): the slow path
        const take = fast.total < input.qty ? ({taken: false, total: fast.total} as const) : await takeFromBucketsSlow(tx, input.dropId, input.qty, start, drop.bucketCount)
        if (!take.taken) {
          const settled = take.total === 0 ? await settleBuckets(tx, input.dropId) : {stockLow: false, soldOut: false}
          const {rows} = await tx.query<{status: DropStatus}>(DROP_STATE, [input.dropId])
          if (rows[0].status !== 'live' && rows[0].status !== 'sold_out') throw new NotTaken()
          return {kind: 'sold_out', response: await storeSoldOut(tx, owned, input), ...settled, status: rows[0].status}
        }
        const body = await finishOrder(tx, owned, input)
        if (!body) throw new NotTaken()
        return {kind: 'confirmed', body, settle: take.bucketEmptied || lowSoon(take.totalAfter)}
      }),
    )
  } catch (err) {
    if (!(err instanceof NotTaken)) throw err
    const {rows} = await deps.db.query<{status: DropStatus}>(DROP_STATE, [input.dropId])
    throw notLive(input.dropId, rows[0].status)
  }
  if (out.kind === 'sold_out') {
    if (out.stockLow) emit(deps, drop, out.status, 'stock_low')
    if (out.soldOut) emit(deps, drop, 'sold_out', 'sold_out')
    return {response: out.response, replay: false, pgSoldOut: out.status === 'sold_out'}
  }
  if (out.settle) await settleAndEmit(deps, drop)
  return {response: {status: 201, body: out.body}, replay: false, pgSoldOut: false}
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
    if (drop.status === 'sold_out') return {response: await storeSoldOut(db, owned, input), replay: false, pgSoldOut: true}
    if (drop.status !== 'live') throw notLive(drop.id, drop.status)
    if (drop.available < input.qty) {
      // the claim's snapshot is an upper bound on the stock: sold out for this quantity, no locks needed
      if (drop.available === 0 && drop.strategy === 'buckets') await settleAndEmit(deps, drop)
      return {response: await storeSoldOut(db, owned, input), replay: false, pgSoldOut: drop.available === 0}
    }
    return drop.strategy === 'buckets' ? await orderBuckets(deps, owned, drop, input) : await orderRow(deps, owned, drop, input)
  } catch (err) {
    if (err instanceof Fenced) throw fencedError(input.idempotencyKey)
    if (isUniqueViolation(err, 'orders_user_id_idempotency_key_key')) return adoptExistingOrder(db, owned, drop, input)
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
async function adoptExistingOrder(db: Db, owned: OwnedKey, drop: DropFacts, input: PlaceOrderInput): Promise<Placed> {
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

// ---- the fast path: a fresh key, in one autocommit statement (the first burst on a drop included) ----
//
// No key row exists yet, so nothing needs to be visible while the request is in flight: the key is
// written already completed, with the order (or the sold-out answer) and the events, atomically.
// A concurrent request with the same key waits on the unique index and then fails (23505), and
// goes the claim path, which replays the answer. Anything the statement cannot decide on its own
// (an earlier request with this key, a contended or raced stock row, a stale cache) it leaves
// untouched and hands to the claim path.

/** The key row, written completed with the answer. $1 user, $4 key, $5 day, $6 fingerprint, `now` param given. */
function insertKeyCte(now: string): string {
  return `k AS (
      INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
      SELECT $1::bigint, $4::text, $5::date, $6::text, 'completed', answer.status, answer.b, ${now}::timestamptz, now() FROM answer
      RETURNING 1)`
}

// an earlier request with this key, or a user the database does not know: the claim path decides
const PRIOR_CTE = `prior AS (
      (SELECT 1 FROM idempotency_keys WHERE user_id = $1::bigint AND key = $4::text LIMIT 1)
      UNION ALL SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = $1::bigint))`

/**
 * row / redis-gate. stock_low is the order that crosses the threshold (available only goes down,
 * so exactly one does), or the first sale of a drop that starts at or below it.
 * $1 user, $2 drop, $3 qty, $4 key, $5 day, $6 fingerprint, $7 now, $8 sold-out body.
 */
const FAST_ROW = {
  name: 'orders.fast_row',
  text: `WITH ${PRIOR_CTE},
    snap AS (SELECT status, available FROM drops WHERE id = $2::bigint AND strategy <> 'buckets'),
    took AS (
      UPDATE drops SET available = available - $3::int,
        status = CASE WHEN available = $3::int THEN 'sold_out' ELSE status END,
        low_stock_notified = low_stock_notified OR available - $3::int <= low_stock_threshold,
        updated_at = now()
      WHERE id = $2::bigint AND strategy <> 'buckets' AND status = 'live' AND available >= $3::int AND NOT EXISTS (SELECT 1 FROM prior)
      RETURNING id, creator_id, product_id, available, status, low_stock_threshold,
        (available + $3::int > low_stock_threshold OR available + $3::int = stock_total) AND available <= low_stock_threshold AS crossed),
    d AS (SELECT id, creator_id FROM took),
    ${ORDER_CTES},
    sold AS (
      SELECT $8::jsonb AS b FROM snap
      WHERE NOT EXISTS (SELECT 1 FROM took) AND NOT EXISTS (SELECT 1 FROM prior)
        AND (snap.status = 'sold_out' OR (snap.status = 'live' AND snap.available < $3::int))),
    answer AS (SELECT 201 AS status, b FROM body UNION ALL SELECT 409, b FROM sold),
    ${insertKeyCte('$7')},
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, user_id, payload)
      SELECT 'order_confirmed', d.id, d.creator_id, $1::bigint, jsonb_build_object('orderId', o.id, 'qty', $3::int) FROM d, o
      UNION ALL SELECT 'stock_low', id, creator_id, NULL, jsonb_build_object('productId', product_id, 'available', available, 'threshold', low_stock_threshold) FROM took WHERE crossed
      UNION ALL SELECT 'sold_out', id, creator_id, NULL, jsonb_build_object('productId', product_id) FROM took WHERE status = 'sold_out'
      RETURNING 1)
    SELECT (SELECT count(*) FROM prior)::int AS prior, snap.status AS snap_status, answer.status AS response_status, answer.b AS body,
      took.status AS new_status, took.crossed, NULL::int AS bucket_left, NULL::int AS total
    FROM (SELECT 1) one LEFT JOIN snap ON true LEFT JOIN answer ON true LEFT JOIN took ON true`,
}

/**
 * buckets: one unlocked open bucket (SKIP LOCKED), the order, the answer. Only a drop live in the
 * snapshot sells (a start racing us is simply not seen yet); a closed bucket (the drop ended,
 * re-checked on the locked row) never serves. $7 start bucket, $8 bucket count, $9 now, $10 sold-out body.
 */
const FAST_BUCKETS = {
  name: 'orders.fast_buckets',
  text: `WITH ${PRIOR_CTE},
    snap AS (SELECT status FROM drops WHERE id = $2::bigint AND strategy = 'buckets'),
    ${fastTakeCtes("AND NOT EXISTS (SELECT 1 FROM prior) AND EXISTS (SELECT 1 FROM snap WHERE status = 'live')")},
    d AS (SELECT drops.id, drops.creator_id FROM drops, took WHERE drops.id = $2::bigint),
    ${ORDER_CTES},
    sold AS (
      SELECT $10::jsonb AS b FROM snap, total
      WHERE NOT EXISTS (SELECT 1 FROM took) AND NOT EXISTS (SELECT 1 FROM prior)
        AND snap.status IN ('live', 'sold_out') AND total.n < $3::int),
    answer AS (SELECT 201 AS status, b FROM body UNION ALL SELECT 409, b FROM sold),
    ${insertKeyCte('$9')},
    ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, user_id, payload)
      SELECT 'order_confirmed', d.id, d.creator_id, $1::bigint, jsonb_build_object('orderId', o.id, 'qty', $3::int) FROM d, o
      RETURNING 1)
    SELECT (SELECT count(*) FROM prior)::int AS prior, snap.status AS snap_status, answer.status AS response_status, answer.b AS body,
      NULL::text AS new_status, false AS crossed, took.available AS bucket_left, total.n AS total
    FROM (SELECT 1) one LEFT JOIN snap ON true LEFT JOIN answer ON true LEFT JOIN took ON true LEFT JOIN total ON true`,
}

/** One statement for a fresh key; null when the claim path must decide. */
async function placeFast(deps: EngineDeps, input: PlaceOrderInput, fingerprint: string, info: DropInfo): Promise<Placed | null> {
  const now = clock(deps)
  const sold = JSON.stringify(soldOutResponse(input.dropId, input.qty).body)
  const common = [input.userId, input.dropId, input.qty, input.idempotencyKey, utcDay(now), fingerprint]
  const buckets = info.strategy === 'buckets'
  type Row = {
    prior: number
    snap_status: DropStatus | null
    response_status: number | null
    body: Record<string, unknown> | null
    new_status: DropStatus | null
    crossed: boolean | null
    bucket_left: number | null
    total: number | null
  }
  let r: Row
  try {
    const params = buckets ? [...common, startBucket(input.userId, input.idempotencyKey, info.bucketCount), info.bucketCount, now, sold] : [...common, now, sold]
    r = (await deps.db.query<Row>(buckets ? FAST_BUCKETS : FAST_ROW, params)).rows[0]
  } catch (err) {
    if (isUniqueViolation(err)) return null // a twin request with this key got there first
    throw err
  }
  if (r.prior > 0 || r.snap_status === null) return null
  if (r.response_status === null) {
    if (r.snap_status !== 'live' && r.snap_status !== 'sold_out') throw notLive(input.dropId, r.snap_status)
    return null
  }
  const response: StoredResponse = {status: r.response_status, body: r.body!}
  if (!buckets) {
    if (r.crossed) emit(deps, info, r.new_status!, 'stock_low')
    if (r.new_status === 'sold_out') emit(deps, info, 'sold_out', 'sold_out')
    return {response, replay: false, pgSoldOut: r.new_status === 'sold_out' || (r.response_status === 409 && r.snap_status === 'sold_out')}
  }
  const totalAfter = r.total! - (r.response_status === 201 ? input.qty : 0)
  if ((r.response_status === 201 && (r.bucket_left === 0 || totalAfter <= info.lowStockThreshold)) || (r.response_status === 409 && r.total === 0)) {
    await settleAndEmit(deps, info)
  }
  return {response, replay: false, pgSoldOut: r.response_status === 409 && (r.snap_status === 'sold_out' || r.total === 0)}
}

const DROP_INFO_SQL = {
  name: 'orders.drop_info',
  text: `SELECT id, strategy, creator_id, product_id, bucket_count, low_stock_threshold, ${GATE_EPOCH_SQL} AS epoch FROM drops WHERE id = $1`,
}

/** What never changes about drops seen before, per database, or the one read of it under way. */
const DROP_INFO = new WeakMap<Db, Map<number, DropInfo | Promise<DropInfo | null>>>()

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
  if (map.size > 100_000) map.clear()
  type Row = {id: number; strategy: DropInfo['strategy']; creator_id: number; product_id: number; bucket_count: number; low_stock_threshold: number; epoch: number}
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

/** Re-syncs a flushed gate once per drop at a time, not once per request. */
const RESYNCS = new Map<string, Promise<unknown>>()

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

async function place(deps: EngineDeps, input: PlaceOrderInput, fingerprint: string): Promise<PlaceOrderResult> {
  const info = await dropInfo(deps.db, input.dropId)
  if (!info) return toResult(await placeInPostgres(deps, input, fingerprint)) // throws NotFoundError
  const field = `${input.userId}:${input.idempotencyKey}`
  const g: GateClient | null = info.strategy === 'redis-gate' && deps.redis ? {redis: deps.redis, db: deps.db, timeoutMs: deps.gateTimeoutMs} : null
  const ref: GateRef = {prefix: deps.redisPrefix ?? DEFAULT_REDIS_PREFIX, dropId: input.dropId, epoch: info.epoch}
  const gate: GateAnswer | null = g && (await gateAdmit(g, ref, field, input.qty))

  if (gate?.kind === 'replay_sold_out') {
    if (gate.fingerprint !== fingerprint) throw keyReused(input.idempotencyKey)
    return toResult({response: soldOutResponse(input.dropId, input.qty), replay: true})
  }
  if (g && gate?.kind === 'sold_out') {
    // Postgres has said the drop is sold out; the answer is the key's once it is recorded there
    const response = soldOutResponse(input.dropId, input.qty)
    if (await recordAnswer(deps.db, {userId: input.userId, key: input.idempotencyKey, fingerprint}, response, clock(deps))) {
      await gateMark(g, ref, field, `so:${fingerprint}`)
      return toResult({response, replay: false})
    }
    // the key has an answer already (replay or refuse it), or the user is unknown: Postgres decides
  }

  let placed: Placed
  try {
    // one statement for a fresh key; anything else: claim, then order
    placed = (await placeFast(deps, input, fingerprint, info)) || (await placeInPostgres(deps, input, fingerprint))
  } catch (err) {
    if (g && gate?.kind === 'admit') await gateRefund(g, ref, input.qty)
    throw err
  }
  if (!g || !gate) return toResult(placed)
  const fresh = !placed.replay && placed.response.status === 201
  if (placed.pgSoldOut) await gateEmpty(g, ref)
  else if (gate.kind === 'admit' && !fresh) await gateRefund(g, ref, input.qty)
  if (gate.kind !== 'admit') await gateMark(g, ref, field, 'pg')
  if (gate.kind === 'to_postgres' && gate.reason === 'missing') {
    // the gate was flushed or never written: rebuild it from Postgres, once, in the background
    const id = `${ref.prefix}${ref.dropId}.${ref.epoch}`
    if (!RESYNCS.has(id)) {
      const done = syncGate(deps.db, g.redis, ref.prefix, input.dropId, 'if-missing')
        .catch(() => {})
        .finally(() => RESYNCS.delete(id))
      RESYNCS.set(id, done)
    }
  }
  return toResult(placed)
}
