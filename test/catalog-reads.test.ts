import {describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {ChangeFeed, type ChangeEvent} from '../src/core/events.js'
import {createProduct, deleteProduct, getProduct, listCreatorProducts, updateProduct} from '../src/core/catalog/products.js'
import {getCreatorPage, getDropStock, getDropView, listDrops, type DropListing} from '../src/core/catalog/browse.js'
import {InvalidCursorError} from '../src/core/catalog/cursor.js'
import {NotFoundError, UsageError} from '../src/core/errors.js'
import type {Db} from '../src/core/db/types.js'

async function creator(db: Db, id: number, celebrity = false): Promise<void> {
  await db.query(`INSERT INTO users (id, handle, display_name) VALUES ($1, $2, $2)`, [id, `u${id}`])
  await db.query(`INSERT INTO creators (id, user_id, name, is_celebrity, follower_count) VALUES ($1, $1, $2, $3, $4)`, [id, `Creator ${id}`, celebrity, celebrity ? 1_000_000 : 3])
}

async function drop(db: Db, o: {productId: number; creatorId: number; startsAt: string; status: string; strategy?: string; available?: number}): Promise<number> {
  const {rows} = await db.query<{id: number}>(
    `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, status, strategy, bucket_count)
     VALUES ($1, $2, $3::timestamptz, $3::timestamptz + interval '1 hour', 100, $4, $5, $6, 4) RETURNING id`,
    [o.productId, o.creatorId, o.startsAt, o.available ?? 100, o.status, o.strategy ?? 'row'],
  )
  return rows[0].id
}

async function pageAll(db: Db, status: DropListing, limit: number): Promise<number[]> {
  const ids: number[] = []
  let cursor: string | null = null
  do {
    const page = await listDrops(db, {status, cursor, limit})
    expect(page.items.length).toBeLessThanOrEqual(limit)
    ids.push(...page.items.map((d) => d.id))
    cursor = page.nextCursor
  } while (cursor)
  return ids
}

for (const backend of BACKENDS) {
  describe(`catalog reads on ${backend.name}`, () => {
    const t = backend.use()

    it('gets, edits, soft-deletes products and emits changes after each write', async () => {
      const db = t.db
      await creator(db, 1)
      const changes = new ChangeFeed()
      const seen: ChangeEvent[] = []
      changes.on((e) => seen.push(e))
      const p = await createProduct({db, changes}, {creatorId: 1, title: 'Hoodie', priceCents: 5000})
      expect(await getProduct(db, p.id)).toEqual(p)

      const edited = await updateProduct({db, changes}, p.id, {priceCents: 4200, imageUrl: 'https://img/x.png'})
      expect(edited).toMatchObject({title: 'Hoodie', priceCents: 4200, imageUrl: 'https://img/x.png'})
      expect(await getProduct(db, p.id)).toEqual(edited)
      // imageUrl can be cleared, other fields stay
      expect(await updateProduct({db, changes}, p.id, {imageUrl: null})).toMatchObject({imageUrl: null, priceCents: 4200})
      await expect(updateProduct({db, changes}, p.id, {title: ' ', priceCents: -1})).rejects.toThrow(/title.*priceCents/)
      await expect(updateProduct({db, changes}, 999_999, {title: 'x'})).rejects.toBeInstanceOf(NotFoundError)

      await deleteProduct({db, changes}, p.id)
      expect(await getProduct(db, p.id)).toBeNull()
      // the row stays (soft delete)
      expect((await db.query(`SELECT 1 FROM products WHERE id = $1 AND deleted_at IS NOT NULL`, [p.id])).rows).toHaveLength(1)
      await expect(deleteProduct({db, changes}, p.id)).rejects.toBeInstanceOf(NotFoundError)
      await expect(updateProduct({db, changes}, p.id, {title: 'back'})).rejects.toBeInstanceOf(NotFoundError)
      expect(seen).toEqual(Array.from({length: 4}, () => ({type: 'product', productId: p.id, creatorId: 1})))
    })

    it('pages a creator\'s products by keyset, skipping deleted ones, with tamper-proof cursors', async () => {
      const db = t.db
      await creator(db, 2)
      const ids: number[] = []
      for (let i = 0; i < 23; i++) ids.push((await createProduct({db}, {creatorId: 2, title: `P${i}`, priceCents: i})).id)
      await deleteProduct({db}, ids[5])
      const got: number[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page = await listCreatorProducts(db, 2, {cursor, limit: 5})
        got.push(...page.items.map((p) => p.id))
        cursor = page.nextCursor
        pages++
      } while (cursor)
      expect(got).toEqual(ids.filter((id) => id !== ids[5]))
      expect(pages).toBe(5)
      const first = await listCreatorProducts(db, 2, {limit: 5})
      await expect(listCreatorProducts(db, 2, {cursor: first.nextCursor!.replace(/.$/, 'x'), limit: 5})).rejects.toBeInstanceOf(InvalidCursorError)
      await expect(listCreatorProducts(db, 2, {limit: 0})).rejects.toBeInstanceOf(UsageError)
      expect((await listCreatorProducts(db, 424242)).items).toEqual([])
    })

    it('shows a drop with its product and authoritative stock (bucket sum for buckets)', async () => {
      const db = t.db
      await creator(db, 3, true)
      const p = await createProduct({db}, {creatorId: 3, title: 'Sneaker', priceCents: 19900})
      const rowDrop = await drop(db, {productId: p.id, creatorId: 3, startsAt: '2030-01-01T10:00:00Z', status: 'live', available: 37})
      const bucketDrop = await drop(db, {productId: p.id, creatorId: 3, startsAt: '2030-01-01T11:00:00Z', status: 'live', strategy: 'buckets', available: 100})
      const view = await getDropView(db, rowDrop)
      expect(view).toMatchObject({id: rowDrop, status: 'live', available: 37, stockTotal: 100, soldOut: false, strategy: 'row', startsAt: '2030-01-01T10:00:00.000Z', endsAt: '2030-01-01T11:00:00.000Z'})
      expect(view!.product).toEqual({id: p.id, title: 'Sneaker', description: '', priceCents: 19900, imageUrl: null})

      // no buckets yet: drops.available; then the sum of the buckets, whatever drops.available says
      expect((await getDropView(db, bucketDrop))!.available).toBe(100)
      for (const [bucket, n] of [[0, 10], [1, 0], [2, 7], [3, 3]]) {
        await db.query(`INSERT INTO drop_stock_buckets (drop_id, bucket, available) VALUES ($1, $2, $3)`, [bucketDrop, bucket, n])
      }
      expect((await getDropView(db, bucketDrop))!.available).toBe(20)
      expect(await getDropStock(db, bucketDrop)).toEqual({dropId: bucketDrop, status: 'live', stockTotal: 100, available: 20, lowStockThreshold: 0, soldOut: false})
      await db.query(`UPDATE drop_stock_buckets SET available = 0 WHERE drop_id = $1`, [bucketDrop])
      expect((await getDropStock(db, bucketDrop))!.soldOut).toBe(true)
      await db.query(`UPDATE drops SET status = 'sold_out', available = 0 WHERE id = $1`, [rowDrop])
      expect(await getDropStock(db, rowDrop)).toMatchObject({status: 'sold_out', soldOut: true, available: 0})

      await deleteProduct({db}, p.id)
      expect((await getDropView(db, rowDrop))!.product).toBeNull()
      expect(await getDropView(db, 987_654)).toBeNull()
      expect(await getDropStock(db, 987_654)).toBeNull()
    })

    it('lists upcoming, live and ended drops with deterministic keyset pages, ties broken by id', async () => {
      const db = t.db
      await db.exec('DELETE FROM drop_stock_buckets; DELETE FROM drops')
      await creator(db, 4)
      const p = await createProduct({db}, {creatorId: 4, title: 'Cap', priceCents: 900})
      const statuses = ['scheduled', 'live', 'ended', 'sold_out']
      const made: Array<{id: number; startsAt: string; status: string}> = []
      for (let i = 0; i < 60; i++) {
        // many share a start time (to the microsecond), some differ by one microsecond
        const startsAt = `2031-06-0${1 + (i % 3)}T12:00:00.00000${i % 2}Z`
        const status = statuses[i % 4]
        made.push({id: await drop(db, {productId: p.id, creatorId: 4, startsAt, status}), startsAt, status})
      }
      const order = (st: string[], desc: boolean) =>
        made
          .filter((d) => st.includes(d.status))
          .sort((a, b) => (a.startsAt < b.startsAt ? -1 : a.startsAt > b.startsAt ? 1 : a.id - b.id) * (desc ? -1 : 1))
          .map((d) => d.id)
      for (const limit of [1, 4, 7, 100]) {
        expect(await pageAll(db, 'upcoming', limit)).toEqual(order(['scheduled'], false))
        expect(await pageAll(db, 'live', limit)).toEqual(order(['live'], false))
        expect(await pageAll(db, 'ended', limit)).toEqual(order(['ended', 'sold_out'], true))
      }
      // a drop going live between pages is neither repeated nor does it shift the rest
      const first = await listDrops(db, {status: 'upcoming', limit: 5})
      await db.query(`UPDATE drops SET status = 'live' WHERE id = $1`, [first.items[0].id])
      const rest = await listDrops(db, {status: 'upcoming', cursor: first.nextCursor, limit: 100})
      expect([...first.items.map((d) => d.id), ...rest.items.map((d) => d.id)]).toEqual(order(['scheduled'], false))
      await expect(listDrops(db, {status: 'later' as DropListing})).rejects.toBeInstanceOf(UsageError)
    })

    it('builds a creator page: profile, first products page, upcoming and live drops', async () => {
      const db = t.db
      await creator(db, 5, true)
      const a = await createProduct({db}, {creatorId: 5, title: 'A', priceCents: 1})
      await createProduct({db}, {creatorId: 5, title: 'B', priceCents: 2})
      const live = await drop(db, {productId: a.id, creatorId: 5, startsAt: '2032-01-01T00:00:00Z', status: 'live'})
      const soon = await drop(db, {productId: a.id, creatorId: 5, startsAt: '2032-02-01T00:00:00Z', status: 'scheduled'})
      await drop(db, {productId: a.id, creatorId: 5, startsAt: '2031-01-01T00:00:00Z', status: 'ended'})
      const page = await getCreatorPage(db, 5, {limit: 1})
      expect(page!.creator).toEqual({id: 5, name: 'Creator 5', isCelebrity: true, followerCount: 1_000_000})
      expect(page!.products.items.map((x) => x.title)).toEqual(['A'])
      expect(page!.products.nextCursor).not.toBeNull()
      expect((await getCreatorPage(db, 5))!.drops.map((d) => d.id)).toEqual([live, soon])
      expect(await getCreatorPage(db, 999_999)).toBeNull()
    })
  })
}
