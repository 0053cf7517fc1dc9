import type {Redis} from 'ioredis'
import {createHash} from 'node:crypto'
import type {Queryable} from '../db/types.js'
import {UsageError} from '../errors.js'
import {DEFAULT_REDIS_PREFIX, type EngineDeps} from '../orders/deps.js'
import type {Placed} from '../orders/types.js'
import {withTimeout} from '../redis.js'
import {rowTaking} from './row.js'
import type {Admission, DropRef, OrderContext, StockStrategy} from './types.js'

/**
 * The `redis-gate` strategy: a Lua admission gate in Redis (tokens = units left) in front of the
 * `row` strategy. Postgres stays the arbiter: a buyer the gate admits still takes stock with the
 * conditional UPDATE, so tokens lost to a flush, a restart or a crashed buyer only send more
 * buyers to Postgres. The gate answers "sold out" by itself only once Postgres has said the drop
 * is sold out (status sold_out is final), never merely because its tokens ran short: tokens taken
 * by admitted buyers come back when Postgres refuses them, and until then Postgres may still have
 * the units. Every answer the gate gives is recorded in Postgres's key table first (see
 * place-order.ts), so Redis only remembers per (user, key) where the answer lives, for speed.
 *
 * Redis is an accelerator: a gate call that fails or takes longer than the timeout opens a
 * breaker (per client), orders go straight to Postgres, and a probe once a second closes it again
 * after re-syncing from Postgres every gate this process has used.
 *
 * Keys (one hash slot per drop for Redis Cluster); <epoch> is the drop's created_at in ms, so two
 * databases sharing a Redis, or a database reset under a running engine, never share a gate:
 *   <prefix>gate:{<dropId>.<epoch>}:tokens  integer units left; -1 = closed (the drop is not live);
 *                                           -2 = sold out in Postgres (final)
 *   <prefix>gate:{<dropId>.<epoch>}:keys    hash "<userId>:<key>" → 'pg' | 'so:<fingerprint>'
 */

/** Which gate: the key prefix, the drop and its created_at in ms. */
export interface GateRef {
  prefix: string
  dropId: number
  epoch: number
}

/** SQL for a drop's gate epoch: created_at in whole milliseconds. */
export const GATE_EPOCH_SQL = `floor(extract(epoch from created_at) * 1000)::bigint`

/** How long gate keys live after their last sync: past any drop and its retry horizon. */
const GATE_TTL_SECONDS = 8 * 86_400
/** Tokens of a closed gate (the drop is not live): requests go to Postgres, which refuses them. */
export const GATE_CLOSED = -1
/** Tokens of a drop Postgres has sold out (final): the gate answers sold out by itself. */
export const GATE_SOLD_OUT = -2
/** How long one gate call may take before Redis counts as down. */
export const DEFAULT_GATE_TIMEOUT_MS = 250
/** How long the breaker stays open before a probe asks Redis again. */
const PROBE_EVERY_MS = 1000

export function gateKeys(ref: GateRef): {tokens: string; keys: string} {
  const tag = `${ref.prefix}gate:{${ref.dropId}.${ref.epoch}}`
  return {tokens: `${tag}:tokens`, keys: `${tag}:keys`}
}

// 'short': fewer tokens than asked, but Postgres has not said sold out (tokens of admitted buyers
// may still come back, or were lost with a crashed one): Postgres decides
const ADMIT = `
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return {'known', prior} end
local t = redis.call('GET', KEYS[1])
if not t then return {'missing', ''} end
t = tonumber(t)
if t == -2 then return {'sold_out', ''} end
if t < 0 then return {'closed', ''} end
if t < tonumber(ARGV[2]) then return {'short', ''} end
redis.call('DECRBY', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], 'pg')
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return {'admit', ''}`

// gives back tokens an admitted buyer did not use; a closed, sold-out or missing gate stays as it is
const REFUND = `
local t = redis.call('GET', KEYS[1])
if t and tonumber(t) >= 0 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return -3`

const MARK = `
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return 1`

// Postgres says the drop is sold out: final (a closed gate stays closed)
const EMPTY = `
local t = redis.call('GET', KEYS[1])
if t and tonumber(t) >= 0 then redis.call('SET', KEYS[1], -2, 'KEEPTTL') end
return 1`

const SHA = new Map<string, string>()
function sha(script: string): string {
  let s = SHA.get(script)
  if (!s) SHA.set(script, (s = createHash('sha1').update(script).digest('hex')))
  return s
}

/** The gate's Redis, the database it re-syncs from, and how long a call may take. */
export interface GateClient {
  redis: Redis
  db: Queryable
  /** Default DEFAULT_GATE_TIMEOUT_MS. */
  timeoutMs?: number
}

interface Breaker {
  open: boolean
  /** While open: when the next probe may start. */
  probeAt: number
  probing: boolean
  /** Gates this process used, re-synced from Postgres before the breaker closes. */
  gates: Map<string, {db: Queryable; ref: GateRef}>
}

const BREAKERS = new WeakMap<Redis, Breaker>()
function breaker(redis: Redis): Breaker {
  let b = BREAKERS.get(redis)
  if (!b) BREAKERS.set(redis, (b = {open: false, probeAt: 0, probing: false, gates: new Map()}))
  return b
}

function trip(b: Breaker): void {
  b.open = true
  b.probeAt = Date.now() + PROBE_EVERY_MS
}

/** PING; once Redis answers, every gate this process used is re-synced (force) and the breaker closes. */
async function probe(g: GateClient, b: Breaker): Promise<void> {
  b.probing = true
  try {
    const timeoutMs = g.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS
    await withTimeout(g.redis.ping(), timeoutMs)
    // a gate whose database fails stays stale, which is safe (see the top); Redis failing again fails the probe
    const syncs = [...b.gates.values()].map(({db, ref}) => syncGate(db, g.redis, ref.prefix, ref.dropId, 'force').catch(() => {}))
    await withTimeout(Promise.all(syncs), timeoutMs * 40)
    b.open = false
  } catch {
    b.probeAt = Date.now() + PROBE_EVERY_MS
  } finally {
    b.probing = false
  }
}

/** False while the breaker is open (Redis failed or was slow): skip the gate. Starts a probe when one is due. */
export function gateUp(g: GateClient): boolean {
  const b = breaker(g.redis)
  if (!b.open) return true
  if (!b.probing && Date.now() >= b.probeAt) void probe(g, b)
  return false
}

/** EVALSHA (loading the script once more after a restart or SCRIPT FLUSH), within the timeout; a failure opens the breaker. */
async function run(g: GateClient, script: string, keys: string[], args: Array<string | number>): Promise<unknown> {
  const call = async () => {
    try {
      return await g.redis.evalsha(sha(script), keys.length, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
      return g.redis.eval(script, keys.length, ...keys, ...args)
    }
  }
  try {
    return await withTimeout(call(), g.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS)
  } catch (err) {
    trip(breaker(g.redis))
    throw err
  }
}

export type GateAnswer =
  | {kind: 'admit'}
  | {kind: 'sold_out'}
  | {kind: 'replay_sold_out'; fingerprint: string}
  | {kind: 'to_postgres'; reason: 'known' | 'missing' | 'closed' | 'short' | 'unavailable'}

/** Asks the gate about one request. Redis down or slow sends the request to Postgres (slower, still correct). */
export async function gateAdmit(g: GateClient, ref: GateRef, field: string, qty: number): Promise<GateAnswer> {
  if (!gateUp(g)) return {kind: 'to_postgres', reason: 'unavailable'}
  const k = gateKeys(ref)
  const b = breaker(g.redis)
  if (b.gates.size > 10_000) b.gates.clear()
  b.gates.set(k.tokens, {db: g.db, ref})
  let reply: [string, string]
  try {
    reply = (await run(g, ADMIT, [k.tokens, k.keys], [field, qty, GATE_TTL_SECONDS])) as [string, string]
  } catch {
    return {kind: 'to_postgres', reason: 'unavailable'}
  }
  const [answer, prior] = reply
  if (answer === 'admit') return {kind: 'admit'}
  if (answer === 'sold_out') return {kind: 'sold_out'}
  if (answer === 'known' && prior.startsWith('so:')) return {kind: 'replay_sold_out', fingerprint: prior.slice(3)}
  return {kind: 'to_postgres', reason: answer as 'known' | 'missing' | 'closed' | 'short'}
}

/** Best effort, like every write below: what a failure leaves (tokens too high or too low, a missing mark) costs speed, not correctness. */
export async function gateRefund(g: GateClient, ref: GateRef, qty: number): Promise<void> {
  if (gateUp(g)) await run(g, REFUND, [gateKeys(ref).tokens], [qty]).catch(() => {})
}

/** Records where this key's answer lives: 'pg' (ask Postgres) or 'so:<fingerprint>' (sold out, recorded in Postgres). */
export async function gateMark(g: GateClient, ref: GateRef, field: string, mark: string): Promise<void> {
  const k = gateKeys(ref)
  if (gateUp(g)) await run(g, MARK, [k.tokens, k.keys], [field, mark, GATE_TTL_SECONDS]).catch(() => {})
}

/** Postgres said the drop is sold out: from now on the gate answers sold out by itself. */
export async function gateEmpty(g: GateClient, ref: GateRef): Promise<void> {
  if (gateUp(g)) await run(g, EMPTY, [gateKeys(ref).tokens], []).catch(() => {})
}

const SYNC_SOURCE = {
  name: 'stock.gate.source',
  text: `SELECT status, available, ${GATE_EPOCH_SQL} AS epoch FROM drops WHERE id = $1`,
}

const ORDER_KEYS_FROM = {
  name: 'stock.gate.order_keys_from',
  text: `SELECT id, user_id, idempotency_key FROM orders WHERE drop_id = $1 AND id > $2 ORDER BY id LIMIT 5000`,
}

/** Postgres's view written into the gate. */
export interface GateSync {
  /** Units left for a live drop, 0 when sold out (written as GATE_SOLD_OUT), -1 otherwise (GATE_CLOSED). */
  tokens: number
  /** Keys of existing orders marked as answered in Postgres. */
  marked: number
  /** False when mode 'if-missing' found a gate already there and left it alone. */
  written: boolean
}

/**
 * Re-syncs the gate from Postgres. 'if-missing' (after a flush or restart) writes only when the
 * tokens key is gone; 'force' (`drop reconcile`) overwrites. Tokens read while orders are in flight
 * may be a little high, never too low in a way that oversells: Postgres still decides.
 * Existing orders' keys are marked so a retry of a confirmed order is never answered "sold out".
 */
export async function syncGate(db: Queryable, redis: Redis, prefix: string, dropId: number, mode: 'if-missing' | 'force'): Promise<GateSync | null> {
  const {rows} = await db.query<{status: string; available: number; epoch: number}>(SYNC_SOURCE, [dropId])
  if (!rows.length) return null
  const {status, available} = rows[0]
  const tokens = status === 'live' ? Number(available) : status === 'sold_out' ? 0 : GATE_CLOSED
  const stored = status === 'sold_out' ? GATE_SOLD_OUT : tokens
  const k = gateKeys({prefix, dropId, epoch: Number(rows[0].epoch)})
  // mark first: a gate that says "empty" must already know every confirmed key
  let marked = 0
  let after = 0
  for (;;) {
    const page = await db.query<{id: number; user_id: number; idempotency_key: string}>(ORDER_KEYS_FROM, [dropId, after])
    if (!page.rows.length) break
    const fields: string[] = []
    for (const r of page.rows) fields.push(`${r.user_id}:${r.idempotency_key}`, 'pg')
    await redis.hset(k.keys, ...fields)
    marked += page.rows.length
    after = Number(page.rows.at(-1)!.id)
  }
  await redis.expire(k.keys, GATE_TTL_SECONDS)
  const written =
    mode === 'force'
      ? (await redis.set(k.tokens, stored, 'EX', GATE_TTL_SECONDS)) === 'OK'
      : (await redis.set(k.tokens, stored, 'EX', GATE_TTL_SECONDS, 'NX')) === 'OK'
  return {tokens, marked, written}
}

/** Closes the gate (drop ended): requests go to Postgres, which refuses them as not live. */
export async function closeGate(redis: Redis, ref: GateRef): Promise<void> {
  await redis.set(gateKeys(ref).tokens, GATE_CLOSED, 'EX', GATE_TTL_SECONDS)
}

/** The tokens value as stored (GATE_SOLD_OUT, GATE_CLOSED or units); null when the gate is missing. */
export async function gateTokens(redis: Redis, ref: GateRef): Promise<number | null> {
  const v = await redis.get(gateKeys(ref).tokens)
  return v === null ? null : Number(v)
}

/** How long starting or ending a drop waits for its gate: a paused Redis must not hold them up. */
const GATE_SYNC_TIMEOUT_MS = 2000

function gateRef(deps: EngineDeps, drop: DropRef): GateRef {
  return {prefix: deps.redisPrefix ?? DEFAULT_REDIS_PREFIX, dropId: drop.id, epoch: drop.epoch}
}

/** Re-syncs a flushed gate once per drop at a time, not once per request. */
const RESYNCS = new Map<string, Promise<unknown>>()

function resyncInBackground(g: GateClient, ref: GateRef): void {
  const id = `${ref.prefix}${ref.dropId}.${ref.epoch}`
  if (RESYNCS.has(id)) return
  const done = syncGate(g.db, g.redis, ref.prefix, ref.dropId, 'if-missing')
    .catch(() => {})
    .finally(() => RESYNCS.delete(id))
  RESYNCS.set(id, done)
}

/**
 * The gate in front of Postgres for one request. Every answer it gives by itself is one Postgres
 * recorded (a replay of a recorded sold out, or sold out once recorded as this key's answer);
 * otherwise Postgres places the order and the gate follows what Postgres said.
 */
async function admit(order: OrderContext): Promise<Admission | null> {
  const {deps, input, fingerprint} = order
  if (!deps.redis) return null
  const g: GateClient = {redis: deps.redis, db: deps.db, timeoutMs: deps.gateTimeoutMs}
  const ref = gateRef(deps, order.info)
  const field = `${input.userId}:${input.idempotencyKey}`
  const gate = await gateAdmit(g, ref, field, input.qty)

  if (gate.kind === 'replay_sold_out') {
    if (gate.fingerprint !== fingerprint) throw order.keyReused()
    return {answer: {response: order.soldOut, replay: true}, done: async () => {}, failed: async () => {}}
  }
  // Postgres has said the drop is sold out; the answer is the key's once it is recorded there
  if (gate.kind === 'sold_out' && (await order.recordSoldOut())) {
    await gateMark(g, ref, field, `so:${fingerprint}`)
    return {answer: {response: order.soldOut, replay: false}, done: async () => {}, failed: async () => {}}
  }
  // else the key has an answer already (replay or refuse it), or the user is unknown: Postgres decides
  return {
    async failed() {
      if (gate.kind === 'admit') await gateRefund(g, ref, input.qty)
    },
    async done(placed: Placed) {
      const fresh = !placed.replay && placed.response.status === 201
      if (placed.pgSoldOut) await gateEmpty(g, ref)
      else if (gate.kind === 'admit' && !fresh) await gateRefund(g, ref, input.qty)
      if (gate.kind !== 'admit') await gateMark(g, ref, field, 'pg')
      // the gate was flushed or never written: rebuild it from Postgres, once, in the background
      if (gate.kind === 'to_postgres' && gate.reason === 'missing') resyncInBackground(g, ref)
    },
  }
}

/** `redis-gate`: the row take behind the Redis admission gate above. */
export const redisGate: StockStrategy = {
  name: 'redis-gate',
  ...rowTaking('redis-gate'),
  admit,

  unavailable: (deps) =>
    deps.redis ? null : new UsageError('--strategy', 'redis-gate needs Redis, and none is configured', {hint: 'Pass --redis redis://host:6379 or set REDIS_URL.'}),

  async started(deps, drop) {
    // a failed or slow sync is healed on the first order (the gate is missing, so orders go to Postgres)
    if (deps.redis) await withTimeout(syncGate(deps.db, deps.redis, gateRef(deps, drop).prefix, drop.id, 'force'), GATE_SYNC_TIMEOUT_MS).catch(() => {})
  },
  async ended(deps, drop) {
    // a gate left open only sends buyers to Postgres, which refuses them as not live
    if (deps.redis) await withTimeout(closeGate(deps.redis, gateRef(deps, drop)), GATE_SYNC_TIMEOUT_MS).catch(() => {})
  },
  async reconcile(deps, dropId) {
    if (!deps.redis) throw new UsageError('--redis', 'reconciling a redis-gate drop needs Redis, and none is configured', {hint: 'Pass --redis or set REDIS_URL.'})
    const synced = await syncGate(deps.db, deps.redis, deps.redisPrefix ?? DEFAULT_REDIS_PREFIX, dropId, 'force')
    return {settled: {stockLow: false, soldOut: false}, gate: synced ? {tokens: synced.tokens, marked: synced.marked} : null}
  },
}
