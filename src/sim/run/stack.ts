import {request} from 'undici'
import {createDrop, endDrop, startDrop} from '../../core/catalog/drops.js'
import {datasetBounds, datasetFingerprint, seed, seededFingerprint} from '../../core/catalog/seed.js'
import {backendPid, type PostgresDb} from '../../core/db/index.js'
import {holdsData} from '../../core/db/migrate.js'
import type {DbTarget} from '../../core/db/types.js'
import {createEngine, type Engine} from '../../core/engine.js'
import {SecretRejectedError, UsageError, redactUrl, throwUsageErrors} from '../../core/errors.js'
import {startRedisServer, type RedisServer} from '../../core/redis-server.js'
import {buildServer} from '../../server/app.js'
import {startServeCluster, type ServeCluster} from '../../server/cluster.js'
import {mintToken} from '../../core/tokens.js'
import {checkFaultsPossible, type FaultContext} from '../faults/index.js'
import {parentPid} from '../metrics/cpu.js'
import type {TrafficWorld} from '../traffic/builders.js'
import type {Scenario} from '../scenario/schema.js'
import {scenarioDurationMs} from '../scenario/schema.js'

export type Stage = 'prepare' | 'seed' | 'run' | 'verify'

/** What the stack needs: the database, the cache nodes, the secret, and a deployment to drive (else it serves in-process). */
export interface StackOptions {
  scenario: Scenario
  db: DbTarget
  /** Drive this running deployment; otherwise the engine serves in-process on an ephemeral port. */
  target?: string | null
  redisUrl?: string | null
  /** Cache nodes of the in-process engine. Default: the scenario's engine.cache. */
  cache?: string
  secret: string
  /** Wipe a non-empty database and seed afresh; otherwise an already seeded one is reused. */
  reset?: boolean
  /** The database is the scenario's own (the embedded default): data a dead seed left is replaced. */
  ownDatabase?: boolean
}

/** An engine on a seeded database, and the URL the generator drives. */
export interface Stack {
  engine: Engine
  target: string
  /** The token secret the target serves with. */
  secret: string
  /** The ids of the prepared data (dropId is per drop: see createRunDrop). */
  data: Omit<TrafficWorld, 'dropId' | 'secret'> & {celebrityProduct: number}
  /** Whose CPU is the server's: this process (in-process), serve processes, or null (a deployment elsewhere: not measured). */
  serverProcesses: 'self' | number[] | null
  /** The database server's postmaster when it runs on this machine (its process tree is the database's CPU), else null. */
  databasePid: number | null
  /** What faults act on: the serve workers, the Redis and cache nodes the run started, a connection of the stack's own. */
  faultTargets: Pick<FaultContext, 'cluster' | 'redis' | 'cacheNodes' | 'db'>
  /** The deployment's cache hit ratio (its /metrics) or the in-process engine's. */
  hitRatio(): Promise<number | null>
  close(): Promise<void>
}

// in-process the stack delivers notifications itself; a --target deployment runs its own workers
const IN_PROCESS_FANOUT_WORKERS = 2
// the generator is the only client: the per-user limit would throttle the scenario's own crowd
const UNLIMITED = 1e6
// a database on one of these runs on this machine, where /proc shows its processes' CPU
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', ''])
// a drop with no end in the scenario stays live this long after the run's phases
const OPEN_ENDED_DROP_MS = 3_600_000

/** Opens the engine, seeds or reuses the data, and serves it in-process unless a target is given. */
export async function openStack(o: StackOptions, stage: (s: Stage, detail: string) => void): Promise<Stack> {
  const s = o.scenario
  const closers: Array<() => Promise<unknown>> = []
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {})
  }
  const workers = o.target ? 0 : (s.engine.workers ?? 0)
  const cacheSpec = o.cache ?? s.engine.cache
  const localNodes = o.target ? 0 : localCacheNodes(cacheSpec)
  const localRedis = !o.target && !o.redisUrl && s.engine.redis === 'local'
  // a fault the run has nothing to cause it on is a usage error before anything starts
  throwUsageErrors(
    checkFaultsPossible(s.faults ?? [], {workers, localRedis, localCacheNodes: localNodes, postgres: workers > 0, durationMs: scenarioDurationMs(s)}),
  )
  try {
    // servers of the run's own, which faults may restart or stop: never the user's
    const redis = localRedis ? await startRedisServer() : null
    if (redis) closers.push(() => redis.stop())
    const cacheNodes: RedisServer[] = []
    for (let i = 0; i < localNodes; i++) {
      const node = await startRedisServer()
      closers.push(() => node.stop())
      cacheNodes.push(node)
    }
    const cache = localNodes ? cacheNodes.map((n) => n.url).join(',') : cacheSpec
    const redisUrl = redis?.url ?? o.redisUrl

    stage('prepare', 'opening the database')
    const engine = await createEngine({
      db: o.db,
      redisUrl,
      cache,
      migrate: true,
      // in-process the stack delivers notifications itself; serve workers and deployments run their own
      fanoutWorkers: o.target || workers ? 0 : IN_PROCESS_FANOUT_WORKERS,
    })
    closers.push(() => engine.close())
    const data = await prepareData(engine, o, stage)
    let target = o.target
    let cluster: ServeCluster | null = null
    if (target) await checkSecret(target, o.secret)
    else if (workers) {
      stage('prepare', `starting ${workers} serve workers`)
      cluster = await startServeCluster({workers, databaseUrl: (engine.db as PostgresDb).url, redisUrl, cache, secret: o.secret, rateLimitPerSecond: UNLIMITED, rateLimitBurst: UNLIMITED, log: false})
      closers.push(() => cluster!.close())
      target = cluster.url
    } else {
      const {app} = await buildServer(engine, {secret: o.secret, rateLimitPerSecond: UNLIMITED, rateLimitBurst: UNLIMITED, log: false})
      closers.push(() => app.close())
      target = await app.listen({port: 0, host: '127.0.0.1'})
    }
    const local = o.db.kind === 'embedded' || LOCAL_HOSTS.has(new URL(o.db.url).hostname)
    return {
      serverProcesses: o.target ? null : cluster ? [cluster.primaryPid] : 'self',
      databasePid: local ? parentPid(await backendPid(engine.db)) : null,
      engine,
      target,
      secret: o.secret,
      data,
      faultTargets: {cluster: cluster ?? undefined, redis: redis ?? undefined, cacheNodes, db: engine.db},
      hitRatio: async () => (o.target || cluster ? remoteHitRatio(target) : engine.catalog.stats().hitRatio),
      close: closeAll,
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}

/** `local-redis:N` asks for N redis-servers of the run's own as cache nodes (0 for any other spec). */
export function localCacheNodes(spec: string): number {
  const m = /^local-redis(?::(\d+))?$/.exec(spec.trim())
  return m ? Number(m[1] ?? 1) : 0
}

/** A new drop of the celebrity's product, opening drop.startOffset after `at` (the run's start). */
export async function createRunDrop(stack: Stack, s: Scenario, at = Date.now()): Promise<number> {
  const drop = await createDrop(stack.engine.deps, {
    creatorId: 1,
    productId: stack.data.celebrityProduct,
    stock: s.drop.stock,
    startsAt: new Date(at + s.drop.startOffset),
    endsAt: new Date(at + (s.drop.duration !== undefined ? s.drop.startOffset + s.drop.duration : scenarioDurationMs(s) + OPEN_ENDED_DROP_MS)),
    lowStockThreshold: s.drop.lowStock,
    strategy: s.engine.strategy,
    buckets: s.engine.buckets,
  })
  return drop.id
}

export {startDrop, endDrop}

/**
 * Reuses data this scenario's dataset already seeded (same fingerprint); seeds an empty database,
 * one whose own seed died half-way, or any with reset; reuses other data as it is.
 */
async function prepareData(engine: Engine, o: StackOptions, stage: (s: Stage, d: string) => void): Promise<Stack['data']> {
  const s = o.scenario
  const seeded = await seededFingerprint(engine.db)
  const fingerprint = datasetFingerprint(s.dataset)
  if (seeded === fingerprint && !o.reset) {
    stage('seed', `reusing the dataset seeded earlier (${fingerprint})`)
  } else if (o.reset || (o.ownDatabase && seeded === null) || !(await holdsData(engine.db))) {
    stage('seed', `${s.dataset.users} users, ${s.dataset.celebrityFollowers} celebrity followers`)
    await seed(engine.db, {...s.dataset, reset: true})
  }
  const {celebrityProduct, ...ids} = await datasetBounds(engine.db)
  if (celebrityProduct === null) throw new UsageError('--db', `creator 1 has no product to drop in ${engine.db.label}`, {hint: 'Seed with --products-per-creator ≥ 1, or add --reset.'})
  return {...ids, celebrityProduct}
}

/** The deployment's cache hit ratio from its /metrics (one process's view behind a balancer). */
async function remoteHitRatio(target: string): Promise<number | null> {
  try {
    const res = await request(`${target}/metrics`)
    const text = await res.body.text()
    const m = /^livedrop_cache_hit_ratio (\S+)$/m.exec(text)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** A deployment serving with another secret answers every token 401: say so before the run, naming --secret. */
async function checkSecret(target: string, secret: string): Promise<void> {
  // user 1 is creator 1, present in every prepared dataset
  const res = await request(`${target.replace(/\/$/, '')}/me/following?limit=1`, {headers: {authorization: `Bearer ${mintToken(1, secret)}`}})
  await res.body.dump()
  if (res.statusCode === 401) {
    throw new SecretRejectedError('--secret', `${redactUrl(target)} refused a token signed with this secret (GET /me/following answered 401)`, {
      hint: 'Pass the secret the deployment serves with (its --secret or LIVEDROP_SECRET).',
    })
  }
}
