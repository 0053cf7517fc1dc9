import {describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {ChangeFeed} from '../src/core/events.js'
import {createProduct, getProduct, updateProduct} from '../src/core/catalog/products.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {cacheKeys, createCatalogCache, type CatalogCacheOptions} from '../src/core/cache/catalog-cache.js'
import type {Db, Queryable, Sql} from '../src/core/db/types.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The real database, counting statements by name (and optionally slowing results down). */
function counting(db: Db, delayMs: () => number = () => 0): Queryable & {calls: Map<string, number>} {
  const calls = new Map<string, number>()
  return {
    calls,
    async query<R>(sql: Sql, params?: unknown[]) {
      const name = typeof sql === 'string' ? sql : sql.name
      calls.set(name, (calls.get(name) ?? 0) + 1)
      const result = await db.query<R>(sql, params)
      const d = delayMs()
      if (d) await sleep(d)
      return result
    },
    exec: (script: string) => db.exec(script),
  }
}

async function world(db: Db): Promise<{productId: number; dropId: number}> {
  await db.query(`INSERT INTO users (id, handle, display_name) VALUES (1, 'celeb', 'Celeb') ON CONFLICT DO NOTHING`)
  await db.query(`INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'Celeb', true) ON CONFLICT DO NOTHING`)
  const p = await createProduct({db}, {creatorId: 1, title: 'Jacket', priceCents: 10_000})
  const {rows} = await db.query<{id: number}>(
    `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, status)
     VALUES ($1, 1, now(), now() + interval '1 hour', 10, 10, 'live') RETURNING id`,
    [p.id],
  )
  return {productId: p.id, dropId: rows[0].id}
}

for (const backend of BACKENDS) {
  describe(`read-through cache on memory nodes over ${backend.name}`, () => {
    const t = backend.use()
    const open = async (db: Queryable, extra: Partial<CatalogCacheOptions> = {}) =>
      createCatalogCache({db, nodes: await createCacheNodes('memory:3'), ...extra})

    it('serves repeated reads from the cache and a stampede with one database read', async () => {
      const {productId} = await world(t.db)
      const db = counting(t.db, () => 20)
      const cache = await open(db)
      const results = await Promise.all(Array.from({length: 200}, () => cache.product(productId)))
      expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1)
      expect(results[0]).toMatchObject({id: productId, title: 'Jacket'})
      expect(db.calls.get('products.get')).toBe(1)
      expect(cache.stats()).toMatchObject({misses: 1, coalesced: 199, hits: 0})
      await cache.product(productId)
      expect(cache.stats()).toMatchObject({hits: 1, nearHits: 1})
      expect(await cache.product(999_999)).toBeNull()
      await cache.product(999_999)
      expect(db.calls.get('products.get')).toBe(2)
      await cache.close()
    })

    it('shows an edit at once in the writing process and within the near TTL in another', async () => {
      const {productId, dropId} = await world(t.db)
      const nodes = await createCacheNodes('memory:3')
      const changes = new ChangeFeed()
      const a = await createCatalogCache({db: t.db, nodes, changes, nearTtlMs: 300})
      // b shares the nodes but hears nothing: only its near cache can be stale
      const b = await createCatalogCache({db: t.db, nodes, nearTtlMs: 300})
      expect((await a.product(productId))!.title).toBe('Jacket')
      expect((await b.product(productId))!.title).toBe('Jacket')
      expect((await a.drop(dropId))!.product!.title).toBe('Jacket')
      const edited = await updateProduct({db: t.db, changes}, productId, {title: 'Jacket v2'})
      expect((await a.product(productId))!.title).toBe('Jacket v2')
      await sleep(350)
      expect((await b.product(productId))!.title).toBe('Jacket v2')
      // the drop view embeds the product, so it was invalidated too (found through the database)
      await sleep(50)
      expect((await a.drop(dropId))!.product!.title).toBe('Jacket v2')
      expect(await b.product(productId)).toEqual(edited)
      expect(a.stats().invalidations).toBeGreaterThanOrEqual(3)
      await a.close()
    })

    it('shows sold out immediately, and plain stock changes within the stock TTL', async () => {
      const {dropId} = await world(t.db)
      const changes = new ChangeFeed()
      const cache = await open(t.db, {changes, stockTtlMs: 200, nearTtlMs: 1000})
      expect(await cache.drop(dropId)).toMatchObject({available: 10, soldOut: false, status: 'live'})
      await t.db.query(`UPDATE drops SET available = 4 WHERE id = $1`, [dropId])
      changes.emit({type: 'drop', dropId, productId: 0, creatorId: 1, status: 'live', reason: 'stock'})
      expect((await cache.dropStock(dropId))!.available).toBe(10)
      await sleep(250)
      expect((await cache.dropStock(dropId))!.available).toBe(4)
      await t.db.query(`UPDATE drops SET available = 0, status = 'sold_out' WHERE id = $1`, [dropId])
      changes.emit({type: 'drop', dropId, productId: 0, creatorId: 1, status: 'sold_out', reason: 'sold_out'})
      // no wait at all: the event evicted the near cache synchronously
      expect(await cache.drop(dropId)).toMatchObject({available: 0, soldOut: true, status: 'sold_out'})
      expect(await cache.dropStock(dropId)).toMatchObject({soldOut: true})
      await cache.close()
    })

    it('does not store a value loaded before an invalidation that raced it', async () => {
      const {productId} = await world(t.db)
      let slow = 0
      const db = counting(t.db, () => slow)
      const cache = await open(db, {nearTtlMs: 5000})
      slow = 150
      const racing = cache.product(productId) // reads the old row, then waits 150 ms
      await sleep(50)
      await t.db.query(`UPDATE products SET title = 'Racer' WHERE id = $1`, [productId])
      await cache.invalidate({type: 'product', productId, creatorId: 1})
      slow = 0
      expect((await racing)!.title).toBe('Jacket')
      // the old value was kept nowhere: the next read loads the new one
      expect((await cache.product(productId))!.title).toBe('Racer')
      await cache.close()
    })

    it('answers JSON text equal to the value: loaded, from a node, from the near cache, and after an edit', async () => {
      const {productId, dropId} = await world(t.db)
      const nodes = await createCacheNodes('memory:3')
      const changes = new ChangeFeed()
      const a = await createCatalogCache({db: t.db, nodes, changes})
      // b shares the nodes: its first read is a node hit, whose stored text it answers with
      const b = await createCatalogCache({db: t.db, nodes})
      const product = JSON.stringify(await getProduct(t.db, productId))
      expect(await a.productJson(productId)).toBe(product)
      expect(a.stats()).toMatchObject({misses: 1, hits: 0})
      expect(await b.productJson(productId)).toBe(product)
      expect(b.stats()).toMatchObject({misses: 0, hits: 1, nearHits: 0})
      expect(await b.productJson(productId)).toBe(product)
      expect(await b.productJson(productId)).toBe(product)
      expect(b.stats()).toMatchObject({misses: 0, hits: 3, nearHits: 2})
      expect(await a.dropStockJson(dropId)).toBe(JSON.stringify(await getDropStockFresh(dropId)))
      expect(JSON.parse((await a.dropStockJson(dropId))!)).toEqual(await a.dropStock(dropId))
      for (let i = 0; i < 2; i++) {
        expect(await a.productJson(999_999)).toBeNull()
        expect(await a.dropStockJson(999_999)).toBeNull()
      }
      const edited = await updateProduct({db: t.db, changes}, productId, {title: 'Jacket v3'})
      expect(JSON.parse((await a.productJson(productId))!)).toEqual(edited)
      expect(await a.productJson(productId)).toBe(JSON.stringify(await getProduct(t.db, productId)))
      await a.close()
      await b.close()

      async function getDropStockFresh(id: number) {
        const c = await open(t.db)
        const stock = await c.dropStock(id)
        await c.close()
        return stock
      }
    })

    it('keeps a hot key as replicas on distinct nodes and invalidates every copy', async () => {
      const {productId} = await world(t.db)
      const nodes = await createCacheNodes('memory:3')
      const cache = await createCatalogCache({db: t.db, nodes, nearTtlMs: 0, hotThreshold: 20, hotReplicas: 3})
      const key = cacheKeys.product(productId)
      for (let i = 0; i < 300; i++) await cache.product(productId)
      expect(cache.isHot(key)).toBe(true)
      const holders = async () => {
        const found: string[] = []
        for (const n of nodes.nodes) for (const r of ['', '~1', '~2']) if ((await n.get(`livedrop:cache:${key}${r}`)) !== null) found.push(n.id + r)
        return found
      }
      const copies = await holders()
      // three replicas, each on a different node
      expect(copies.map((c) => c.replace(/~\d$/, ''))).toHaveLength(3)
      expect(new Set(copies.map((c) => c.replace(/~\d$/, ''))).size).toBe(3)
      expect(cache.stats().misses).toBeLessThanOrEqual(3)
      await updateProduct({db: t.db}, productId, {title: 'Hot v2'})
      await cache.invalidate({type: 'product', productId, creatorId: 1})
      expect(await holders()).toEqual([])
      for (let i = 0; i < 30; i++) expect((await cache.product(productId))!.title).toBe('Hot v2')
      await cache.close()
    })
  })
}
