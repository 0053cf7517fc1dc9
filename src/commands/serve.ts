import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../cli/base-command.js'
import {createEngine} from '../core/engine.js'
import {RelayedError} from '../core/errors.js'
import {buildServer, listenError} from '../server/app.js'
import {runServePrimary} from '../server/cluster.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve the drop engine over HTTP (JSON API, SSE events, /metrics)'
  static override description = `Runs until SIGTERM or SIGINT, then stops accepting, finishes in-flight requests, ends SSE streams and closes pools (a second signal stops at once).
Several serve processes on the same Postgres (and Redis) behave as one: give them the same --secret.
On the embedded database the schema is migrated on start; on Postgres run \`livedrop db migrate\` first.

--workers N runs N worker processes on one port (node:cluster; the primary hands each new connection to the next worker) and restarts a worker that dies; it gives up (exit ≠ 0) when workers keep failing to start. /healthz and /metrics name the worker that answered. Each worker opens its own pool (20 connections) and runs --workers-fanout fan-out workers (their leases keep them from delivering twice). The embedded database is started once, by the primary.
What holds across workers: orders, stock and idempotency (Postgres); SSE events (through Redis with --redis, else through the primary, within this serve only). The per-user rate limit is shared through Redis with --redis; without it each worker (and each serve process) limits on its own, so a user may get up to N × --rate-limit.`
  static override examples = [
    '<%= config.bin %> serve --port 8080',
    '<%= config.bin %> serve --db postgres://root@127.0.0.1:5432/test --redis redis://127.0.0.1:6379 --cache redis://127.0.0.1:6379 --workers-fanout 2',
    '<%= config.bin %> serve --workers 4 --db postgres://root@127.0.0.1:5432/test --redis redis://127.0.0.1:6379',
    'LIVEDROP_SECRET=change-me <%= config.bin %> serve --host 0.0.0.0 --port 8080',
  ]
  static override flags = {
    ...dbFlags,
    port: Flags.integer({description: 'TCP port (0 picks a free one)', default: 8080, min: 0, max: 65535}),
    host: Flags.string({description: 'address to bind', default: '127.0.0.1'}),
    workers: Flags.integer({description: 'worker processes on the one port (node:cluster); 1: this process serves', default: 1, min: 1, max: 64}),
    redis: Flags.string({description: 'Redis for the redis-gate strategy, invalidation, SSE and the rate limit across processes [env: REDIS_URL]'}),
    cache: Flags.string({description: 'cache nodes: memory[:N], redis://a,redis://b, redis-cluster://h:7000 [env: LIVEDROP_CACHE]'}),
    'workers-fanout': Flags.integer({description: 'fan-out workers in this process, or in each worker with --workers (0: none)', default: 1, min: 0, max: 256}),
    secret: Flags.string({description: 'token signing secret [env: LIVEDROP_SECRET]'}),
    'rate-limit': Flags.integer({description: 'requests per second per user (shared through --redis; else per process/worker)', default: 200, min: 1, max: 1_000_000}),
    'body-limit': Flags.integer({description: 'largest request body in bytes', default: 16_384, min: 256, max: 64 * 1024 * 1024}),
  }

  async run(): Promise<{url: string; workers?: number}> {
    const {flags} = await this.parse(Serve)
    const config = this.config_(flags)
    if (config.devSecret && flags.host !== '127.0.0.1' && flags.host !== 'localhost') {
      this.warn('serving on a non-loopback address with the development token secret: set --secret or LIVEDROP_SECRET')
    }
    const settings = {secret: config.secret, rateLimitPerSecond: flags['rate-limit'], rateLimitBurst: flags['rate-limit'] * 2, bodyLimit: flags['body-limit']}
    if (flags.workers > 1) return this.serveCluster(flags, config, settings)

    const engine = await createEngine({
      db: config.db,
      redisUrl: config.redisUrl,
      cache: config.cache,
      migrate: config.db.kind === 'embedded',
      fanoutWorkers: flags['workers-fanout'],
    })
    const {app} = await buildServer(engine, {...settings, rateLimitShared: true})
    let url: string
    try {
      url = await app.listen({port: flags.port, host: flags.host})
    } catch (err) {
      await app.close()
      await engine.close()
      throw listenError(err, flags.host, flags.port)
    }
    this.log(`livedrop serving ${engine.db.label} at ${url}`)
    await new Promise<void>((resolve) => {
      const shutdown = async (signal: string) => {
        this.note(`${signal}: finishing in-flight requests`)
        await app.close()
        await engine.close()
        resolve()
      }
      process.once('SIGTERM', () => void shutdown('SIGTERM'))
      process.once('SIGINT', () => void shutdown('SIGINT'))
    })
    return {url}
  }

  /** --workers N: this process is the primary; it serves nothing itself. */
  private async serveCluster(
    flags: {workers: number; port: number; host: string; 'workers-fanout': number},
    config: ReturnType<Serve['config_']>,
    settings: {secret: string; rateLimitPerSecond: number; rateLimitBurst: number; bodyLimit: number},
  ): Promise<{url: string; workers: number}> {
    const primary = await runServePrimary(
      {...settings, workers: flags.workers, db: config.db, redisUrl: config.redisUrl, cache: config.cache, fanoutWorkers: flags['workers-fanout'], port: flags.port, host: flags.host},
      {log: (line) => this.note(line)},
    )
    this.log(`livedrop serving ${primary.label} at ${primary.url} with ${flags.workers} workers (pids ${primary.workers().map((w) => w.pid).join(', ')})`)
    let signals = 0
    const onSignal = (signal: string) => {
      if (++signals === 1) {
        this.note(`${signal}: draining the workers (finishing in-flight requests); send it again to stop at once`)
        primary.drain()
      } else {
        this.note(`${signal} again: killing the workers`)
        primary.force()
      }
    }
    const onTerm = () => onSignal('SIGTERM')
    const onInt = () => onSignal('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
    const {code, error} = await primary.done
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onInt)
    if (error) throw new RelayedError(error)
    if (code !== 0) this.exit(code)
    return {url: primary.url, workers: flags.workers}
  }
}
