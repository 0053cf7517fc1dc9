import type {Redis} from 'ioredis'
import type {Db} from '../db/types.js'
import type {ChangeFeed} from '../events.js'

/** What the drop engine (drops, orders, stock) needs from outside; nothing else is global. */
export interface EngineDeps {
  db: Db
  /** Only the redis-gate strategy uses it; without it such drops cannot be created. */
  redis?: Redis | null
  /** Prefix of every Redis key the gate uses, so tests and tenants can share a server. Default 'livedrop:'. */
  redisPrefix?: string
  /** Told after commit about drop status and stock-threshold changes (cache invalidation, SSE). */
  changes?: ChangeFeed
  /** The clock for idempotency-key times. Default () => new Date(). */
  now?: () => Date
  /** A key's first request may stay in flight this long before a retry may take it over. Default 30,000 ms. */
  inFlightTimeoutMs?: number
  /** A redis-gate call slower than this counts as Redis down: orders go to Postgres for a while. Default 250 ms. */
  gateTimeoutMs?: number
}

export const DEFAULT_REDIS_PREFIX = 'livedrop:'
export const DEFAULT_IN_FLIGHT_TIMEOUT_MS = 30_000

export function clock(deps: EngineDeps): Date {
  return deps.now ? deps.now() : new Date()
}
