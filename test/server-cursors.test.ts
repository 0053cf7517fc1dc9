import {describe, expect, it} from 'vitest'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {decodeCursor, encodeCursor} from '../src/core/catalog/cursor.js'
import {seedWorld, useServer} from './helpers/server.js'

type PageBody = {items: Array<Record<string, number>>; nextCursor: string | null}

describe('cursors are signed and bound to their listing', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1e6, rateLimitBurst: 1e6})
  const get = (url: string, user?: number) => s.app.inject({method: 'GET', url, headers: user ? s.auth(user) : {}})
  const next = async (url: string, user?: number) => {
    const res = await get(url, user)
    expect(res.statusCode, `${url} → ${res.body}`).toBe(200)
    const cursor = (res.json() as PageBody).nextCursor
    expect(cursor, url).toBeTypeOf('string')
    return encodeURIComponent(cursor!)
  }
  const refused = async (url: string, user?: number) => {
    const res = await get(url, user)
    expect(res.statusCode, `${url} → ${res.body}`).toBe(400)
    expect(res.json().error).toMatchObject({code: 'INVALID_CURSOR', field: 'querystring.cursor'})
  }

  it('seeds two creators, followers, products, live and upcoming drops, and orders', async () => {
    const {dropId} = await seedWorld(s.engine, {users: 10, stock: 100})
    await s.engine.db.exec(`
      INSERT INTO creators (id, user_id, name) VALUES (2, 2, 'Creator Two');
      INSERT INTO products (id, creator_id, title, price_cents) VALUES (2, 1, 'Hoodie', 5000), (3, 1, 'Cap', 2000), (4, 2, 'Mug', 1500);
      INSERT INTO products (id, creator_id, title, price_cents) SELECT g, 1, 'Sticker ' || g, 100 FROM generate_series(5, 26) g;
      INSERT INTO follows (creator_id, user_id) SELECT c, u FROM generate_series(1, 2) c, generate_series(3, 8) u;`)
    const hour = 3_600_000
    for (const offset of [-2 * hour, 2 * hour, 3 * hour]) {
      const drop = await createDrop(s.engine.deps, {creatorId: 1, productId: 2, stock: 5, startsAt: new Date(Date.now() + offset), endsAt: new Date(Date.now() + 5 * hour)})
      if (offset < 0) await startDrop(s.engine.deps, drop.id)
    }
    for (const user of [3, 3, 4, 4]) {
      const res = await s.app.inject({method: 'POST', url: '/orders', headers: {...s.auth(user), 'idempotency-key': `"c-${Math.random()}"`}, payload: {dropId, qty: 1}})
      expect(res.statusCode).toBe(201)
    }
  })

  it('a cursor pages on its own listing', async () => {
    for (const url of ['/creators/1/followers?limit=2', '/drops?status=live&limit=1', '/drops?status=upcoming&limit=1', '/creators/1/products?limit=1']) {
      expect((await get(`${url}&cursor=${await next(url)}`)).statusCode, url).toBe(200)
    }
    expect((await get(`/me/orders?limit=1&cursor=${await next('/me/orders?limit=1', 3)}`, 3)).statusCode).toBe(200)
    // `/drops` is the live tab: one listing, whichever way it is asked for
    expect((await get(`/drops?status=live&limit=1&cursor=${await next('/drops?limit=1')}`)).statusCode).toBe(200)
    // the creator page embeds the first products page (20 of 25); its cursor pages on at /creators/:id/products
    const page = (await get('/creators/1')).json() as {products: PageBody}
    const rest = await get(`/creators/1/products?cursor=${encodeURIComponent(page.products.nextCursor ?? 'none')}`)
    expect(rest.statusCode, rest.body).toBe(200)
    expect(new Set([...page.products.items, ...(rest.json() as PageBody).items].map((p) => p.id)).size).toBe(25)
    await refused(`/creators/2/products?cursor=${encodeURIComponent(page.products.nextCursor!)}`)
    // the cached creator page keeps the core's cursor: signing copies, never edits, what the cache holds
    expect((await get('/creators/1')).json().products.nextCursor).toBe(page.products.nextCursor)
  })

  it('is refused on another listing, filter, path id or user, with INVALID_CURSOR naming the cursor', async () => {
    await refused(`/creators/2/followers?limit=2&cursor=${await next('/creators/1/followers?limit=2')}`)
    await refused(`/drops?status=upcoming&limit=1&cursor=${await next('/drops?status=live&limit=1')}`)
    const products = await next('/creators/1/products?limit=1')
    await refused(`/creators/2/products?limit=1&cursor=${products}`)
    await refused(`/me/orders?limit=1&cursor=${products}`, 3)
    await refused(`/me/orders?limit=1&cursor=${await next('/me/orders?limit=1', 3)}`, 4)
    await refused(`/me/following?cursor=${await next('/creators/1/followers?limit=2')}`, 3)
  })

  it('is refused when edited or forged, even with a well-formed key', async () => {
    const cursor = decodeURIComponent(await next('/creators/1/followers?limit=2'))
    const [creatorId, lastUser] = decodeCursor(cursor.split('.').slice(0, 2).join('.'), ['number', 'number'])
    // the key a client could compute (skip ahead), alone or with the real signature
    const forged = encodeCursor([creatorId, (lastUser as number) + 3])
    await refused(`/creators/1/followers?cursor=${encodeURIComponent(forged)}`)
    await refused(`/creators/1/followers?cursor=${encodeURIComponent(`${forged}.${cursor.split('.')[2]}`)}`)
    await refused(`/creators/1/followers?cursor=${encodeURIComponent(cursor.slice(0, -1))}`)
    await refused('/creators/1/followers?cursor=tampered.123')
  })
})
