import {DropNotLiveError, isUniqueViolation} from '../errors.js'
import type {Queryable, Sql} from '../db/types.js'
import type {DropStatus} from '../events.js'
import type {EngineDeps} from './deps.js'
import type {FreshOrder} from '../stock/types.js'
import type {DropInfo, StoredResponse} from './types.js'

/**
 * What every stock strategy's order statements are built from, written once: the order row and
 * its answer's body, the order_confirmed event, the key's stored answer (fenced completion of a
 * claimed key, or a fresh key written completed), and the signals a strategy's order transaction
 * ends with. Parameters shared by every order statement: $1 user, $2 drop, $3 qty, $4 key,
 * $5 key day; a claimed key's statements add $6 the claim's token.
 */

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
 * CTE `ev`: the order_confirmed event of the order written by ORDER_CTES, and any further events
 * the strategy writes in the same statement (SELECTs of event_type, drop_id, creator_id, user_id, payload).
 */
export function eventsCte(...more: string[]): string {
  const confirmed = `SELECT 'order_confirmed', d.id, d.creator_id, $1::bigint, jsonb_build_object('orderId', o.id, 'qty', $3::int) FROM d, o`
  return `ev AS (
      INSERT INTO outbox (event_type, drop_id, creator_id, user_id, payload)
      ${[confirmed, ...more].join('\n      UNION ALL ')}
      RETURNING 1)`
}

/** CTE `k` of a claimed key: its stored answer (state completed), fenced by the claim's token ($6). */
export const COMPLETE_KEY_CTE = `k AS (
      UPDATE idempotency_keys SET state = 'completed', response_status = 201, response_body = body.b, completed_at = now(), locked_at = NULL
      FROM body
      WHERE user_id = $1::bigint AND key = $4::text AND created_day = $5::date AND state = 'in_flight' AND locked_at = $6::timestamptz
      RETURNING 1)`

// ---- a fresh key, in one autocommit statement ----
//
// No key row exists yet, so nothing needs to be visible while the request is in flight: the key is
// written already completed, with the order (or the sold-out answer) and the events, atomically.
// A concurrent request with the same key waits on the unique index and then fails (23505), and
// goes the claim path, which replays the answer. Anything the statement cannot decide on its own
// (an earlier request with this key, a contended or raced stock take, a stale cache) it leaves
// untouched and hands to the claim path. Parameters: $6 the request's fingerprint.

/** CTE `prior`: an earlier request with this key, or a user the database does not know: the claim path decides. */
export const PRIOR_CTE = `prior AS (
      (SELECT 1 FROM idempotency_keys WHERE user_id = $1::bigint AND key = $4::text LIMIT 1)
      UNION ALL SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = $1::bigint))`

/**
 * The order a warm-up run of a fresh-key statement places (StockStrategy.warmFresh): user 0 is
 * never a user, so PRIOR_CTE hands it to the claim path and the statement writes nothing.
 */
export const WARM_UP_ORDER: FreshOrder = {
  input: {userId: 0, dropId: 0, qty: 1, idempotencyKey: 'livedrop-warm-up'},
  fingerprint: '',
  now: new Date(0),
  soldOut: {status: 409, body: {}},
  info: {bucketCount: 1},
}

/**
 * After CTEs `body` (the order's answer) and `sold` (column b: the sold-out answer, one row when
 * sold out): `answer`, and `k`, the key written completed with it. `now` is the request time's parameter.
 */
export function freshAnswerCtes(now: string): string {
  return `answer AS (SELECT 201 AS status, b FROM body UNION ALL SELECT 409, b FROM sold),
    k AS (
      INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
      SELECT $1::bigint, $4::text, $5::date, $6::text, 'completed', answer.status, answer.b, ${now}::timestamptz, now() FROM answer
      RETURNING 1)`
}

/** A fresh-key statement's answer row, the columns every strategy's fresh statement returns first. */
export interface FreshRow {
  /** > 0: an earlier request with this key, or an unknown user: the claim path decides. */
  prior: number
  /** The drop's status in the statement's snapshot; null when the drop is not of this strategy (or gone). */
  snap_status: DropStatus | null
  /** 201, 409, or null when the statement could not decide. */
  response_status: number | null
  body: Record<string, unknown> | null
}

/**
 * Runs a fresh-key statement: its row, or null when a twin request with this key got there first
 * (the unique index refused our key row): the claim path decides then.
 */
export async function queryFresh<R extends FreshRow>(db: Queryable, sql: Sql, params: unknown[]): Promise<R | null> {
  try {
    return (await db.query<R>(sql, params)).rows[0]
  } catch (err) {
    if (isUniqueViolation(err)) return null
    throw err
  }
}

/** The answer a fresh-key statement decided, or null when the claim path must decide. Throws DropNotLiveError. */
export function freshResponse(r: FreshRow, dropId: number): StoredResponse | null {
  if (r.prior > 0 || r.snap_status === null) return null
  if (r.response_status === null) {
    if (r.snap_status !== 'live' && r.snap_status !== 'sold_out') throw notLive(dropId, r.snap_status)
    return null
  }
  return {status: r.response_status, body: r.body!}
}

/** The UTC calendar day of a time: an idempotency key's partition. */
export function utcDay(time: Date): string {
  return time.toISOString().slice(0, 10)
}

// ---- shared by the strategies' transactions ----

/** The take found no stock to take and the drop may not be live any more: the caller reads why. Ends the transaction (rollback). */
export class NotTaken extends Error {}
/** Another request took the key over: nothing of this one may commit. Ends the transaction (rollback). */
export class Fenced extends Error {}

/** The stored answer for a sold-out request: a function of the request alone, so every replay path agrees. */
export function soldOutResponse(dropId: number, qty: number): StoredResponse {
  const message = qty === 1 ? `drop ${dropId} is sold out` : `drop ${dropId} has fewer than ${qty} units left`
  // the API's one error shape, so clients read error.code for sold out as for every other refusal.
  // Keys in jsonb's order (shorter first, then bytewise): a replay read back from Postgres's jsonb
  // column must serialise to the very bytes of the first answer.
  return {status: 409, body: {error: {code: 'SOLD_OUT', dropId, message, requested: qty}}}
}

export function notLive(dropId: number, status: string): DropNotLiveError {
  return new DropNotLiveError(`drop ${dropId} is ${status}, not live: orders are not accepted`, {
    hint: status === 'scheduled' ? 'Start it first (`livedrop drop start ID`).' : 'The drop has ended.',
    details: {dropId, status},
  })
}

/** Tells the change feed (after commit) that an order moved a drop: stock low or sold out. */
export function emitDrop(deps: EngineDeps, drop: DropInfo, status: DropStatus, reason: 'stock_low' | 'sold_out'): void {
  deps.changes?.emit({type: 'drop', dropId: drop.id, productId: drop.productId, creatorId: drop.creatorId, status, reason})
}

const DROP_STATE = {name: 'orders.drop_state', text: `SELECT status, available FROM drops WHERE id = $1`}

/** The drop's status (and drops.available, meaningful for strategies that decrement it) as of now. */
export async function dropState(q: Queryable, dropId: number): Promise<{status: DropStatus; available: number}> {
  return (await q.query<{status: DropStatus; available: number}>(DROP_STATE, [dropId])).rows[0]
}
