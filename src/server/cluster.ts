import cluster, {type Worker} from 'node:cluster'
import {fork, type ChildProcess} from 'node:child_process'
import {createRequire} from 'node:module'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {openEmbedded} from '../core/db/embedded.js'
import {migrate} from '../core/db/migrate.js'
import {PostgresDb} from '../core/db/postgres.js'
import {SERVE_APPLICATION_NAME, withApplicationName} from '../core/db/terminate.js'
import type {DbTarget} from '../core/db/types.js'
import {createEngine, type Engine} from '../core/engine.js'
import {describeError, redactUrl, RelayedError} from '../core/errors.js'
import {freePort} from '../core/net.js'
import {buildServer, listenError} from './app.js'
import {LIVE_RELAY} from './live-events.js'

/**
 * `serve --workers N`: N worker processes on one port with node:cluster.
 *
 * Scheduling: node:cluster's default on Linux, SCHED_RR (the primary accepts each connection and
 * hands it to the next worker in turn). With keep-alive HTTP a connection carries many short
 * requests, so what must be balanced is connections, and they are accepted rarely: RR costs one
 * hand-off per connection, not per request, and spreads them evenly. SCHED_NONE (every worker
 * accept()s on the shared socket) lets the kernel wake whichever worker it likes, which piles
 * long-lived connections onto a few workers (Node's docs report 70% on 2 of 8); the skew then lasts
 * as long as the connections do. NODE_CLUSTER_SCHED_POLICY=none still switches it, as Node documents.
 *
 * Processes: the primary serves nothing. It holds the embedded Postgres (started once, its URL
 * handed to every worker) and migrates it, forks the workers, restarts any worker that dies (after
 * a backoff when it dies young), and drains them on SIGTERM. Workers identify their connections as
 * application_name=livedrop-serve, so `pg-terminate-backends` finds them and nothing else.
 * Fan-out workers run in every worker (`fanoutWorkers` each): their claims are leases taken with
 * FOR UPDATE SKIP LOCKED and every page re-checks its lease, so N copies share the outbox without
 * delivering twice; a killed worker's leased event waits for its lease to expire (30 s default).
 */

/** Settings of every worker (the HTTP server and engine of `livedrop serve`). */
export interface ServeWorkerSettings {
  /** Redis for the redis-gate strategy, invalidation, SSE across processes and the shared rate limit. Default none. */
  redisUrl?: string | null
  /** Cache nodes (see EngineConfig.cache). Default 'memory' (per worker). */
  cache?: string
  /** Token and cursor signing secret; the same for every process behind one balancer. */
  secret: string
  /** Requests per second per user. Default 200. */
  rateLimitPerSecond?: number
  /** Largest burst per user. Default 2 × rateLimitPerSecond. */
  rateLimitBurst?: number
  /** Largest request body in bytes. Default 16 KiB. */
  bodyLimit?: number
  /** Fan-out workers in each worker process (0: none). Default 1. */
  fanoutWorkers?: number
  /** Postgres pool size of each worker. Default 20 (the engine's). */
  poolSize?: number
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number
  /** Address to bind. Default 127.0.0.1. */
  host?: string
}

/** What the cluster's primary runs: N workers over one database. */
export interface ClusterConfig extends ServeWorkerSettings {
  /** Worker processes, ≥ 1. */
  workers: number
  /** The database: an embedded one is started (or joined) by the primary, once. */
  db: DbTarget
  /** Migrate before forking (the embedded database). Default: only for an embedded target. */
  migrate?: boolean
}

/** One worker slot as the primary sees it. */
export interface WorkerState {
  /** 1…N, kept across restarts. */
  index: number
  /** The current process; null while waiting to be restarted. */
  pid: number | null
  ready: boolean
}

/** Events the primary reports (the CLI prints them; the library forwards them to its caller). */
export interface PrimaryHooks {
  log?: (line: string) => void
  /** Called after every change of the workers (ready, died, restarted). */
  onChange?: () => void
}

export interface ServePrimary {
  readonly url: string
  /** The database, as printable (no password). */
  readonly label: string
  /** The application_name the workers' connections carry. */
  readonly applicationName: string
  workers(): WorkerState[]
  /** Replacement workers that became ready. */
  readonly restarts: number
  /** Stops accepting, lets in-flight requests finish, ends SSE streams, then the workers exit. */
  drain(): void
  /** SIGKILLs every worker now (a second SIGTERM). */
  force(): void
  /** Settles when every worker is gone and the database is released: exit code 0 after a clean drain. */
  readonly done: Promise<{code: number; error?: ErrorInfo}>
}

type ErrorInfo = ReturnType<typeof describeError>

/** A worker that never reports ready within this long counts as failed to start. */
const WORKER_START_TIMEOUT_MS = 60_000
/** A worker that lived this long before dying is restarted at once; a younger one after a backoff. */
const STABLE_MS = 10_000
/** First backoff, doubled per consecutive early death, capped. */
const BACKOFF_BASE_MS = 200
const BACKOFF_MAX_MS = 10_000
/** A slot whose worker failed to start this many times in a row makes the cluster give up. */
const MAX_START_FAILURES = 5
/** How long a drain may take before the primary SIGKILLs what is left. */
const DRAIN_TIMEOUT_MS = 30_000
/** How long a worker waits for in-flight requests before cutting its connections. */
const WORKER_DRAIN_MS = 20_000

const ROLE_ENV = 'LIVEDROP_SERVE_ROLE'
const SELF = fileURLToPath(import.meta.url)
const FROM_SOURCE = SELF.endsWith('.ts')

// ---- messages between the processes ----
type WorkerMessage = {type: 'hello'} | {type: 'ready'; url: string} | {type: 'failed'; error: ErrorInfo}
type PrimaryMessage = {type: 'start'; index: number; settings: ServeWorkerSettings & {databaseUrl: string; port: number}} | {type: 'drain'}

/**
 * Runs the cluster's primary in this process (which must be a node:cluster primary): opens the
 * database, forks the workers and resolves once every one is listening. A worker failing to start
 * then (a bad --db, a port in use) stops the others and rejects with that worker's error.
 */
export async function runServePrimary(config: ClusterConfig, hooks: PrimaryHooks = {}): Promise<ServePrimary> {
  const log = hooks.log ?? (() => {})
  let databaseUrl: string
  let label: string
  let release = async () => {}
  if (config.db.kind === 'embedded') {
    const embedded = await openEmbedded(config.db.dir, config.db.database)
    ;[databaseUrl, label, release] = [embedded.url, embedded.label, () => embedded.release()]
  } else {
    databaseUrl = config.db.url
    label = redactUrl(databaseUrl)
  }
  try {
    if (config.migrate ?? config.db.kind === 'embedded') {
      const db = new PostgresDb(databaseUrl, {max: 1})
      try {
        await migrate(db)
      } finally {
        await db.close()
      }
    }
  } catch (err) {
    await release()
    throw err
  }
  const workerUrl = withApplicationName(databaseUrl, SERVE_APPLICATION_NAME)
  const applicationName = new URL(workerUrl).searchParams.get('application_name')!
  const port = config.port || (await freePort())
  const {db: _db, workers: _workers, migrate: _migrate, ...workerSettings} = config
  const settings = {...workerSettings, databaseUrl: workerUrl, port}

  cluster.setupPrimary({exec: SELF, execArgv: FROM_SOURCE ? tsxArgs() : []})

  interface Slot {
    index: number
    worker: Worker | null
    ready: boolean
    startedAt: number
    /** Early deaths in a row (backoff), and failed starts in a row (give up). */
    earlyDeaths: number
    startFailures: number
    everReady: boolean
    timer: NodeJS.Timeout | null
    lastError?: ErrorInfo
  }
  const slots: Slot[] = Array.from({length: config.workers}, (_, i) => ({index: i + 1, worker: null, ready: false, startedAt: 0, earlyDeaths: 0, startFailures: 0, everReady: false, timer: null}))
  let url = ''
  let restarts = 0
  let state: 'starting' | 'running' | 'draining' | 'done' = 'starting'
  let giveUpError: ErrorInfo | undefined
  let forced = false
  let settleDone!: (r: {code: number; error?: ErrorInfo}) => void
  const done = new Promise<{code: number; error?: ErrorInfo}>((resolve) => (settleDone = resolve))
  let startupWaiters: {resolve: () => void; reject: (e: ErrorInfo) => void} | null = null
  const changed = () => hooks.onChange?.()

  const spawnWorker = (slot: Slot) => {
    slot.timer = null
    const worker = cluster.fork({[ROLE_ENV]: 'worker'})
    slot.worker = worker
    slot.ready = false
    slot.startedAt = Date.now()
    const startTimer = setTimeout(() => {
      slot.lastError = {code: 'WORKER_START_TIMEOUT', message: `worker ${slot.index} did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`, exitCode: 1}
      worker.process.kill('SIGKILL')
    }, WORKER_START_TIMEOUT_MS)
    worker.on('message', (message: WorkerMessage | {type: typeof LIVE_RELAY}) => {
      if (message.type === 'hello') {
        worker.send({type: 'start', index: slot.index, settings} satisfies PrimaryMessage)
      } else if (message.type === 'ready') {
        clearTimeout(startTimer)
        slot.ready = true
        slot.startFailures = 0
        if (slot.everReady) {
          restarts++
          log(`worker ${slot.index} restarted (pid ${worker.process.pid})`)
        }
        slot.everReady = true
        url ||= message.url
        // a drain asked for while this worker was starting reaches it now
        if (state === 'draining') worker.send({type: 'drain'} satisfies PrimaryMessage)
        changed()
        if (state === 'starting' && slots.every((s) => s.ready)) startupWaiters?.resolve()
      } else if (message.type === 'failed') {
        // name the database as the user gave it, not with the application_name added for the workers
        slot.lastError = {...message.error, message: message.error.message.replaceAll(redactUrl(workerUrl), redactUrl(databaseUrl))}
      } else if (message.type === LIVE_RELAY) {
        // SSE without Redis: a delivery committed in one worker reaches the users streaming from every worker
        for (const s of slots) if (s.worker?.isConnected()) s.worker.send(message, undefined, undefined, () => {})
      }
    })
    worker.on('exit', (code, signal) => {
      clearTimeout(startTimer)
      const wasReady = slot.ready
      slot.worker = null
      slot.ready = false
      changed()
      if (state === 'draining' || state === 'done') return finishIfAllGone()
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`
      if (!wasReady) {
        slot.startFailures++
        const error = slot.lastError ?? {code: 'WORKER_START_FAILED', message: `worker ${slot.index} ${how} before it was ready`, exitCode: 1}
        if (state === 'starting') return startupWaiters?.reject(error)
        if (slot.startFailures >= MAX_START_FAILURES) {
          giveUpError = {...error, message: `worker ${slot.index} failed to start ${slot.startFailures} times in a row; giving up: ${error.message}`}
          log(giveUpError.message)
          return drain()
        }
      }
      const early = Date.now() - slot.startedAt < STABLE_MS
      slot.earlyDeaths = early ? slot.earlyDeaths + 1 : 0
      const delay = slot.earlyDeaths === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (slot.earlyDeaths - 1))
      log(`worker ${slot.index} (pid ${worker.process.pid}) ${how}; restarting${delay ? ` in ${delay} ms` : ''}`)
      slot.timer = setTimeout(() => spawnWorker(slot), delay)
    })
  }

  let drainTimer: NodeJS.Timeout | null = null
  const finishIfAllGone = () => {
    if (state === 'done' || slots.some((s) => s.worker)) return
    state = 'done'
    if (drainTimer) clearTimeout(drainTimer)
    void release().finally(() => {
      changed()
      settleDone(giveUpError ? {code: giveUpError.exitCode || 1, error: giveUpError} : {code: forced ? 1 : 0})
    })
  }
  const drain = () => {
    if (state === 'draining' || state === 'done') return
    state = 'draining'
    for (const s of slots) {
      if (s.timer) clearTimeout(s.timer)
      s.timer = null
      // a worker still starting gets the drain when it reports ready (see above)
      if (s.ready) s.worker?.send({type: 'drain'} satisfies PrimaryMessage, undefined, undefined, () => {})
    }
    drainTimer = setTimeout(() => {
      log(`drain took longer than ${DRAIN_TIMEOUT_MS / 1000} s: killing the workers left`)
      force()
    }, DRAIN_TIMEOUT_MS)
    finishIfAllGone()
  }
  const force = () => {
    forced = true
    if (state !== 'done') state = 'draining'
    for (const s of slots) {
      if (s.timer) clearTimeout(s.timer)
      s.timer = null
      s.worker?.process.kill('SIGKILL')
    }
    finishIfAllGone()
  }

  try {
    await new Promise<void>((resolve, reject) => {
      startupWaiters = {resolve, reject: (e) => reject(new RelayedError(e))}
      for (const slot of slots) spawnWorker(slot)
    })
  } catch (err) {
    state = 'draining'
    for (const s of slots) s.worker?.process.kill('SIGKILL')
    await new Promise<void>((resolve) => {
      const check = () => (slots.some((s) => s.worker) ? setTimeout(check, 20) : resolve())
      check()
    })
    state = 'done'
    await release()
    throw err
  }
  state = 'running'

  return {
    url,
    label,
    applicationName,
    workers: () => slots.map((s) => ({index: s.index, pid: s.worker?.process.pid ?? null, ready: s.ready})),
    get restarts() {
      return restarts
    },
    drain,
    force,
    done,
  }
}

/** node's --import of tsx, so processes started from the TypeScript sources (tests, benches) load them. */
function tsxArgs(): string[] {
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
}

// ---- the worker ----

async function runWorker(): Promise<void> {
  // Ctrl-C reaches every process of the group: the primary decides, and drains the workers
  process.on('SIGINT', () => {})
  const send = (message: WorkerMessage) => process.send!(message, undefined, undefined, () => {})
  const start = await new Promise<Extract<PrimaryMessage, {type: 'start'}>>((resolve) => {
    const onMessage = (m: PrimaryMessage) => {
      if (m.type !== 'start') return
      process.off('message', onMessage)
      resolve(m)
    }
    process.on('message', onMessage)
    send({type: 'hello'})
  })
  const s = start.settings
  let engine: Engine | null = null
  let app: Awaited<ReturnType<typeof buildServer>>['app'] | null = null
  try {
    engine = await createEngine({db: {kind: 'postgres', url: s.databaseUrl}, redisUrl: s.redisUrl, cache: s.cache, fanoutWorkers: s.fanoutWorkers ?? 1, poolSize: s.poolSize})
    const rate = s.rateLimitPerSecond ?? 200
    ;({app} = await buildServer(engine, {
      secret: s.secret,
      rateLimitPerSecond: rate,
      rateLimitBurst: s.rateLimitBurst ?? rate * 2,
      rateLimitShared: true,
      bodyLimit: s.bodyLimit,
      worker: {index: start.index, pid: process.pid},
    }))
    const host = s.host ?? '127.0.0.1'
    const url = await app.listen({port: s.port, host}).catch((err: unknown) => {
      throw listenError(err, host, s.port)
    })
    send({type: 'ready', url})
  } catch (err) {
    send({type: 'failed', error: describeError(err)})
    await app?.close().catch(() => {})
    await engine?.close().catch(() => {})
    // let the IPC message go out before exiting
    setTimeout(() => process.exit(1), 50)
    return
  }
  let draining = false
  const drain = async () => {
    if (draining) return
    draining = true
    const cut = setTimeout(() => app!.server.closeAllConnections(), WORKER_DRAIN_MS)
    await app!.close()
    clearTimeout(cut)
    await engine!.close()
    process.exit(0)
  }
  process.on('message', (m: PrimaryMessage) => {
    if (m.type === 'drain') void drain()
  })
  process.on('SIGTERM', () => void drain())
}

// ---- the library: the primary in a child process ----

/** startServeCluster's options: the settings of `livedrop serve --workers N` over a Postgres URL. */
export interface ServeClusterOptions extends ServeWorkerSettings {
  /** Worker processes, ≥ 1. */
  workers: number
  /** postgres://… of a migrated database. */
  databaseUrl: string
  /** Where the processes' stderr goes (workers log 5xx there). Default: this process's stderr. */
  log?: {write(text: string): void} | false
}

export interface ServeCluster {
  /** http://host:port every worker answers on. */
  readonly url: string
  /** The primary (a child of this process). */
  readonly primaryPid: number
  /** application_name of every worker connection (for pg-terminate-backends). */
  readonly applicationName: string
  /** The workers' pids, by slot; a slot waiting for its restart is left out. */
  pids(): number[]
  workers(): WorkerState[]
  /** Replacement workers that became ready since the start. */
  readonly restarts: number
  /**
   * Sends a signal (default SIGKILL) to one worker (default: the first ready one); the cluster
   * restarts it. `restarted` resolves with the replacement's pid once it is ready.
   */
  killWorker(index?: number, signal?: NodeJS.Signals): {index: number; pid: number; restarted: Promise<number>}
  /** Settles when the primary exits, with its exit code (0 after close(); non-zero when it gave up). */
  readonly exited: Promise<number>
  /** Drains the workers (SIGTERM to the primary) and waits for the primary to exit; its exit code. */
  close(): Promise<number>
}

type ChildMessage =
  | {type: 'hello'}
  | {type: 'ready'; url: string; applicationName: string; workers: WorkerState[]; restarts: number}
  | {type: 'state'; workers: WorkerState[]; restarts: number}
  | {type: 'failed'; error: ErrorInfo}

/**
 * Starts `livedrop serve --workers N` as a child process (its primary) over a Postgres database,
 * so the caller (a load generator) never shares a process with the server. The same primary and
 * workers as the CLI. Rejects with the workers' error when they cannot start (exit code kept).
 */
export async function startServeCluster(options: ServeClusterOptions): Promise<ServeCluster> {
  const {databaseUrl, log = process.stderr, ...rest} = options
  const config: ClusterConfig = {...rest, db: {kind: 'postgres', url: databaseUrl}, migrate: false}
  const child: ChildProcess = fork(SELF, [], {
    env: {...process.env, [ROLE_ENV]: 'primary'},
    execArgv: FROM_SOURCE ? tsxArgs() : [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d).slice(-4000)
    if (log) log.write(String(d))
  })
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
  let workers: WorkerState[] = []
  let restarts = 0
  const stateListeners = new Set<() => void>()
  const ready = await new Promise<Extract<ChildMessage, {type: 'ready'}>>((resolve, reject) => {
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'hello') child.send({type: 'start', config})
      else if (m.type === 'ready') resolve(m)
      else if (m.type === 'failed') reject(new RelayedError(m.error))
      if (m.type === 'ready' || m.type === 'state') {
        ;[workers, restarts] = [m.workers, m.restarts]
        for (const l of stateListeners) l()
      }
    })
    void exited.then((code) => reject(new Error(`the serve cluster's primary exited (code ${code}) before it was ready: ${stderr.trim()}`)))
  }).catch(async (err: unknown) => {
    await exited
    throw err
  })

  const whenReady = (index: number, oldPid: number) =>
    new Promise<number>((resolve, reject) => {
      const check = () => {
        const w = workers.find((x) => x.index === index)
        if (w?.ready && w.pid !== null && w.pid !== oldPid) {
          stateListeners.delete(check)
          resolve(w.pid)
        }
      }
      stateListeners.add(check)
      void exited.then(() => {
        stateListeners.delete(check)
        reject(new Error(`the serve cluster exited before worker ${index} was restarted`))
      })
    })

  return {
    url: ready.url,
    primaryPid: child.pid!,
    applicationName: ready.applicationName,
    pids: () => workers.filter((w) => w.pid !== null).map((w) => w.pid!),
    workers: () => workers.map((w) => ({...w})),
    get restarts() {
      return restarts
    },
    killWorker(index, signal = 'SIGKILL') {
      const target = index === undefined ? workers.find((w) => w.ready && w.pid !== null) : workers.find((w) => w.index === index)
      if (!target || target.pid === null) throw new Error(index === undefined ? 'no ready worker to kill' : `worker ${index} is not running`)
      const restarted = whenReady(target.index, target.pid)
      restarted.catch(() => {})
      process.kill(target.pid, signal)
      return {index: target.index, pid: target.pid, restarted}
    },
    exited,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), DRAIN_TIMEOUT_MS + 5_000)
        await exited
        clearTimeout(timer)
      }
      return exited
    },
  }
}

/** The library's child: the primary, driven by its parent over IPC. */
async function runChildPrimary(): Promise<void> {
  const send = (m: ChildMessage) => process.send!(m, undefined, undefined, () => {})
  const config = await new Promise<ClusterConfig>((resolve) => {
    const onMessage = (m: {type: string; config: ClusterConfig}) => {
      if (m.type !== 'start') return
      process.off('message', onMessage)
      resolve(m.config)
    }
    process.on('message', onMessage)
    send({type: 'hello'})
  })
  let primary: ServePrimary | null = null
  const state = () => primary && send({type: 'state', workers: primary.workers(), restarts: primary.restarts})
  try {
    primary = await runServePrimary(config, {log: (line) => process.stderr.write(`serve: ${line}\n`), onChange: state})
  } catch (err) {
    send({type: 'failed', error: describeError(err)})
    setTimeout(() => process.exit(describeError(err).exitCode || 1), 50)
    return
  }
  send({type: 'ready', url: primary.url, applicationName: primary.applicationName, workers: primary.workers(), restarts: primary.restarts})
  let signals = 0
  const stop = () => (++signals === 1 ? primary!.drain() : primary!.force())
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // the caller went away: nobody will close this cluster but itself
  process.on('disconnect', () => primary!.drain())
  const {code, error} = await primary.done
  if (error) process.stderr.write(`serve: ${error.message}\n`)
  process.exit(code)
}

if (process.env[ROLE_ENV] === 'worker' && cluster.isWorker) void runWorker()
else if (process.env[ROLE_ENV] === 'primary' && cluster.isPrimary && process.send) void runChildPrimary()
