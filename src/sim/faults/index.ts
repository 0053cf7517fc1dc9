import {SERVE_APPLICATION_NAME, terminateBackends} from '../../core/db/terminate.js'
import type {Queryable} from '../../core/db/types.js'
import type {RedisServer} from '../../core/redis-server.js'
import {DEFAULT_DOWN_MS, type Fault} from './schema.js'

export {checkFaultsPossible, type FaultComponents} from './check.js'
export {DEFAULT_DOWN_MS, FAULT_KINDS, FaultSchema, FaultsSchema, type Fault, type FaultInput, type FaultKind} from './schema.js'

/** Node's timers may fire up to a millisecond before their time on the performance clock: a fault is never caused early. */
const TIMER_EARLY_MS = 1

/** How long a fault waits for what it broke to come back (a restarted worker) before reporting it did not. */
const RECOVER_TIMEOUT_MS = 60_000

/** The part of a serve cluster (server/cluster.ts ServeCluster) a fault uses. */
export interface KillableCluster {
  killWorker(index?: number, signal?: NodeJS.Signals): {index: number; pid: number; restarted: Promise<number>}
}

/** What faults act on: the run's own processes and servers. A fault whose part is missing throws (checkFaultsPossible says so first). */
export interface FaultContext {
  /** When the run started, on the `now` clock. */
  startedAt: number
  /** Milliseconds clock. Default performance.now. */
  now?: () => number
  /** Aborts the wait for a fault's time (the run ended first). A fault under way still finishes and restores what it stopped. */
  signal?: AbortSignal
  /** The serve workers (kill-worker). */
  cluster?: KillableCluster
  /** The Redis livedrop started (redis-restart). */
  redis?: RedisServer
  /** The Redis cache nodes livedrop started, in --cache order (cache-node-down). */
  cacheNodes?: readonly RedisServer[]
  /** A connection to the engine's database that is not the engine's own (pg-terminate-backends runs its SQL there). */
  db?: Queryable
  /** application_name of the engine's connections. Default 'livedrop-serve' (the serve workers'). */
  applicationName?: string
}

/** What happened: when (ms since the run started), what was done, and when it was over. */
export interface FaultRecord {
  kind: Fault['kind']
  /** When it was planned. */
  at: number
  /** When it was caused; null when the run ended first. */
  startedMs: number | null
  /** When it was over: the worker restarted and ready, Redis answering again, the node back; null if it never was. */
  endedMs: number | null
  /** What was done, in words: "SIGKILL worker 2 (pid 4242); restarted as pid 4300". */
  action: string
  details: Record<string, unknown>
  /** Why the fault could not be caused or what it broke did not come back. */
  error?: string
}

/** Waits for the fault's time, causes it for real, and resolves when it is over. Never rejects: failures are in the record. */
export async function runFault(fault: Fault, ctx: FaultContext): Promise<FaultRecord> {
  const now = ctx.now ?? (() => performance.now())
  const since = () => Math.round(now() - ctx.startedAt)
  const record: FaultRecord = {kind: fault.kind, at: fault.at, startedMs: null, endedMs: null, action: '', details: {}}
  if (!(await sleep(ctx.startedAt + fault.at - now(), ctx.signal))) {
    record.action = 'not caused: the run ended first'
    return record
  }
  record.startedMs = since()
  try {
    switch (fault.kind) {
      case 'kill-worker': {
        const cluster = need(ctx.cluster, 'serve cluster')
        const killed = cluster.killWorker(fault.worker, 'SIGKILL')
        record.action = `SIGKILL worker ${killed.index} (pid ${killed.pid})`
        record.details = {worker: killed.index, pid: killed.pid}
        const newPid = await withTimeout(killed.restarted, RECOVER_TIMEOUT_MS, `worker ${killed.index} was not restarted`)
        record.action += `; restarted as pid ${newPid}`
        record.details.newPid = newPid
        break
      }
      case 'redis-restart': {
        const redis = need(ctx.redis, 'Redis started by livedrop')
        const pid = redis.pid
        record.action = `restart redis-server ${redis.url} (pid ${pid})`
        await redis.restart()
        record.action += `; answering again as pid ${redis.pid}, empty`
        record.details = {url: redis.url, pid, newPid: redis.pid}
        break
      }
      case 'pg-terminate-backends': {
        const db = need(ctx.db, "connection to the engine's database")
        const applicationName = ctx.applicationName ?? SERVE_APPLICATION_NAME
        const pids = await terminateBackends(db, applicationName)
        record.action = `terminated ${pids.length} Postgres backend${pids.length === 1 ? '' : 's'} of the engine (application_name ${applicationName})`
        record.details = {applicationName, pids}
        break
      }
      case 'cache-node-down': {
        const nodes = need(ctx.cacheNodes?.length ? ctx.cacheNodes : undefined, 'Redis cache nodes livedrop started')
        const index = fault.node ?? 1
        const node = need(nodes[index - 1], `cache node ${index}`)
        const downMs = fault.for ?? DEFAULT_DOWN_MS
        const pid = node.pid
        await node.stop()
        record.action = `stop cache node ${index} ${node.url} (pid ${pid}) for ${downMs / 1000} s`
        // the node comes back even when the run ends meanwhile: a fault never outlives its run
        await sleep(downMs)
        await node.start()
        record.action += `; started again as pid ${node.pid}, empty`
        record.details = {node: index, url: node.url, pid, newPid: node.pid, downMs}
        break
      }
    }
    record.endedMs = since()
  } catch (err) {
    record.error = (err as Error).message
  }
  return record
}

function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`nothing to act on: this run has no ${what} (checkFaultsPossible refuses such a fault before the run)`)
  return value
}

/** Resolves true after ms, or false at once when the signal aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, Math.max(0, Math.ceil(ms) + TIMER_EARLY_MS))
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}
