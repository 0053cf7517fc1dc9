import {Redis} from 'ioredis'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {startRedis, type RedisServer} from './cache-servers.js'
import {ChangeFeed} from '../src/core/events.js'
import {createProduct, getProduct, updateProduct} from '../src/core/catalog/products.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {cacheKeys, createCatalogCache, readCacheStats, type CatalogCache} from '../src/core/cache/catalog-cache.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// two "processes": independent cache objects, each with its own connections to the same two nodes
describe('read-through cache on two real Redis nodes', () => {
  const t = usePostgres()
  let servers: RedisServer[] = []
  let spec = ''
  const prefix = `ldt-${process.pid}:`
  const productIds: number[] = []
  let changesA: ChangeFeed
  let a: CatalogCache
  let b: CatalogCache
  /** counters of short-lived caches on the same prefix, which also reach Redis */
  const others = {hits: 0, misses: 0}

  beforeAll(async () => {
    servers = await Promise.all([startRedis(), startRedis()])
    spec = servers.map((s) => s.url).join(',')
    await t.db.query(`INSERT INTO users (id, handle, display_name) VALUES (1, 'celeb', 'Celeb')`)
    await t.db.query(`INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'Celeb', true)`)
    for (let i = 0; i < 200; i++) productIds.push((await createProduct({db: t.db}, {creatorId: 1, title: `P${i}`, priceCents: i})).id)
    changesA = new ChangeFeed()
    a = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec, {connectTimeoutMs: 500}), changes: changesA, prefix, statsFlushMs: 100})
    // b's near cache outlives every wait below: only pub/sub can make b see a change in time
    b = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec, {connectTimeoutMs: 500}), prefix, statsFlushMs: 100, nearTtlMs: 5000})
  })

  afterAll(async () => {
    await a?.close()
    await b?.close()
    await Promise.all(servers.map((s) => s.kill()))
  })

  it('spreads entries over both nodes and serves the other process from them', async () => {
    for (const id of productIds) await a.product(id)
    const counts = await Promise.all(
      servers.map(async (s) => {
        const r = new Redis(s.url)
        const n = (await r.keys(`${prefix}p:*`)).length
        r.disconnect()
        return n
      }),
    )
    expect(counts[0] + counts[1]).toBe(200)
    expect(Math.min(...counts)).toBeGreaterThan(50)
    for (const id of productIds) expect(await b.product(id)).toEqual(await getProduct(t.db, id))
    expect(b.stats()).toMatchObject({misses: 0, hits: 200})
  })

  it('an edit in one process reaches the other through pub/sub, long before its near TTL', async () => {
    const id = productIds[0]
    expect((await b.product(id))!.title).toBe('P0')
    await updateProduct({db: t.db, changes: changesA}, id, {title: 'P0 edited'})
    const started = Date.now()
    let seen = ''
    while (Date.now() - started < 2000) {
      seen = (await b.product(id))!.title
      if (seen === 'P0 edited') break
      await sleep(5)
    }
    expect(seen).toBe('P0 edited')
    // b's near TTL is 5 s; pub/sub made it far quicker
    expect(Date.now() - started).toBeLessThan(2000)
    for (let i = 0; i < 20; i++) expect((await b.product(id))!.title).toBe('P0 edited')
  })

  it('under concurrent reads and repeated edits, no read after the last invalidation returns an old state', async () => {
    const ids = productIds.slice(10, 20)
    let stop = false
    const readers = [a, b].map(async (cache) => {
      while (!stop) {
        await Promise.all(ids.map((id) => cache.product(id)))
        // near-cache hits resolve without I/O: yield so timers (and pub/sub) run
        await new Promise((r) => setImmediate(r))
      }
    })
    for (let round = 1; round <= 15; round++) {
      for (const id of ids) await updateProduct({db: t.db, changes: changesA}, id, {priceCents: 1000 + round})
      await sleep(10)
    }
    // once pub/sub delivered, both processes agree with the database (b's near TTL is 5 s)
    await sleep(500)
    stop = true
    await Promise.all(readers)
    for (const cache of [a, b]) for (const id of ids) expect((await cache.product(id))!.priceCents).toBe(1015)
    // nothing stale left on the nodes either
    for (const s of servers) {
      const r = new Redis(s.url)
      for (const id of ids) {
        const raw = await r.get(`${prefix}${cacheKeys.product(id)}`)
        if (raw !== null) expect(JSON.parse(raw).v.priceCents).toBe(1015)
      }
      r.disconnect()
    }
  })

  it('sold out in one process is seen by the other at once (pub/sub), not after the TTL', async () => {
    const {rows} = await t.db.query<{id: number}>(
      `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, status)
       VALUES ($1, 1, now(), now() + interval '1 hour', 5, 5, 'live') RETURNING id`,
      [productIds[1]],
    )
    const dropId = rows[0].id
    expect((await b.drop(dropId))!.soldOut).toBe(false)
    await t.db.query(`UPDATE drops SET available = 0, status = 'sold_out' WHERE id = $1`, [dropId])
    changesA.emit({type: 'drop', dropId, productId: productIds[1], creatorId: 1, status: 'sold_out', reason: 'sold_out'})
    expect((await a.drop(dropId))!.soldOut).toBe(true)
    const started = Date.now()
    while (!(await b.drop(dropId))!.soldOut && Date.now() - started < 2000) await sleep(2)
    expect((await b.drop(dropId))!.soldOut).toBe(true)
    // b's stock entry lives 1 s and its near cache 5 s: only pub/sub is this quick
    expect(Date.now() - started).toBeLessThan(900)
  })

  it('keeps a celebrity key as replicas on both nodes and removes every copy on invalidation', async () => {
    const hotCache = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec), prefix, nearTtlMs: 0, hotThreshold: 10, hotReplicas: 2})
    const id = productIds[2]
    for (let i = 0; i < 200; i++) await hotCache.product(id)
    expect(hotCache.isHot(cacheKeys.product(id))).toBe(true)
    const holders = async () =>
      Promise.all(
        servers.map(async (s) => {
          const r = new Redis(s.url)
          const key = `${prefix}${cacheKeys.product(id)}`
          const n = (await r.exists(key)) + (await r.exists(`${key}~1`))
          r.disconnect()
          return n
        }),
      )
    expect(await holders()).toEqual([1, 1])
    await updateProduct({db: t.db, changes: changesA}, id, {title: 'hot edited'})
    await sleep(100)
    expect(await holders()).toEqual([0, 0])
    expect((await hotCache.product(id))!.title).toBe('hot edited')
    await hotCache.close()
    others.hits += hotCache.stats().hits
    others.misses += hotCache.stats().misses
  })

  it('pushes counters into Redis for `cache stats`', async () => {
    const nodes = await createCacheNodes(spec)
    const local = [a.stats(), b.stats()]
    const want = local[0].hits + local[1].hits + others.hits
    // counters are flushed every 100 ms; wait (bounded) for the last flush under a loaded machine
    let shared = await readCacheStats(nodes, prefix)
    for (const until = Date.now() + 3000; shared.counters.hits !== want && Date.now() < until; ) {
      await sleep(100)
      shared = await readCacheStats(nodes, prefix)
    }
    await nodes.close()
    // both processes' counters (and the closed hot-key cache's), summed over the nodes
    expect(shared.counters.misses).toBe(local[0].misses + local[1].misses + others.misses)
    expect(shared.counters.hits).toBe(local[0].hits + local[1].hits + others.hits)
    expect(shared.counters.hitRatio).toBeCloseTo(shared.counters.hits / (shared.counters.hits + shared.counters.misses), 9)
    expect(shared.nodes.map((n) => n.up)).toEqual([true, true])
    expect(shared.nodes[0].keys + shared.nodes[1].keys).toBeGreaterThan(100)
  })

  it('a killed node degrades reads to fallbacks with zero errors and correct values', async () => {
    const fresh = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec, {commandTimeoutMs: 100}), prefix, nearTtlMs: 0})
    for (const id of productIds) await fresh.product(id)
    const expected = new Map<number, unknown>()
    for (const id of productIds) expected.set(id, await getProduct(t.db, id))
    let errors = 0
    let wrong = 0
    let reads = 0
    let stop = false
    const readers = Array.from({length: 8}, async (_, w) => {
      for (let i = w; !stop; i = (i + 7) % productIds.length) {
        const id = productIds[i]
        try {
          const got = await fresh.product(id)
          reads++
          if (JSON.stringify(got) !== JSON.stringify(expected.get(id))) wrong++
        } catch {
          errors++
        }
        await new Promise((r) => setImmediate(r))
      }
    })
    await sleep(200)
    const before = fresh.stats().fallbacks
    await servers[1].kill()
    await sleep(1500)
    stop = true
    await Promise.all(readers)
    expect(errors).toBe(0)
    expect(wrong).toBe(0)
    expect(reads).toBeGreaterThan(500)
    expect(fresh.stats().fallbacks).toBeGreaterThan(before)
    // the survivor still serves its keys from cache; the dead node's keys fell through and were refilled
    const s = fresh.stats()
    expect(s.hits).toBeGreaterThan(s.misses)
    // an edit while a node is down is still seen (its delete fails there, the node is purged before reuse)
    await updateProduct({db: t.db, changes: changesA}, productIds[3], {title: 'after crash'})
    await sleep(100)
    expect((await b.product(productIds[3]))!.title).toBe('after crash')
    expect((await fresh.product(productIds[3]))!.title).toBe('after crash')
    await fresh.close()
  })
})
