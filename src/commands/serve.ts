import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../cli/base-command.js'
import {createEngine} from '../core/engine.js'
import {AddressInUseError, AddressNotAvailableError, UsageError} from '../core/errors.js'
import {buildServer} from '../server/app.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve the drop engine over HTTP (JSON API, SSE events, /metrics)'
  static override description = `Runs until SIGTERM or SIGINT, then stops accepting, finishes in-flight requests and closes pools.
Several serve processes on the same Postgres (and Redis) behave as one: give them the same --secret.
On the embedded database the schema is migrated on start; on Postgres run \`livedrop db migrate\` first.`
  static override examples = [
    '<%= config.bin %> serve --port 8080',
    '<%= config.bin %> serve --db postgres://root@127.0.0.1:5432/test --redis redis://127.0.0.1:6379 --cache redis://127.0.0.1:6379 --workers-fanout 2',
    'LIVEDROP_SECRET=change-me <%= config.bin %> serve --host 0.0.0.0 --port 8080',
  ]
  static override flags = {
    ...dbFlags,
    port: Flags.integer({description: 'TCP port (0 picks a free one)', default: 8080, min: 0, max: 65535}),
    host: Flags.string({description: 'address to bind', default: '127.0.0.1'}),
    redis: Flags.string({description: 'Redis for the redis-gate strategy, invalidation and SSE across processes [env: REDIS_URL]'}),
    cache: Flags.string({description: 'cache nodes: memory[:N], redis://a,redis://b, redis-cluster://h:7000 [env: LIVEDROP_CACHE]'}),
    'workers-fanout': Flags.integer({description: 'fan-out workers in this process (0: none)', default: 1, min: 0, max: 256}),
    secret: Flags.string({description: 'token signing secret [env: LIVEDROP_SECRET]'}),
    'rate-limit': Flags.integer({description: 'requests per second per user', default: 200, min: 1, max: 1_000_000}),
    'body-limit': Flags.integer({description: 'largest request body in bytes', default: 16_384, min: 256, max: 64 * 1024 * 1024}),
  }

  async run(): Promise<{url: string}> {
    const {flags} = await this.parse(Serve)
    const config = this.config_(flags)
    if (config.devSecret && flags.host !== '127.0.0.1' && flags.host !== 'localhost') {
      this.warn('serving on a non-loopback address with the development token secret: set --secret or LIVEDROP_SECRET')
    }
    const engine = await createEngine({
      db: config.db,
      redisUrl: config.redisUrl,
      cache: config.cache,
      migrate: config.db.kind === 'embedded',
      fanoutWorkers: flags['workers-fanout'],
    })
    const {app} = await buildServer(engine, {secret: config.secret, rateLimitPerSecond: flags['rate-limit'], rateLimitBurst: flags['rate-limit'] * 2, bodyLimit: flags['body-limit']})
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
}

/** Why listening failed, by errno: a port in use or an address not on this machine is a flag to change. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') {
    return new AddressInUseError('--port', `${host}:${port} is already in use`, {hint: 'Pick another --port (0 picks a free one), or stop the process listening there (`ss -ltnp` shows it).', cause: err})
  }
  if (code === 'EACCES') return new UsageError('--port', `port ${port} needs privileges this process does not have`, {hint: 'Use a port above 1023, e.g. --port 8080.', cause: err})
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new AddressNotAvailableError('--host', `${host} is not an address of this machine`, {
      hint: 'Use 127.0.0.1 (this machine only), 0.0.0.0 (every interface), or an address `ip -brief addr` lists.',
      cause: err,
    })
  }
  return err
}
