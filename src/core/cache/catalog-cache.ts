import {randomBytes} from 'node:crypto'
import {LRUCache} from 'lru-cache'
import type {Queryable} from '../db/types.js'
import type {ChangeEvent, ChangeFeed} from '../events.js'
import {getProduct, type Product} from '../catalog/products.js'
import {getCreatorPage, getDropStock, getDropView, type CreatorPage, type DropStock, type DropView} from '../catalog/browse.js'
import type {CacheNode, CacheNodes, NodeInfo} from './nodes.js'

export interface CatalogCacheOptions {
  db: Queryable
  /** From createCacheNodes; the cache closes them on close(). */
  nodes: CacheNodes
  /** In-process writers' changes; each one invalidates (and is published to other processes). */
  changes?: ChangeFeed
  /** Prefix of every key in the cache nodes. Default 'livedrop:cache:'. */
  prefix?: string
  /** TTL of product, drop and creator-page entries. Default 30,000 ms. */
  ttlMs?: number
  /** TTL of a drop's stock entry: how stale "N left" may be between important changes. Default 1,000 ms. */
  stockTtlMs?: number
  /** TTLs are multiplied by a random factor in [1 − jitter, 1] so entries do not expire together. Default 0.2. */
  ttlJitter?: number
  /** TTL of the per-process near cache: no read returns a replaced state after it. Default 1,000 ms; 0 = off. */
  nearTtlMs?: number
  /** Entries in the near cache. Default 10,000. */
  nearMax?: number
  /** Reads per second of one key in this process that make it hot (kept as replicas). Default 200. */
  hotThreshold?: number
  /** Copies of a hot key, on distinct nodes (capped at the node count). Default 3. */
  hotReplicas?: number
  /** After an error a node is skipped for this long. Default 1,000 ms. */
  downMs?: number
  /** Push counters into the Redis nodes this often, for `livedrop cache stats`. Default 1,000 ms; 0 = never. */
  statsFlushMs?: number
}

export interface CacheStats {
  /** Reads answered from a cache node or the near cache. */
  hits: number
  /** of which from the near cache */
  nearHits: number
  /** Reads that went to the database. */
  misses: number
  /** Reads that joined another read of the same key already in flight. */
  coalesced: number
  /** Node errors or timeouts that were skipped (the read went to another node or the database). */
  fallbacks: number
  /** Keys invalidated (local changes and ones heard from other processes). */
  invalidations: number
  /** hits ÷ (hits + misses); coalesced reads count as neither. */
  hitRatio: number
}

export interface CatalogCache {
  product(id: number): Promise<Product | null>
  /** The product as JSON text (what the API sends), kept beside the cached value: no serialization per read. */
  productJson(id: number): Promise<string | null>
  /**
   * The product's JSON text as UTF-8 bytes when this process's near cache holds it (counted as a
   * hit), else undefined and nothing counted (not there, being invalidated, or a cached "no such
   * product"): a synchronous answer for the server's fast path, which sends everything else the
   * long way. The bytes are made once per entry, not per read.
   */
  peekProductBody(id: number): Buffer | undefined
  /** The drop view with its stock from the short-lived stock entry. */
  drop(id: number): Promise<DropView | null>
  dropStock(id: number): Promise<DropStock | null>
  /** The drop's stock as JSON text, as productJson. */
  dropStockJson(id: number): Promise<string | null>
  creatorPage(creatorId: number): Promise<CreatorPage | null>
  /** Invalidates what a change makes stale, here and (with Redis) in every other process. */
  invalidate(event: ChangeEvent): Promise<void>
  /** Invalidates cache key names ('p:1', 'd:2', 's:2', 'c:3') everywhere. */
  invalidateKeys(keys: string[]): Promise<void>
  stats(): CacheStats
  /** Is this key currently treated as hot (replicated)? */
  isHot(key: string): boolean
  /** Stops listening, flushes counters and closes the nodes. */
  close(): Promise<void>
}

export const COUNTERS = ['hits', 'nearHits', 'misses', 'coalesced', 'fallbacks', 'invalidations'] as const
type Counter = (typeof COUNTERS)[number]

/** The key names: product, drop view, drop stock, creator page. */
export const cacheKeys = {
  product: (id: number) => `p:${id}`,
  drop: (id: number) => `d:${id}`,
  stock: (id: number) => `s:${id}`,
  creator: (id: number) => `c:${id}`,
}

/** What a change makes stale (product changes also reach the drops showing it; see invalidate). */
export function keysFor(event: ChangeEvent): string[] {
  if (event.type === 'product') return [cacheKeys.product(event.productId), cacheKeys.creator(event.creatorId)]
  // 'stock' (every order) is left to the stock TTL: invalidating per order would storm the nodes
  if (event.reason === 'stock') return []
  return [cacheKeys.drop(event.dropId), cacheKeys.stock(event.dropId), cacheKeys.creator(event.creatorId)]
}

export const DEFAULT_PREFIX = 'livedrop:cache:'

/** The Redis hash of counters shared by every process; outside the prefix so a purge keeps it. */
export const statsKeyFor = (prefix: string) => `${prefix.replace(/:$/, '')}-stats`

export interface SharedCacheStats {
  /** Counters summed over every process that used these nodes (flushed each second). */
  counters: CacheStats
  nodes: NodeInfo[]
}

/**
 * What `livedrop cache stats` shows for Redis nodes: the counters every cache instance pushes
 * into them (summed over nodes), and per node the entries under the prefix, memory, and the
 * server's own keyspace hits/misses. In-process nodes have nothing to read from outside.
 */
export async function readCacheStats(nodes: CacheNodes, prefix = DEFAULT_PREFIX): Promise<SharedCacheStats> {
  const sums: Record<Counter, number> = {hits: 0, nearHits: 0, misses: 0, coalesced: 0, fallbacks: 0, invalidations: 0}
  const infos = await Promise.all(
    nodes.nodes.map(async (node) => {
      const info = await node.info(prefix)
      if (info.up && node.readCounters) {
        const c = await node.readCounters(statsKeyFor(prefix)).catch(() => ({}) as Record<string, number>)
        for (const k of COUNTERS) sums[k] += c[k] ?? 0
      }
      return info
    }),
  )
  const looked = sums.hits + sums.misses
  return {counters: {...sums, hitRatio: looked === 0 ? 0 : sums.hits / looked}, nodes: infos}
}

const DROPS_OF_PRODUCT = {name: 'cache.drops_of_product', text: 'SELECT id FROM drops WHERE product_id = $1'}

interface NodeState {
  downUntil: number
  /** An invalidation failed here: purge before trusting it again. */
  dirty: boolean
  purging: boolean
}

interface Near {
  v: unknown
  /** v as JSON text, made on the first read that wants text (the API answers with it as is). */
  j?: string
  /** j as UTF-8 bytes, made on the first read that wants bytes (the server's fast path). */
  b?: Buffer
}

/** Entries are stored in the nodes as {"v": value}: the value's JSON text is what lies between. */
const STORED_HEAD = '{"v":'

/**
 * Read-through cache of the catalog's read views over consistent-hashed nodes.
 *
 * A read: near cache (per process, ≤ nearTtlMs) → the key's node (a random replica when hot) →
 * on error the next node on the ring → the database; concurrent misses of one key share one
 * database read. An invalidation bumps the key's epoch (a load begun before it is not stored),
 * evicts the near cache synchronously, makes reads of the key bypass the nodes until the
 * deletes on every node (all replicas) are done, and is published to the other processes.
 */
export async function createCatalogCache(options: CatalogCacheOptions): Promise<CatalogCache> {
  const db = options.db
  const nodes = options.nodes
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const ttlMs = options.ttlMs ?? 30_000
  const stockTtlMs = options.stockTtlMs ?? 1000
  const jitter = options.ttlJitter ?? 0.2
  const nearTtlMs = options.nearTtlMs ?? 1000
  const hotThreshold = options.hotThreshold ?? 200
  const replicas = Math.max(1, Math.min(options.hotReplicas ?? 3, nodes.kind === 'redis-cluster' ? Infinity : nodes.nodes.length))
  const downMs = options.downMs ?? 1000
  const channel = `${prefix}invalidate`
  const instance = randomBytes(6).toString('hex')

  const counters: Record<Counter, number> = {hits: 0, nearHits: 0, misses: 0, coalesced: 0, fallbacks: 0, invalidations: 0}
  const flushed: Record<Counter, number> = {...counters}
  const near = new LRUCache<string, Near>({max: options.nearMax ?? 10_000, ttl: Math.max(1, nearTtlMs)})
  const inflight = new Map<string, Promise<unknown>>()
  const epochs = new Map<string, number>()
  const invalidating = new Map<string, number>()
  const state = new Map<CacheNode, NodeState>(nodes.nodes.map((n) => [n, {downUntil: 0, dirty: false, purging: false}]))

  // hot keys: reads per key in the current one-second window; hot = over the threshold last window
  let windowEnd = 0
  let counts = new Map<string, number>()
  let hot = new Set<string>()
  function countRead(key: string, now: number): void {
    if (now >= windowEnd) {
      hot = new Set([...counts].filter(([, n]) => n >= hotThreshold).map(([k]) => k))
      counts = new Map()
      windowEnd = now + 1000
    }
    const n = (counts.get(key) ?? 0) + 1
    counts.set(key, n)
    // a key crossing the threshold mid-window is hot at once
    if (n === hotThreshold) hot.add(key)
  }

  const storeKey = (key: string, replica: number) => (replica === 0 ? prefix + key : `${prefix}${key}~${replica}`)
  const allStoreKeys = (key: string) => Array.from({length: replicas}, (_, r) => storeKey(key, r))
  const epochOf = (key: string) => epochs.get(key) ?? 0
  const jittered = (ttl: number) => ttl * (1 - jitter * Math.random())

  function usable(node: CacheNode, now: number): boolean {
    const s = state.get(node)!
    if (s.downUntil > now || s.purging) return false
    if (s.dirty) {
      // it missed an invalidation: wipe our entries there before reading from it again
      s.purging = true
      node
        .purge(prefix)
        .then(() => (s.dirty = false))
        .catch(() => (s.downUntil = Date.now() + downMs))
        .finally(() => (s.purging = false))
      return false
    }
    return true
  }

  function keepNear(key: string, value: unknown, ttl: number, json?: string): void {
    // nearTtlMs 0 turns the near cache off (an lru-cache ttl of 0 would mean "forever")
    if (nearTtlMs > 0) near.set(key, {v: value, j: json}, {ttl: Math.max(1, Math.min(nearTtlMs, ttl))})
  }

  function failed(node: CacheNode): void {
    counters.fallbacks++
    state.get(node)!.downUntil = Date.now() + downMs
  }

  async function fetch<T>(key: string, ttl: number, load: () => Promise<T | null>): Promise<T | null> {
    const epoch = epochOf(key)
    let target: {node: CacheNode; key: string} | undefined
    if (!invalidating.has(key)) {
      const now = Date.now()
      const route = nodes.route(key)
      // a hot key's replica r lives on the r-th distinct node clockwise (for a cluster, in another slot)
      const replica = hot.has(key) && replicas > 1 ? Math.floor(Math.random() * replicas) : 0
      const shift = nodes.kind === 'redis-cluster' ? 0 : replica % route.length
      const order = shift === 0 ? route : [...route.slice(shift), ...route.slice(0, shift)]
      let tries = 0
      for (const node of order) {
        if (tries === 2) break
        if (!usable(node, now)) continue
        tries++
        const k = storeKey(key, replica)
        try {
          const raw = await node.get(k)
          target = {node, key: k}
          if (raw !== null) {
            counters.hits++
            const value = (JSON.parse(raw) as Near).v as T | null
            // the stored text already holds the value's JSON: keep it for readJson
            const json = raw.startsWith(STORED_HEAD) && raw.endsWith('}') ? raw.slice(STORED_HEAD.length, -1) : undefined
            if (epoch === epochOf(key) && !invalidating.has(key)) keepNear(key, value, ttl, json)
            return value
          }
          break
        } catch {
          failed(node)
        }
      }
    }
    counters.misses++
    const value = await load()
    // an invalidation while loading means the value may predate the change: serve it, keep it nowhere
    if (epoch === epochOf(key) && !invalidating.has(key)) {
      keepNear(key, value, ttl)
      if (target) {
        const {node, key: k} = target
        node.set(k, JSON.stringify({v: value}), jittered(ttl)).catch(() => failed(node))
      }
    }
    return value
  }

  /** The near cache's entry for key, counted as a hit; undefined when the read must go further. */
  function nearHit(key: string): Near | undefined {
    countRead(key, Date.now())
    if (invalidating.has(key)) return undefined
    const hit = near.get(key)
    if (hit) {
      counters.hits++
      counters.nearHits++
    }
    return hit
  }

  function readFurther<T>(key: string, ttl: number, load: () => Promise<T | null>): Promise<T | null> {
    const pending = inflight.get(key)
    if (pending) {
      counters.coalesced++
      return pending as Promise<T | null>
    }
    const p = fetch(key, ttl, load).finally(() => {
      if (inflight.get(key) === p) inflight.delete(key)
    })
    inflight.set(key, p)
    return p
  }

  function read<T>(key: string, ttl: number, load: () => Promise<T | null>): Promise<T | null> {
    const hit = nearHit(key)
    return hit ? Promise.resolve(hit.v as T | null) : readFurther(key, ttl, load)
  }

  function peekBody(key: string): Buffer | undefined {
    if (invalidating.has(key)) return undefined
    const hit = near.get(key)
    if (hit === undefined || hit.v === null) return undefined
    countRead(key, Date.now())
    counters.hits++
    counters.nearHits++
    return (hit.b ??= Buffer.from((hit.j ??= JSON.stringify(hit.v))))
  }

  /** As read, as JSON text: a near hit serializes once per entry, not once per read. */
  async function readJson(key: string, ttl: number, load: () => Promise<unknown>): Promise<string | null> {
    const hit = nearHit(key)
    if (hit) return hit.v === null ? null : (hit.j ??= JSON.stringify(hit.v))
    const value = await readFurther(key, ttl, load)
    return value === null ? null : JSON.stringify(value)
  }

  let seq = 0
  async function invalidateKeys(keys: string[], publish = true): Promise<void> {
    if (keys.length === 0) return
    // synchronous part: from here on this process neither serves nor stores the old state
    for (const k of keys) {
      counters.invalidations++
      epochs.set(k, epochOf(k) + 1)
      near.delete(k)
      inflight.delete(k)
      invalidating.set(k, (invalidating.get(k) ?? 0) + 1)
    }
    try {
      const storeKeys = keys.flatMap(allStoreKeys)
      await Promise.all(
        nodes.nodes.map((node) =>
          node.del(storeKeys).catch(() => {
            // it may still hold the old entries: purge it before it is read again
            const s = state.get(node)!
            s.dirty = true
            failed(node)
          }),
        ),
      )
    } finally {
      for (const k of keys) {
        const n = invalidating.get(k)! - 1
        if (n === 0) invalidating.delete(k)
        else invalidating.set(k, n)
      }
    }
    if (publish && nodes.pubsub) await nodes.pubsub.publish(channel, JSON.stringify({id: `${instance}:${++seq}`, keys})).catch(() => {})
  }

  async function invalidate(event: ChangeEvent): Promise<void> {
    const direct = invalidateKeys(keysFor(event))
    if (event.type === 'product') {
      // drop views embed the product: find the drops showing it
      const {rows} = await db.query<{id: number}>(DROPS_OF_PRODUCT, [event.productId])
      await invalidateKeys(rows.map((r) => cacheKeys.drop(Number(r.id))))
    }
    await direct
  }

  // other processes' invalidations: each is heard once per node it was published on
  const heard = new LRUCache<string, true>({max: 10_000})
  let unsubscribe: (() => Promise<void>) | undefined
  if (nodes.pubsub) {
    unsubscribe = await nodes.pubsub.subscribe(channel, (message) => {
      let parsed: {id?: string; keys?: unknown}
      try {
        parsed = JSON.parse(message)
      } catch {
        return
      }
      if (typeof parsed.id !== 'string' || !Array.isArray(parsed.keys) || parsed.id.startsWith(`${instance}:`) || heard.has(parsed.id)) return
      heard.set(parsed.id, true)
      // delete on the nodes too: a load racing the writer may have stored the old state after its delete
      void invalidateKeys(parsed.keys.filter((k): k is string => typeof k === 'string'), false)
    })
  }
  const offChanges = options.changes?.on((event) => void invalidate(event).catch(() => {}))

  // counters into Redis, summed over processes by `livedrop cache stats`
  const statsKey = statsKeyFor(prefix)
  async function flushStats(): Promise<void> {
    const delta = COUNTERS.map((c) => [c, counters[c] - flushed[c]] as const).filter(([, d]) => d > 0)
    if (delta.length === 0) return
    const now = Date.now()
    // the first node that is up; `cache stats` sums the hash over all nodes, so any node will do
    const node = nodes.nodes.find((n) => state.get(n)!.downUntil <= now && n.addCounters)
    if (!node) return
    await node.addCounters!(statsKey, delta)
    for (const [c, d] of delta) flushed[c] += d
  }
  const flushMs = options.statsFlushMs ?? 1000
  const flushTimer = nodes.kind !== 'memory' && flushMs > 0 ? setInterval(() => void flushStats().catch(() => {}), flushMs) : undefined
  flushTimer?.unref()

  return {
    product: (id) => read(cacheKeys.product(id), ttlMs, () => getProduct(db, id)),
    productJson: (id) => readJson(cacheKeys.product(id), ttlMs, () => getProduct(db, id)),
    peekProductBody: (id) => peekBody(cacheKeys.product(id)),
    async drop(id) {
      const view = await read(cacheKeys.drop(id), ttlMs, () => getDropView(db, id))
      if (!view) return null
      const stock = await read(cacheKeys.stock(id), stockTtlMs, () => getDropStock(db, id))
      return stock ? {...view, ...stock} : view
    },
    dropStock: (id) => read(cacheKeys.stock(id), stockTtlMs, () => getDropStock(db, id)),
    dropStockJson: (id) => readJson(cacheKeys.stock(id), stockTtlMs, () => getDropStock(db, id)),
    creatorPage: (id) => read(cacheKeys.creator(id), ttlMs, () => getCreatorPage(db, id)),
    invalidate,
    invalidateKeys: (keys) => invalidateKeys(keys),
    stats() {
      const looked = counters.hits + counters.misses
      return {...counters, hitRatio: looked === 0 ? 0 : counters.hits / looked}
    },
    isHot: (key) => hot.has(key),
    async close() {
      offChanges?.()
      if (flushTimer) clearInterval(flushTimer)
      await flushStats().catch(() => {})
      await unsubscribe?.()
      await nodes.close()
    },
  }
}
