import {ensureIdempotencyPartitions} from '../db/migrate.js'
import type {Db, Queryable} from '../db/types.js'
import {PurgeLockedError, UsageError, sqlState} from '../errors.js'

/**
 * Purging expired idempotency keys, safely while orders flow:
 * - only `completed` keys older than the window go; a key still in flight stays, whatever its age;
 * - the window may not be shorter than PURGE_FLOOR_MS (24 h, the longest retry horizon we
 *   promise) unless forced; orders' UNIQUE (user_id, idempotency_key) still stops a duplicate
 *   order from a retry that comes after its key was purged;
 * - whole expired day partitions without in-flight keys are dropped (O(1), no bloat), each under
 *   a short lock_timeout so order traffic never queues behind it; everything else is deleted in
 *   short batches with a pause between them;
 * - one purge at a time (advisory lock, released with its connection if the purge is killed);
 * - killed at any moment, it has deleted only what it may, and a rerun continues.
 */

/** The shortest window a purge accepts without force: the longest retry horizon we promise. */
export const PURGE_FLOOR_MS = 24 * 3_600_000
export const PURGE_DEFAULTS = {olderThanMs: 72 * 3_600_000, batchSize: 5000, pauseMs: 10}
const PURGE_LOCK = 7_421_009
/** How long dropping a partition may wait for its lock before leaving the day to batch deletes. */
const PARTITION_LOCK_TIMEOUT = '300ms'

export interface PurgeOptions {
  /** Keys created longer ago than this go. Default 72 h. */
  olderThanMs: number
  /** Rows per DELETE. Default 5,000. */
  batchSize?: number
  /** Stop after this long, reporting work left. Default: no limit. */
  maxRuntimeMs?: number
  /** Least pause between batches; it also rests twice as long as each batch took, so order traffic keeps two thirds of the time. Default 10 ms. */
  pauseMs?: number
  /** Count what would go; delete nothing. Default false. */
  dryRun?: boolean
  /** Allow a window below the 24 h floor. Default false. */
  force?: boolean
  /** The clock. Default: now. */
  now?: Date
}

export interface PurgeProgress {
  deleted: number
  batches: number
  partitionsDropped: number
}

export interface PurgeResult {
  dryRun: boolean
  /** Keys deleted (or, with dryRun, that would be). */
  deleted: number
  /** Day partitions dropped whole (or that would be). */
  partitionsDropped: string[]
  /** Seconds the partition drops held their locks, in all. */
  partitionLockSeconds: number
  batches: number
  seconds: number
  keysPerSecond: number
  /** created_at of the oldest key left (null when none). */
  oldestRemaining: string | null
  /** False when the time budget ran out with expired keys left. */
  complete: boolean
  cutoff: string
}

/**
 * Runs fn holding the purge lock: a session advisory lock on a connection of its own, held for the
 * whole purge, so it is released if the purge dies.
 */
async function withPurgeLock<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  return db.withSession(async (session) => {
    const {rows} = await session.query<{ok: boolean}>('SELECT pg_try_advisory_lock($1) AS ok', [PURGE_LOCK])
    if (!rows[0].ok) throw new PurgeLockedError('another idempotency purge is running', {hint: 'Wait for it to finish, or run again later.'})
    try {
      return await fn()
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK]).catch(() => {})
    }
  })
}

const PARTITIONS = `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'idempotency_keys'::regclass AND c.relname ~ '^idempotency_keys_[0-9]{8}$' ORDER BY c.relname`

/** Day partitions whose whole day ended before the cutoff. */
async function expiredPartitions(db: Queryable, cutoff: Date): Promise<string[]> {
  const {rows} = await db.query<{name: string}>(PARTITIONS)
  return rows
    .map((r) => r.name)
    .filter((name) => {
      const d = name.slice(-8)
      const dayEnd = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)) + 1)
      return dayEnd <= cutoff.getTime()
    })
}

/** One batch from one partition by tuple id: a TID scan, no join against every partition. */
function deleteBatchSql(partition: string): string {
  return `DELETE FROM ${partition} WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM ${partition} WHERE state = 'completed' AND created_at < $1 LIMIT $2))
    AND state = 'completed' AND created_at < $1`
}
const ALL_PARTITIONS = `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'idempotency_keys'::regclass ORDER BY c.relname`
const COUNT_EXPIRED = {name: 'purge.count', text: `SELECT count(*)::int AS n FROM idempotency_keys WHERE state = 'completed' AND created_at < $1`}
const OLDEST = {name: 'purge.oldest', text: `SELECT min(created_at) AS t FROM idempotency_keys`}

/**
 * Drops one expired day partition if it holds no in-flight key and nothing inside the window.
 * Counts its rows first without any lock (expired rows no longer change in number), then holds
 * the locks only for two index probes and the DROP. Returns the rows it held and the seconds the
 * locks were held, or null when it was left to batch deletes (lock busy, in-flight keys).
 */
async function dropPartition(db: Db, name: string, cutoff: Date, dryRun: boolean): Promise<{rows: number; lockedSeconds: number} | null> {
  const {rows} = await db.query<{n: number}>(`SELECT count(*)::int AS n FROM ${name}`)
  const started = performance.now()
  try {
    const dropped = await db.transaction(async (tx) => {
      await tx.exec(`SET LOCAL lock_timeout = '${PARTITION_LOCK_TIMEOUT}'`)
      if (!dryRun) await tx.exec(`LOCK TABLE ${name} IN ACCESS EXCLUSIVE MODE`)
      const keep = await tx.query<{keep: boolean}>(
        `SELECT EXISTS (SELECT 1 FROM ${name} WHERE state = 'in_flight')
           OR EXISTS (SELECT 1 FROM ${name} WHERE state = 'completed' AND created_at >= $1) AS keep`,
        [cutoff],
      )
      if (keep.rows[0].keep) return false
      if (!dryRun) await tx.exec(`DROP TABLE ${name}`)
      return true
    })
    return dropped ? {rows: rows[0].n, lockedSeconds: (performance.now() - started) / 1000} : null
  } catch (err) {
    if (sqlState(err) === '55P03') return null // lock_not_available: order traffic is busy there; batches will do
    throw err
  }
}

export async function purgeIdempotencyKeys(db: Db, options: PurgeOptions, onProgress: (p: PurgeProgress) => void = () => {}): Promise<PurgeResult> {
  if (!(options.olderThanMs > 0)) throw new UsageError('olderThanMs', 'must be a positive duration')
  if (options.olderThanMs < PURGE_FLOOR_MS && !options.force) {
    throw new UsageError('olderThanMs', `${options.olderThanMs / 3_600_000} h is below the ${PURGE_FLOOR_MS / 3_600_000} h floor (the longest retry horizon we promise)`, {
      hint: 'Use a window of 24h or more, or force it if no client retries that late.',
    })
  }
  const batchSize = options.batchSize ?? PURGE_DEFAULTS.batchSize
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError('batchSize', `must be a whole number ≥ 1, got ${batchSize}`)
  const now = options.now ?? new Date()
  const cutoff = new Date(now.getTime() - options.olderThanMs)
  const dryRun = options.dryRun ?? false
  const pauseMs = options.pauseMs ?? PURGE_DEFAULTS.pauseMs
  const started = performance.now()
  const outOfTime = () => options.maxRuntimeMs !== undefined && performance.now() - started >= options.maxRuntimeMs

  return withPurgeLock(db, async () => {
    const progress: PurgeProgress = {deleted: 0, batches: 0, partitionsDropped: 0}
    const dropped: string[] = []
    let partitionLockSeconds = 0
    let complete = true
    if (!dryRun) await ensureIdempotencyPartitions(db, now)

    for (const name of await expiredPartitions(db, cutoff)) {
      if (outOfTime()) {
        complete = false
        break
      }
      const result = await dropPartition(db, name, cutoff, dryRun)
      if (result === null) continue
      dropped.push(name)
      partitionLockSeconds += result.lockedSeconds
      progress.deleted += result.rows
      progress.partitionsDropped++
      onProgress({...progress})
    }

    if (dryRun) {
      // what batches would delete: expired completed keys outside the partitions counted above
      const {rows} = await db.query<{n: number}>(COUNT_EXPIRED, [cutoff])
      const inDropped = dropped.length
        ? (await db.query<{n: number}>(`SELECT (${dropped.map((p) => `(SELECT count(*) FROM ${p} WHERE state = 'completed' AND created_at < $1)`).join(' + ')})::int AS n`, [cutoff])).rows[0].n
        : 0
      progress.deleted += rows[0].n - inDropped
    } else if (complete) {
      batches: for (const {name} of (await db.query<{name: string}>(ALL_PARTITIONS)).rows) {
        for (;;) {
          if (outOfTime()) {
            complete = (await db.query<{n: number}>(COUNT_EXPIRED, [cutoff])).rows[0].n === 0
            break batches
          }
          const t0 = performance.now()
          const {rowCount} = await db.query(deleteBatchSql(name), [cutoff, batchSize])
          if (rowCount === 0) break
          progress.deleted += rowCount
          progress.batches++
          onProgress({...progress})
          if (rowCount < batchSize) break
          // rest twice as long as the batch took: the purge keeps to a third of the time
          const rest = Math.max(pauseMs, 2 * (performance.now() - t0))
          if (rest > 0) await new Promise((r) => setTimeout(r, rest))
        }
      }
    }

    const oldest = (await db.query<{t: Date | null}>(OLDEST)).rows[0].t
    const seconds = (performance.now() - started) / 1000
    return {
      dryRun,
      deleted: progress.deleted,
      partitionsDropped: dropped,
      partitionLockSeconds,
      batches: progress.batches,
      seconds,
      keysPerSecond: seconds > 0 ? progress.deleted / seconds : 0,
      oldestRemaining: oldest ? new Date(oldest).toISOString() : null,
      complete,
      cutoff: cutoff.toISOString(),
    }
  })
}

export interface IdempotencyStats {
  /** Keys by state and age bucket, e.g. {completed: {'<1h': 10, '1h-24h': 3, …}}. */
  byState: Record<string, Record<string, number>>
  total: number
  oldest: string | null
  /** Each partition with its rows and on-disk size. */
  partitions: Array<{name: string; rows: number; bytes: number}>
  /** What `idempotency purge` with the default window (72 h) would remove now. */
  defaultPurge: {olderThanHours: number; keys: number}
}

const AGE_BUCKETS = `CASE
    WHEN created_at >= $1::timestamptz - interval '1 hour' THEN '<1h'
    WHEN created_at >= $1::timestamptz - interval '24 hours' THEN '1h-24h'
    WHEN created_at >= $1::timestamptz - interval '72 hours' THEN '24h-72h'
    WHEN created_at >= $1::timestamptz - interval '7 days' THEN '72h-7d'
    ELSE '>7d' END`

/** Counts by state and age, the oldest key, partition sizes, and what a default purge would remove. */
export async function idempotencyStats(db: Queryable, now = new Date()): Promise<IdempotencyStats> {
  const {rows} = await db.query<{state: string; age: string; n: number}>(
    `SELECT state, ${AGE_BUCKETS} AS age, count(*)::int AS n FROM idempotency_keys GROUP BY 1, 2 ORDER BY 1, 2`,
    [now],
  )
  const byState: Record<string, Record<string, number>> = {}
  let total = 0
  for (const r of rows) {
    byState[r.state] = {...byState[r.state], [r.age]: r.n}
    total += r.n
  }
  const oldest = (await db.query<{t: Date | null}>(OLDEST)).rows[0].t
  const parts = await db.query<{name: string; bytes: number}>(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid)::bigint AS bytes FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'idempotency_keys'::regclass ORDER BY c.relname`,
  )
  const partitions: IdempotencyStats['partitions'] = []
  for (const p of parts.rows) {
    const n = (await db.query<{n: number}>(`SELECT count(*)::int AS n FROM ${p.name}`)).rows[0].n
    partitions.push({name: p.name, rows: n, bytes: Number(p.bytes)})
  }
  const cutoff = new Date(now.getTime() - PURGE_DEFAULTS.olderThanMs)
  const keys = (await db.query<{n: number}>(COUNT_EXPIRED, [cutoff])).rows[0].n
  return {byState, total, oldest: oldest ? new Date(oldest).toISOString() : null, partitions, defaultPurge: {olderThanHours: 72, keys}}
}
