import type {Redis} from 'ioredis'
import {createCatalogCache, type CatalogCache, type CatalogCacheOptions} from './cache/catalog-cache.js'
import {createCacheNodes, type CacheNodes} from './cache/nodes.js'
import {openDb} from './db/index.js'
import {assertMigrated, migrate} from './db/migrate.js'
import type {Db, DbTarget} from './db/types.js'
import {ChangeFeed} from './events.js'
import {startFanoutWorkers, type FanoutOptions, type FanoutWorkersHandle} from './fanout/index.js'
import {DEFAULT_REDIS_PREFIX, type EngineDeps} from './orders/deps.js'
import {warmOrderStatements} from './stock/index.js'
import {connectRedis, pingRedis} from './redis.js'

export interface EngineConfig {
  /** Where the data lives (see resolveConfig). */
  db: DbTarget
  /** Redis for the redis-gate strategy, cache invalidation and SSE across processes. Default none. */
  redisUrl?: string | null
  /** Cache nodes: `memory[:N]`, `redis://a,redis://b` (ring), `redis-cluster://h:7000`. Default 'memory'. */
  cache?: string
  /** Read-through cache settings (TTLs, near cache, hot keys). */
  cacheOptions?: Omit<CatalogCacheOptions, 'db' | 'nodes' | 'changes'>
  /** Key prefix for everything this engine keeps in Redis. Default 'livedrop:'. */
  redisPrefix?: string
  /** Migrate the schema on start (embedded use); otherwise require it migrated. Default false. */
  migrate?: boolean
  /** Fan-out workers to run in this process; 0 for none. Default 0. */
  fanoutWorkers?: number
  /** Further fan-out settings (page size, pull threshold, lease). */
  fanout?: Omit<FanoutOptions, 'workers' | 'signal'>
  /** Postgres pool size: every connection is opened at start. Default DEFAULT_POOL_SIZE. */
  poolSize?: number
}

/** Connections for a server: enough for its requests in flight without queueing on the pool. */
export const DEFAULT_POOL_SIZE = 20
/** Connections for a command making one engine call at a time (drop start, end…): opening 20 would cost more than the call. */
export const ONE_CALL_POOL_SIZE = 2

/** The wired drop engine: one database, optional Redis, the change feed, and the workers. */
export interface Engine {
  readonly db: Db
  readonly redis: Redis | null
  readonly changes: ChangeFeed
  /** Read-through cache for products, drops, stock and creator pages. */
  readonly catalog: CatalogCache
  /** What drops, orders and stock functions take. */
  readonly deps: EngineDeps
  /** Fan-out workers running in this process, if any. */
  readonly fanout: FanoutWorkersHandle | null
  /**
   * Reachability of the database, Redis and the cache nodes. Only the database makes the instance
   * unhealthy: with Redis down orders go straight to Postgres, and a cache node that is down
   * lets reads fall through to the next node or the database (both reported, as degraded).
   */
  health(): Promise<{ok: boolean; db: boolean; redis: boolean | null; cache: {nodes: number; up: number}}>
  close(): Promise<void>
}

export async function createEngine(config: EngineConfig): Promise<Engine> {
  const db = await openDb(config.db, {max: config.poolSize ?? DEFAULT_POOL_SIZE})
  let redis: Redis | null = null
  const changes = new ChangeFeed()
  let catalog: CatalogCache
  let nodes: CacheNodes
  try {
    if (config.migrate) await migrate(db)
    else await assertMigrated(db)
    await db.prewarm(warmOrderStatements)
    redis = config.redisUrl ? await connectRedis(config.redisUrl) : null
    nodes = await createCacheNodes(config.cache ?? 'memory')
    catalog = await createCatalogCache({db, nodes, changes, ...config.cacheOptions})
  } catch (err) {
    redis?.disconnect()
    await db.close()
    throw err
  }
  const deps: EngineDeps = {db, redis, redisPrefix: config.redisPrefix ?? DEFAULT_REDIS_PREFIX, changes}
  const fanout = config.fanoutWorkers ? startFanoutWorkers(db, {...config.fanout, workers: config.fanoutWorkers}) : null

  return {
    db,
    redis,
    changes,
    catalog,
    deps,
    fanout,
    async health() {
      const dbOk = await db.query('SELECT 1').then(
        () => true,
        () => false,
      )
      // Redis only accelerates the redis gate (orders go to Postgres without it): down is degraded, not unhealthy
      const redisOk = redis ? await pingRedis(redis) : null
      const cacheUp = await Promise.all(nodes.nodes.map((n) => n.get('livedrop:health').then(() => 1, () => 0)))
      return {ok: dbOk, db: dbOk, redis: redisOk, cache: {nodes: cacheUp.length, up: cacheUp.reduce<number>((a, b) => a + b, 0)}}
    },
    async close() {
      await fanout?.stop()
      await catalog.close()
      redis?.disconnect()
      await db.close()
    },
  }
}
