import {spawn, type ChildProcess} from 'node:child_process'
import {Redis} from 'ioredis'
import {ServiceUnreachableError, UsageError} from './errors.js'
import {freePort} from './net.js'

/** How long a started redis-server may take to answer PING before the start fails. */
const START_TIMEOUT_MS = 10_000
/** Between PINGs while waiting for the server to answer. */
const POLL_MS = 25
/** How long a stopped server may take to exit after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 5_000

/** Servers still running: killed when this process exits, so none outlives the command that started it. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
function killOnExit(proc: ChildProcess): void {
  running.add(proc)
  proc.once('exit', () => running.delete(proc))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const p of running) p.kill('SIGKILL')
  })
}

export interface RedisServerOptions {
  /** TCP port on 127.0.0.1. Default: a free one the OS picks. */
  port?: number
  /** The redis-server binary. Default 'redis-server' (from PATH). */
  binary?: string
}

/** A redis-server livedrop started itself: a throwaway cache or gate, never data to keep. */
export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string
  readonly port: number
  /** The running server's pid; null while stopped. */
  readonly pid: number | null
  /** Stops the server and starts a new one on the same port (every key is lost, as in a real restart). */
  restart(): Promise<void>
  /** Starts the server again after stop(), on the same port. */
  start(): Promise<void>
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); waits until it has exited. */
  stop(): Promise<void>
}

/**
 * Runs the system's `redis-server` on 127.0.0.1 with persistence off (`--save "" --appendonly no`),
 * so a restart really loses every key, as a cache or gate server that restarts does.
 * A missing binary is a UsageError naming the Debian package.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort())
  const binary = options.binary ?? 'redis-server'
  const url = `redis://127.0.0.1:${port}`
  let child: ChildProcess | null = null

  const start = async () => {
    if (child) return
    const proc = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    proc.stderr!.on('data', (d) => (stderr += d))
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? new UsageError('redis', `${binary} is not installed (needed to start a Redis server of livedrop's own)`, {hint: 'Install the Debian package redis-server (apt-get install redis-server), or give a running Redis with --redis.', cause: err})
            : err,
        )
      })
      proc.once('exit', (code) => reject(new ServiceUnreachableError(`redis-server on 127.0.0.1:${port} exited (code ${code}) before answering: ${stderr.trim()}`, {hint: 'Is the port taken? Its message above says why.'})))
    })
    failed.catch(() => {})
    child = proc
    killOnExit(proc)
    try {
      await Promise.race([failed, answers(port)])
    } catch (err) {
      child = null
      proc.kill('SIGKILL')
      throw err
    }
    // from now on an exit is a stop (or a fault): forget the process so start() can run again
    proc.once('exit', () => {
      if (child === proc) child = null
    })
  }

  const stop = async () => {
    const proc = child
    if (!proc) return
    child = null
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }

  await start()
  return {
    url,
    port,
    get pid() {
      return child?.pid ?? null
    },
    start,
    stop,
    async restart() {
      await stop()
      await start()
    },
  }
}

/** Resolves once a server on the port answers PING; rejects after START_TIMEOUT_MS. */
async function answers(port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const redis = new Redis({host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null})
    redis.on('error', () => {})
    try {
      await redis.connect()
      if ((await redis.ping()) === 'PONG') return
    } catch {
      // not listening yet
    } finally {
      redis.disconnect()
    }
    if (Date.now() > deadline) throw new ServiceUnreachableError(`redis-server on 127.0.0.1:${port} did not answer within ${START_TIMEOUT_MS / 1000} s`)
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}
