import {createHash} from 'node:crypto'
import {KeyReusedWithDifferentRequestError, NotFoundError, RequestInFlightError, UserNotFoundError} from '../errors.js'
import type {Queryable} from '../db/types.js'
import type {DropStatus} from '../events.js'
import {availableSql} from '../stock/index.js'
import type {DropFacts, OwnedKey, StoredResponse} from './types.js'
import {utcDay} from './write.js'

export type {DropFacts, DropInfo, OwnedKey, StoredResponse} from './types.js'
export {utcDay} from './write.js'

/**
 * Idempotency keys as Stripe and the IETF Idempotency-Key draft describe them: the first request
 * with a key claims it (state in_flight, locked_at = the claim's token); its answer is stored with
 * the order in one transaction (state completed); a retry with the same request replays the stored
 * answer, one with another request is refused, one while the first is in flight is told to retry,
 * and a claim older than the in-flight timeout may be taken over (the order transaction is atomic,
 * so a takeover never doubles an order; orders' UNIQUE (user_id, idempotency_key) backs it up).
 */

/** Serialises with sorted object keys so {a, b} and {b, a} fingerprint alike. */
function canonical(value: unknown): string {
  if (value === undefined) return 'null'
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
}

/** What makes two requests "the same": drop, quantity and payload. Example: 'sha256:1f0c…'. */
export function requestFingerprint(request: {dropId: number; qty: number; payload?: unknown}): string {
  const text = canonical({dropId: request.dropId, qty: request.qty, payload: request.payload ?? null})
  return 'sha256:' + createHash('sha256').update(text).digest('hex')
}

export type Claim = {kind: 'owned'; owned: OwnedKey; drop: DropFacts} | {kind: 'replay'; response: StoredResponse}

const CLAIM = {
  name: 'idempotency.claim',
  text: `WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
  d AS (
    SELECT id, strategy, status, creator_id, product_id, bucket_count, low_stock_threshold, low_stock_notified,
      floor(extract(epoch from created_at) * 1000)::bigint AS epoch, ${availableSql('drops')} AS available
    FROM drops WHERE id = $3),
  prior AS (
    SELECT created_day::text AS day, fingerprint, state, response_status, response_body, locked_at
    FROM idempotency_keys WHERE user_id = $1 AND key = $2 ORDER BY created_at LIMIT 1),
  u AS (SELECT 1 FROM users WHERE id = $1),
  ins AS (
    INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, locked_at, created_at)
    SELECT $1, $2, $4::date, $5, 'in_flight', $6, $6
    WHERE NOT EXISTS (SELECT 1 FROM prior) AND EXISTS (SELECT 1 FROM d) AND EXISTS (SELECT 1 FROM u)
    ON CONFLICT DO NOTHING
    RETURNING created_day::text AS day)
  SELECT EXISTS (SELECT 1 FROM u) AS user_known, d.id, d.strategy, d.status, d.creator_id, d.product_id, d.bucket_count, d.low_stock_threshold, d.low_stock_notified,
    d.available, d.epoch, ins.day AS ins_day, prior.day AS prior_day, prior.fingerprint, prior.state, prior.response_status,
    prior.response_body, prior.locked_at
  FROM async_commit LEFT JOIN d ON true LEFT JOIN ins ON true LEFT JOIN prior ON true`,
}
// The claim commits asynchronously (no WAL flush of its own): a claim lost in a server crash loses
// nothing, because the order transaction that completes the key commits synchronously, which
// flushes the WAL up to and including the claim, and without the claim that transaction is
// fenced out (it updates no key row and rolls back). This halves the fsyncs per order.


const TAKEOVER = {
  name: 'idempotency.takeover',
  text: `UPDATE idempotency_keys SET locked_at = $5
    WHERE user_id = $1 AND key = $2 AND created_day = $3::date AND state = 'in_flight' AND locked_at = $4
    RETURNING 1`,
}

const RELEASE = {
  name: 'idempotency.release',
  text: `DELETE FROM idempotency_keys
    WHERE user_id = $1 AND key = $2 AND created_day = $3::date AND state = 'in_flight' AND locked_at = $4`,
}

const COMPLETE = {
  name: 'idempotency.complete',
  text: `UPDATE idempotency_keys SET state = 'completed', response_status = $5, response_body = $6, completed_at = now(), locked_at = NULL
    WHERE user_id = $1 AND key = $2 AND created_day = $3::date AND state = 'in_flight' AND locked_at = $4
    RETURNING 1`,
}

interface ClaimRow {
  user_known: boolean
  id: number | null
  strategy: string
  status: DropStatus
  creator_id: number
  product_id: number
  bucket_count: number
  low_stock_threshold: number
  low_stock_notified: boolean
  available: number
  epoch: number
  ins_day: string | null
  prior_day: string | null
  fingerprint: string | null
  state: 'in_flight' | 'completed' | null
  response_status: number | null
  response_body: Record<string, unknown> | null
  locked_at: Date | null
}

/** How long a request waits for an earlier one with its key to finish before answering "in flight". */
export const IN_FLIGHT_WAIT_MS = 1000
/** An earlier request in flight longer than this has probably died: its answer comes with the takeover. */
const LIKELY_DEAD_MS = 5000

/**
 * When an answer will be there for a request whose key is in flight since `ageMs`: a live first
 * request finishes within a second; one that looks dead is taken over once its claim times out.
 */
export function retryAfterSeconds(ageMs: number, inFlightTimeoutMs: number): number {
  const longest = Math.max(1, Math.ceil(inFlightTimeoutMs / 1000))
  if (ageMs < LIKELY_DEAD_MS) return 1
  return Math.min(longest, Math.max(1, Math.ceil((inFlightTimeoutMs - ageMs) / 1000)))
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Claims (userId, key) for a request, or answers from what an earlier request with the key left.
 * A key in flight is waited for (up to IN_FLIGHT_WAIT_MS) so a burst of retries gets replays.
 * Throws KeyReusedWithDifferentRequestError, RequestInFlightError, NotFoundError for an unknown
 * drop, UserNotFoundError for an unknown user.
 */
export async function claimKey(
  db: Queryable,
  request: {userId: number; key: string; dropId: number; fingerprint: string},
  clock: () => Date,
  inFlightTimeoutMs: number,
): Promise<Claim> {
  const waitUntil = Date.now() + IN_FLIGHT_WAIT_MS
  let pause = 5
  // a few rounds at most of racing: a concurrent claim of the same key commits between our statements
  for (let races = 0; races < 10; ) {
    const now = clock()
    const {rows} = await db.query<ClaimRow>(CLAIM, [request.userId, request.key, request.dropId, utcDay(now), request.fingerprint, now])
    const r = rows[0]
    if (r.prior_day !== null) {
      if (r.fingerprint !== request.fingerprint) throw keyReused(request.key)
      if (r.state === 'completed') return {kind: 'replay', response: {status: r.response_status!, body: r.response_body!}}
      const lockedAt = r.locked_at ? new Date(r.locked_at) : new Date(0)
      // clocks of two processes differ a little: a claim "from the future" is a fresh one
      const age = Math.max(0, now.getTime() - lockedAt.getTime())
      if (age < inFlightTimeoutMs) {
        if (Date.now() < waitUntil) {
          await sleep(pause)
          pause = Math.min(pause * 2, 80)
          continue
        }
        const seconds = retryAfterSeconds(age, inFlightTimeoutMs)
        throw new RequestInFlightError(`the first request with idempotency key ${JSON.stringify(request.key)} is still in flight`, {
          hint: `Retry the same request after ${seconds} s.`,
          details: {retryAfterSeconds: seconds},
        })
      }
      if (r.id === null) throw dropNotFound(request.dropId)
      // the first request's claim is stale: take it over (fenced by its token)
      const taken = await db.query(TAKEOVER, [request.userId, request.key, r.prior_day, lockedAt, now])
      if (taken.rowCount === 1) return {kind: 'owned', owned: {userId: request.userId, key: request.key, day: r.prior_day, token: now}, drop: facts(r)}
      races++
      continue
    }
    if (r.id === null) throw dropNotFound(request.dropId)
    if (!r.user_known) throw userNotFound(request.userId)
    if (r.ins_day !== null) return {kind: 'owned', owned: {userId: request.userId, key: request.key, day: r.ins_day, token: now}, drop: facts(r)}
    // our insert met a row committed after our snapshot: read it next round
    races++
  }
  throw new RequestInFlightError(`could not claim idempotency key ${JSON.stringify(request.key)}: it keeps changing`, {
    hint: 'Retry the same request in a second.',
    details: {retryAfterSeconds: 1},
  })
}

export function keyReused(key: string): KeyReusedWithDifferentRequestError {
  return new KeyReusedWithDifferentRequestError(`idempotency key ${JSON.stringify(key)} was first used with a different request`, {
    hint: 'Use a new Idempotency-Key for a new request; retry only with exactly the same request.',
  })
}

export function userNotFound(userId: number): UserNotFoundError {
  return new UserNotFoundError(`user ${userId} does not exist`, {hint: 'Use a token for a user in this database (`livedrop token --user ID` with a seeded id).'})
}

function facts(r: ClaimRow): DropFacts {
  return {
    id: Number(r.id),
    strategy: r.strategy,
    status: r.status,
    creatorId: Number(r.creator_id),
    productId: Number(r.product_id),
    bucketCount: Number(r.bucket_count),
    lowStockThreshold: Number(r.low_stock_threshold),
    lowStockNotified: r.low_stock_notified,
    available: Number(r.available),
    epoch: Number(r.epoch),
  }
}

export function dropNotFound(dropId: number): NotFoundError {
  return new NotFoundError(`drop ${dropId} does not exist`, {hint: 'Check the drop id (`livedrop drop status ID`).'})
}

/** Gives the key up after a request failed without an answer worth storing, so a retry runs afresh. */
export async function releaseKey(db: Queryable, owned: OwnedKey): Promise<void> {
  await db.query(RELEASE, [owned.userId, owned.key, owned.day, owned.token])
}

/** Stores the answer; false when another request took the key over meanwhile. */
export async function completeKey(db: Queryable, owned: OwnedKey, response: StoredResponse): Promise<boolean> {
  const {rowCount} = await db.query(COMPLETE, [owned.userId, owned.key, owned.day, owned.token, response.status, JSON.stringify(response.body)])
  return rowCount === 1
}

const RECORD = {
  name: 'idempotency.record',
  text: `INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
    SELECT $1, $2, $3::date, $4, 'completed', $5, $6, $7, now()
    WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = $1 AND key = $2) AND EXISTS (SELECT 1 FROM users WHERE id = $1)
    ON CONFLICT DO NOTHING
    RETURNING 1`,
}

/**
 * Stores an answer given outside Postgres (the redis gate's sold out) as the key's completed
 * answer, so a reuse of the key is caught whichever layer answered. False when the key already
 * has an answer or the user is unknown: the claim path must decide then.
 */
export async function recordAnswer(db: Queryable, request: {userId: number; key: string; fingerprint: string}, response: StoredResponse, now: Date): Promise<boolean> {
  const {rowCount} = await db.query(RECORD, [request.userId, request.key, utcDay(now), request.fingerprint, response.status, JSON.stringify(response.body), now])
  return rowCount === 1
}

/** Longest accepted Idempotency-Key. */
export const MAX_KEY_LENGTH = 255

/**
 * Reads an Idempotency-Key header value. The IETF draft makes it a Structured Field String
 * (RFC 8941: `"8e03978e-40d5"`, escapes only \" and \\); a bare value (`8e03978e-40d5`, no
 * quotes, as older clients send) means the same key, so `"abc"` and `abc` are one key.
 * Parameters (`"abc";x=1`) are not accepted.
 */
export function parseIdempotencyKey(value: string): {key: string} | {error: string} {
  const v = value.trim()
  let key = ''
  if (v.startsWith('"')) {
    let i = 1
    for (; i < v.length; i++) {
      const c = v.charCodeAt(i)
      if (c === 0x22) break
      if (c === 0x5c) {
        const next = v[++i]
        if (next !== '"' && next !== '\\') return {error: 'a quoted key may escape only " and \\'}
        key += next
      } else if (c < 0x20 || c > 0x7e) return {error: 'a key holds printable ASCII characters only'}
      else key += v[i]
    }
    if (i >= v.length) return {error: 'the quoted key has no closing quote'}
    if (i !== v.length - 1) return {error: 'nothing may follow the quoted key (no parameters, no second key)'}
  } else {
    if (!/^[\x21\x23-\x7e]*$/.test(v)) return {error: 'a key holds printable ASCII characters without spaces; quote it as a string ("...") if it needs them'}
    key = v
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) return {error: `a key is 1 to ${MAX_KEY_LENGTH} characters`}
  return {key}
}
