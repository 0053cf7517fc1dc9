import type {Redis} from 'ioredis'
import {createHash} from 'node:crypto'
import type {Queryable} from '../db/types.js'

/**
 * The `redis-gate` strategy: a Lua admission gate in Redis (tokens = units left) in front of the
 * `row` strategy. Postgres stays the arbiter: a buyer the gate admits still takes stock with the
 * conditional UPDATE, so tokens lost to a flush or restart only let more buyers through to fail
 * cleanly in Postgres. Once the gate is empty it answers sold out without touching Postgres, and
 * remembers per (user, key) what it answered, so a retry replays it (or is refused with another
 * request) and a key whose answer lives in Postgres is always sent there.
 *
 * Keys (one hash slot per drop for Redis Cluster); <epoch> is the drop's created_at in ms, so two
 * databases sharing a Redis, or a database reset under a running engine, never share a gate:
 *   <prefix>gate:{<dropId>.<epoch>}:tokens  integer units left; -1 = closed (the drop is not live)
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

export function gateKeys(ref: GateRef): {tokens: string; keys: string} {
  const tag = `${ref.prefix}gate:{${ref.dropId}.${ref.epoch}}`
  return {tokens: `${tag}:tokens`, keys: `${tag}:keys`}
}

const ADMIT = `
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return {'known', prior} end
local t = redis.call('GET', KEYS[1])
if not t then return {'missing', ''} end
t = tonumber(t)
if t < 0 then return {'closed', ''} end
local q = tonumber(ARGV[2])
local answer = 'admit'
local mark = 'pg'
if t >= q then
  redis.call('DECRBY', KEYS[1], q)
else
  answer = 'sold_out'
  mark = 'so:' .. ARGV[3]
end
redis.call('HSET', KEYS[2], ARGV[1], mark)
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return {answer, ''}`

// gives back tokens an admitted buyer did not use; a closed or missing gate stays as it is
const REFUND = `
local t = redis.call('GET', KEYS[1])
if t and tonumber(t) >= 0 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return -2`

const MARK = `
redis.call('HSETNX', KEYS[2], ARGV[1], 'pg')
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1`

// Postgres says sold out: the gate has no more to give
const EMPTY = `
local t = redis.call('GET', KEYS[1])
if t and tonumber(t) > 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
return 1`

const SHA = new Map<string, string>()
function sha(script: string): string {
  let s = SHA.get(script)
  if (!s) SHA.set(script, (s = createHash('sha1').update(script).digest('hex')))
  return s
}

/** EVALSHA, loading the script once more after a restart or SCRIPT FLUSH. */
async function run(redis: Redis, script: string, keys: string[], args: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(sha(script), keys.length, ...keys, ...args)
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
    return redis.eval(script, keys.length, ...keys, ...args)
  }
}

export type GateAnswer =
  | {kind: 'admit'}
  | {kind: 'sold_out'}
  | {kind: 'replay_sold_out'; fingerprint: string}
  | {kind: 'to_postgres'; reason: 'known' | 'missing' | 'closed' | 'unavailable'}

/** Asks the gate about one request. Redis errors send the request to Postgres (slower, still correct). */
export async function gateAdmit(redis: Redis, ref: GateRef, field: string, qty: number, fingerprint: string): Promise<GateAnswer> {
  const k = gateKeys(ref)
  let reply: [string, string]
  try {
    reply = (await run(redis, ADMIT, [k.tokens, k.keys], [field, qty, fingerprint, GATE_TTL_SECONDS])) as [string, string]
  } catch {
    return {kind: 'to_postgres', reason: 'unavailable'}
  }
  const [answer, prior] = reply
  if (answer === 'admit') return {kind: 'admit'}
  if (answer === 'sold_out') return {kind: 'sold_out'}
  if (answer === 'known' && prior.startsWith('so:')) return {kind: 'replay_sold_out', fingerprint: prior.slice(3)}
  return {kind: 'to_postgres', reason: answer === 'known' ? 'known' : answer === 'closed' ? 'closed' : 'missing'}
}

export async function gateRefund(redis: Redis, ref: GateRef, qty: number): Promise<void> {
  await run(redis, REFUND, [gateKeys(ref).tokens], [qty]).catch(() => {})
}

/** Records that this key's answer lives in Postgres, so the gate never answers it itself. */
export async function gateMark(redis: Redis, ref: GateRef, field: string): Promise<void> {
  const k = gateKeys(ref)
  await run(redis, MARK, [k.tokens, k.keys], [field, GATE_TTL_SECONDS]).catch(() => {})
}

export async function gateEmpty(redis: Redis, ref: GateRef): Promise<void> {
  await run(redis, EMPTY, [gateKeys(ref).tokens], []).catch(() => {})
}

const SYNC_SOURCE = {
  name: 'stock.gate.source',
  text: `SELECT status, available, ${GATE_EPOCH_SQL} AS epoch FROM drops WHERE id = $1`,
}

const ORDER_KEYS_FROM = {
  name: 'stock.gate.order_keys_from',
  text: `SELECT id, user_id, idempotency_key FROM orders WHERE drop_id = $1 AND id > $2 ORDER BY id LIMIT 5000`,
}

/** Postgres's view written into the gate: tokens for a live drop, 0 sold out, -1 otherwise. */
export interface GateSync {
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
  const tokens = status === 'live' ? Number(available) : status === 'sold_out' ? 0 : -1
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
      ? (await redis.set(k.tokens, tokens, 'EX', GATE_TTL_SECONDS)) === 'OK'
      : (await redis.set(k.tokens, tokens, 'EX', GATE_TTL_SECONDS, 'NX')) === 'OK'
  return {tokens, marked, written}
}

/** Closes the gate (drop ended): requests go to Postgres, which refuses them as not live. */
export async function closeGate(redis: Redis, ref: GateRef): Promise<void> {
  await redis.set(gateKeys(ref).tokens, -1, 'EX', GATE_TTL_SECONDS)
}

export async function gateTokens(redis: Redis, ref: GateRef): Promise<number | null> {
  const v = await redis.get(gateKeys(ref).tokens)
  return v === null ? null : Number(v)
}
