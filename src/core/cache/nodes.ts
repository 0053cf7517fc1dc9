import {Cluster, Redis} from 'ioredis'
import {LRUCache} from 'lru-cache'
import {UsageError, redactUrl} from '../errors.js'
import {scanKeys} from '../redis.js'
import {HashRing, DEFAULT_VNODES} from './ring.js'

/** Where cached entries live, parsed from the `cache` setting (--cache / LIVEDROP_CACHE). */
export type CacheSpec =
  | {kind: 'memory'; nodes: number}
  | {kind: 'redis'; urls: string[]}
  | {kind: 'redis-cluster'; seeds: Array<{host: string; port: number}>}

/**
 * `memory` (one in-process node), `memory:N` (N in-process nodes on a ring),
 * `redis://h:6379,redis://h:6380` (standalone servers on a ring),
 * `redis-cluster://h:7000[,h:7001]` (Redis Cluster seeds; its slots shard, no ring on top).
 */
export function parseCacheSpec(spec: string, field = '--cache'): CacheSpec {
  const s = spec.trim()
  const memory = /^memory(?::(\d+))?$/.exec(s)
  if (memory) {
    const nodes = memory[1] === undefined ? 1 : Number(memory[1])
    if (nodes < 1 || nodes > 64) throw new UsageError(field, `memory:N needs 1 ≤ N ≤ 64, got ${nodes}`)
    return {kind: 'memory', nodes}
  }
  if (s.startsWith('redis-cluster://')) {
    const seeds = s
      .slice('redis-cluster://'.length)
      .split(',')
      .map((hp) => hp.trim().replace(/^redis-cluster:\/\//, ''))
      .map((hp) => {
        const m = /^([^:/,]+):(\d{1,5})\/?$/.exec(hp)
        if (!m) throw new UsageError(field, `expected redis-cluster://host:port[,host:port], got ${redactUrl(s)}`, {hint: 'Example: --cache redis-cluster://127.0.0.1:7000'})
        return {host: m[1], port: Number(m[2])}
      })
    return {kind: 'redis-cluster', seeds}
  }
  const urls = s.split(',').map((u) => u.trim())
  if (urls.length > 0 && urls.every((u) => /^rediss?:\/\/[^/,]+/.test(u))) {
    for (const u of urls) {
      try {
        new URL(u)
      } catch {
        throw new UsageError(field, `not a valid URL: ${redactUrl(u)}`)
      }
    }
    if (new Set(urls).size !== urls.length) throw new UsageError(field, 'lists the same Redis node twice')
    return {kind: 'redis', urls}
  }
  throw new UsageError(field, `unknown cache nodes ${redactUrl(s)}`, {
    hint: 'Use memory, memory:4, redis://h:6379,redis://h:6380 or redis-cluster://h:7000.',
  })
}

export interface NodeInfo {
  id: string
  up: boolean
  /** Entries under the cache's prefix (Redis: counted by SCAN). */
  keys: number
  usedMemoryBytes?: number
  /** Redis server-wide keyspace hits/misses since its start (all clients). */
  keyspaceHits?: number
  keyspaceMisses?: number
  error?: string
}

/** One place entries live. Errors and timeouts reject; the read-through cache turns them into fallbacks. */
export interface CacheNode {
  readonly id: string
  get(key: string): Promise<string | null>
  set(key: string, value: string, ttlMs: number): Promise<void>
  del(keys: string[]): Promise<void>
  /** Deletes every entry under prefix (used after the node missed invalidations). */
  purge(prefix: string): Promise<number>
  info(prefix: string): Promise<NodeInfo>
  /** Redis only: adds to the fields of a hash (the cache's shared counters). */
  addCounters?(key: string, deltas: Array<readonly [string, number]>): Promise<void>
  /** Redis only: reads such a hash. */
  readCounters?(key: string): Promise<Record<string, number>>
  close(): Promise<void>
}

/** Redis connections carrying invalidations between processes. */
export interface PubSub {
  publish(channel: string, message: string): Promise<void>
  /** Subscribes; returns the unsubscribe. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>
}

export interface CacheNodes {
  readonly kind: CacheSpec['kind']
  readonly nodes: readonly CacheNode[]
  /**
   * Nodes for a key, in failover order: the ring's distinct successors (all of them), or for a
   * cluster the cluster itself (its slots choose the server).
   */
  route(key: string): CacheNode[]
  readonly pubsub?: PubSub
  close(): Promise<void>
}

export interface CacheNodesOptions {
  /** A Redis command not answered in this time fails (the read falls through). Default 250 ms. */
  commandTimeoutMs?: number
  /** Connecting gives up after this; the node is then skipped until it answers. Default 1000 ms. */
  connectTimeoutMs?: number
  /** Entries per in-process node. Default 100,000. */
  maxEntries?: number
  /** Virtual nodes per node on the ring. Default 160. */
  vnodes?: number
}

class MemoryNode implements CacheNode {
  private readonly lru: LRUCache<string, string>
  constructor(readonly id: string, maxEntries: number) {
    this.lru = new LRUCache<string, string>({max: maxEntries, ttl: 60_000, ttlAutopurge: false})
  }
  async get(key: string) {
    return this.lru.get(key) ?? null
  }
  async set(key: string, value: string, ttlMs: number) {
    this.lru.set(key, value, {ttl: ttlMs})
  }
  async del(keys: string[]) {
    for (const k of keys) this.lru.delete(k)
  }
  async purge(prefix: string) {
    let n = 0
    for (const k of [...this.lru.keys()]) if (k.startsWith(prefix) && this.lru.delete(k)) n++
    return n
  }
  async info(prefix: string): Promise<NodeInfo> {
    let keys = 0
    for (const k of this.lru.keys()) if (k.startsWith(prefix)) keys++
    return {id: this.id, up: true, keys}
  }
  async close() {
    this.lru.clear()
  }
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

async function serverInfo(client: Redis, prefix: string): Promise<Omit<NodeInfo, 'id' | 'up'>> {
  let keys = 0
  await scanKeys(client, prefix, async (k) => void (keys += k.length))
  const info = parseInfo(await client.info())
  return {keys, usedMemoryBytes: Number(info.used_memory), keyspaceHits: Number(info.keyspace_hits), keyspaceMisses: Number(info.keyspace_misses)}
}

async function addCounters(client: Redis | Cluster, key: string, deltas: Array<readonly [string, number]>): Promise<void> {
  const multi = client.multi()
  for (const [field, d] of deltas) multi.hincrby(key, field, d)
  await multi.exec()
}

async function readCounters(client: Redis | Cluster, key: string): Promise<Record<string, number>> {
  const raw = await client.hgetall(key)
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]))
}

class RedisNode implements CacheNode {
  constructor(readonly id: string, readonly client: Redis) {}
  get(key: string) {
    return this.client.get(key)
  }
  async set(key: string, value: string, ttlMs: number) {
    await this.client.set(key, value, 'PX', Math.max(1, Math.round(ttlMs)))
  }
  async del(keys: string[]) {
    if (keys.length) await this.client.unlink(...keys)
  }
  addCounters(key: string, deltas: Array<readonly [string, number]>) {
    return addCounters(this.client, key, deltas)
  }
  readCounters(key: string) {
    return readCounters(this.client, key)
  }
  async purge(prefix: string) {
    let n = 0
    await scanKeys(this.client, prefix, async (keys) => void (n += await this.client.unlink(...keys)))
    return n
  }
  async info(prefix: string): Promise<NodeInfo> {
    try {
      return {id: this.id, up: true, ...(await serverInfo(this.client, prefix))}
    } catch (err) {
      return {id: this.id, up: false, keys: 0, error: (err as Error).message}
    }
  }
  async close() {
    this.client.disconnect()
  }
}

class ClusterNode implements CacheNode {
  constructor(readonly id: string, readonly cluster: Cluster) {}
  get(key: string) {
    return this.cluster.get(key)
  }
  async set(key: string, value: string, ttlMs: number) {
    await this.cluster.set(key, value, 'PX', Math.max(1, Math.round(ttlMs)))
  }
  async del(keys: string[]) {
    // keys hash to different slots: one command each (a multi-key UNLINK would be CROSSSLOT)
    await Promise.all(keys.map((k) => this.cluster.unlink(k)))
  }
  addCounters(key: string, deltas: Array<readonly [string, number]>) {
    return addCounters(this.cluster, key, deltas)
  }
  readCounters(key: string) {
    return readCounters(this.cluster, key)
  }
  async purge(prefix: string) {
    let n = 0
    for (const master of this.cluster.nodes('master')) {
      await scanKeys(master, prefix, async (keys) => {
        for (const k of keys) n += await master.unlink(k)
      })
    }
    return n
  }
  async info(prefix: string): Promise<NodeInfo> {
    // the cluster as one node; per-master detail is in `masters`
    const masters = await this.masters(prefix)
    const sum = (f: 'keys' | 'usedMemoryBytes' | 'keyspaceHits' | 'keyspaceMisses') => masters.reduce((a, m) => a + (m[f] ?? 0), 0)
    return {id: this.id, up: masters.every((m) => m.up), keys: sum('keys'), usedMemoryBytes: sum('usedMemoryBytes'), keyspaceHits: sum('keyspaceHits'), keyspaceMisses: sum('keyspaceMisses')}
  }
  async masters(prefix: string): Promise<NodeInfo[]> {
    return Promise.all(
      this.cluster.nodes('master').map(async (m) => {
        const id = `${m.options.host}:${m.options.port}`
        try {
          return {id, up: true, ...(await serverInfo(m, prefix))}
        } catch (err) {
          return {id, up: false, keys: 0, error: (err as Error).message}
        }
      }),
    )
  }
  async close() {
    this.cluster.disconnect()
  }
}

/** Resolves when the client is ready or after timeoutMs (a down node is skipped, not fatal). */
function settle(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      client.off('ready', done)
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    client.once('ready', done)
  })
}

/** Opens the cache nodes a spec names. Unreachable Redis nodes do not fail this: reads skip them. */
export async function createCacheNodes(spec: string | CacheSpec, options: CacheNodesOptions = {}): Promise<CacheNodes> {
  const parsed = typeof spec === 'string' ? parseCacheSpec(spec) : spec
  const commandTimeout = options.commandTimeoutMs ?? 250
  const connectTimeout = options.connectTimeoutMs ?? 1000
  const vnodes = options.vnodes ?? DEFAULT_VNODES

  if (parsed.kind === 'memory') {
    const nodes = Array.from({length: parsed.nodes}, (_, i) => new MemoryNode(`memory-${i}`, options.maxEntries ?? 100_000))
    return ringed('memory', nodes, vnodes)
  }

  // fail fast instead of queueing while disconnected: a down node must cost a fallback, not a wait
  const redisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    connectTimeout,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
  }

  if (parsed.kind === 'redis') {
    const clients = parsed.urls.map((url) => {
      const c = new Redis(url, redisOptions)
      c.on('error', () => {})
      return c
    })
    await Promise.all(clients.map((c) => settle(c, connectTimeout)))
    const nodes = clients.map((c, i) => new RedisNode(redactUrl(parsed.urls[i]), c))
    const subscribers: Redis[] = []
    const pubsub: PubSub = {
      async publish(channel, message) {
        // on every node, so one node being down loses no invalidation; receivers de-duplicate
        await Promise.all(clients.map((c) => c.publish(channel, message).catch(() => 0)))
      },
      async subscribe(channel, onMessage) {
        const subs = clients.map((c) => {
          // the subscriber queues while (re)connecting and re-subscribes after a reconnect
          const s = c.duplicate({enableOfflineQueue: true, commandTimeout: undefined})
          s.on('error', () => {})
          s.on('message', (ch: string, msg: string) => ch === channel && onMessage(msg))
          return s
        })
        subscribers.push(...subs)
        await Promise.all(subs.map((s) => Promise.race([s.subscribe(channel), new Promise((r) => setTimeout(r, connectTimeout))]).catch(() => {})))
        return async () => {
          for (const s of subs) s.disconnect()
        }
      },
    }
    const set = ringed('redis', nodes, vnodes, pubsub)
    return {...set, close: async () => (subscribers.forEach((s) => s.disconnect()), set.close())}
  }

  const cluster = new Cluster(parsed.seeds, {
    enableOfflineQueue: false,
    redisOptions: {commandTimeout, connectTimeout, maxRetriesPerRequest: 0},
    clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
  })
  cluster.on('error', () => {})
  await settle(cluster, connectTimeout * 3)
  const node = new ClusterNode(`redis-cluster://${parsed.seeds.map((s) => `${s.host}:${s.port}`).join(',')}`, cluster)
  const subscribers: Cluster[] = []
  return {
    kind: 'redis-cluster',
    nodes: [node],
    route: () => [node],
    pubsub: {
      async publish(channel, message) {
        await cluster.publish(channel, message).catch(() => 0)
      },
      async subscribe(channel, onMessage) {
        // PUBLISH in a cluster reaches every node, so one subscription anywhere hears all
        const s = cluster.duplicate([], {enableOfflineQueue: true})
        s.on('error', () => {})
        s.on('message', (ch: string, msg: string) => ch === channel && onMessage(msg))
        subscribers.push(s)
        await Promise.race([s.subscribe(channel), new Promise((r) => setTimeout(r, connectTimeout * 3))]).catch(() => {})
        return async () => s.disconnect()
      },
    },
    async close() {
      subscribers.forEach((s) => s.disconnect())
      await node.close()
    },
  }
}

function ringed(kind: 'memory' | 'redis', nodes: CacheNode[], vnodes: number, pubsub?: PubSub): CacheNodes {
  const ring = new HashRing(nodes.map((n) => n.id), {vnodes})
  const byName = new Map(ring.nodes.map((name) => [name, nodes.find((n) => n.id === name)!]))
  const single = nodes.length === 1 ? [nodes[0]] : null
  const routes = new Map<string, CacheNode[]>()
  return {
    kind,
    nodes,
    route(key) {
      if (single) return single
      // the ring never changes here, so a key's route is memoised (bounded: cleared when large)
      let route = routes.get(key)
      if (!route) {
        if (routes.size >= 50_000) routes.clear()
        route = ring.successors(key, nodes.length).map((name) => byName.get(name)!)
        routes.set(key, route)
      }
      return route
    },
    pubsub,
    async close() {
      await Promise.all(nodes.map((n) => n.close()))
    },
  }
}
