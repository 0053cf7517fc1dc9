import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {startCluster, type RedisServer} from './cache-servers.js'
import {ChangeFeed} from '../src/core/events.js'
import {createProduct, getProduct, updateProduct} from '../src/core/catalog/products.js'
import {getCreatorPage, getDropView} from '../src/core/catalog/browse.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {cacheKeys, createCatalogCache, readCacheStats, type CatalogCache} from '../src/core/cache/catalog-cache.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('read-through cache on a Redis Cluster of three masters', () => {
  const t = usePostgres()
  let servers: RedisServer[] = []
  let spec = ''
  const prefix = `ldc-${process.pid}:`
  const productIds: number[] = []
  let dropId = 0
  const changes = new ChangeFeed()
  let a: CatalogCache
  let b: CatalogCache

  beforeAll(async () => {
    servers = await startCluster()
    spec = `redis-cluster://127.0.0.1:${servers[0].port}`
    await t.db.query(`INSERT INTO users (id, handle, display_name) VALUES (1, 'celeb', 'Celeb')`)
    await t.db.query(`INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'Celeb', true)`)
    for (let i = 0; i < 60; i++) productIds.push((await createProduct({db: t.db}, {creatorId: 1, title: `P${i}`, priceCents: i})).id)
    const {rows} = await t.db.query<{id: number}>(
      `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, status)
       VALUES ($1, 1, now(), now() + interval '1 hour', 5, 5, 'live') RETURNING id`,
      [productIds[0]],
    )
    dropId = rows[0].id
    a = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec), changes, prefix, statsFlushMs: 100, hotThreshold: 20, nearTtlMs: 0})
    b = await createCatalogCache({db: t.db, nodes: await createCacheNodes(spec), prefix, statsFlushMs: 100, nearTtlMs: 0})
  }, 60_000)

  afterAll(async () => {
    await a?.close()
    await b?.close()
    await Promise.all(servers.map((s) => s.kill()))
  })

  it('serves the same reads as the database, from entries spread over the masters', async () => {
    for (const id of productIds) expect(await a.product(id)).toEqual(await getProduct(t.db, id))
    expect(await a.drop(dropId)).toEqual(await getDropView(t.db, dropId))
    expect(await a.creatorPage(1)).toEqual(await getCreatorPage(t.db, 1))
    // the other process reads them from the cluster, not the database
    for (const id of productIds) expect(await b.product(id)).toEqual(await getProduct(t.db, id))
    expect(await b.creatorPage(1)).toEqual(await getCreatorPage(t.db, 1))
    expect(b.stats().misses).toBe(0)
    const nodes = await createCacheNodes(spec)
    const masters = await (nodes.nodes[0] as unknown as {masters(p: string): Promise<Array<{keys: number}>>}).masters(prefix)
    await nodes.close()
    expect(masters).toHaveLength(3)
    // slots shard the keys: every master holds some
    for (const m of masters) expect(m.keys).toBeGreaterThan(5)
  })

  it('invalidates across processes through cluster pub/sub, replicas included', async () => {
    const id = productIds[1]
    for (let i = 0; i < 100; i++) await a.product(id)
    expect(a.isHot(cacheKeys.product(id))).toBe(true)
    const probe = await createCacheNodes(spec)
    const copies = async () => {
      let n = 0
      for (const r of ['', '~1', '~2']) if ((await probe.nodes[0].get(`${prefix}${cacheKeys.product(id)}${r}`)) !== null) n++
      return n
    }
    // three replicas under different key names, so in different slots
    expect(await copies()).toBe(3)
    await updateProduct({db: t.db, changes}, id, {title: 'edited in a cluster'})
    await sleep(50)
    expect(await copies()).toBe(0)
    const started = Date.now()
    while ((await b.product(id))!.title !== 'edited in a cluster') {
      if (Date.now() - started > 1000) throw new Error('b never saw the edit')
      await sleep(5)
    }
    for (let i = 0; i < 50; i++) expect((await a.product(id))!.title).toBe('edited in a cluster')
    await probe.close()
    await t.db.query(`UPDATE drops SET status = 'sold_out', available = 0 WHERE id = $1`, [dropId])
    changes.emit({type: 'drop', dropId, productId: productIds[0], creatorId: 1, status: 'sold_out', reason: 'sold_out'})
    expect((await a.drop(dropId))!.soldOut).toBe(true)
    await sleep(100)
    expect((await b.drop(dropId))!.soldOut).toBe(true)
    await sleep(250)
    const nodes = await createCacheNodes(spec)
    const shared = await readCacheStats(nodes, prefix)
    await nodes.close()
    expect(shared.counters.hits).toBeGreaterThan(100)
    expect(shared.nodes[0].up).toBe(true)
  })
})
