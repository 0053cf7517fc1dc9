import {Redis} from 'ioredis'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {createEngine, type Engine} from '../src/core/engine.js'
import {startRedis, type RedisServer} from './cache-servers.js'
import {useServer, type TestServer} from './helpers/server.js'

/** Users 1..5; creator 1 is user 1 (products 1, 2), creator 2 is user 2 (product 3). */
async function seedCatalog(engine: Engine): Promise<void> {
  await engine.db.exec(`
    INSERT INTO users (id, handle, display_name) SELECT g, 'user' || g, 'User ' || g FROM generate_series(1, 5) g;
    INSERT INTO creators (id, user_id, name) VALUES (1, 1, 'Celebrity'), (2, 2, 'Other');
    INSERT INTO products (id, creator_id, title, price_cents) VALUES (1, 1, 'Sneaker', 12000), (2, 1, 'Cap', 900), (3, 2, 'Mug', 1500);`)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The same routes on every kind of cache node: in-process nodes on a ring, and two real Redis servers on a ring. */
const KINDS = [
  {name: 'memory:3 (a ring of in-process nodes)', redis: false},
  {name: 'two Redis servers on a ring', redis: true},
] as const

for (const kind of KINDS) {
  describe(`PATCH and DELETE /products/:id on ${kind.name}`, () => {
    let servers: RedisServer[] = []
    const engineConfig: {cache: string; cacheOptions?: {nearTtlMs: number}} = {cache: 'memory:3'}
    beforeAll(async () => {
      if (!kind.redis) return
      servers = await Promise.all([startRedis(), startRedis()])
      engineConfig.cache = servers.map((s) => s.url).join(',')
      // no near cache: every read goes to the Redis node, so the nodes' invalidation is what is tested
      engineConfig.cacheOptions = {nearTtlMs: 0}
    })
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.kill()))
    })
    const t: TestServer = useServer('postgres', {engine: engineConfig})
    beforeAll(async () => seedCatalog(t.engine))

    const get = (id: number) => t.app.inject({method: 'GET', url: `/products/${id}`})
    const patch = (id: number, user: number | null, payload: unknown) =>
      t.app.inject({method: 'PATCH', url: `/products/${id}`, headers: user === null ? {} : t.auth(user), payload: payload as object})
    const del = (id: number, user: number) => t.app.inject({method: 'DELETE', url: `/products/${id}`, headers: t.auth(user)})

    it('the owner edits: the answer carries the bumped version, and the very next read (cached before) shows it', async () => {
      const before = await get(1)
      expect(before.statusCode).toBe(200)
      expect(before.json()).toMatchObject({id: 1, version: 1, priceCents: 12000})
      // read again so every layer (near cache, node) holds version 1
      expect((await get(1)).json().version).toBe(1)

      const edited = await patch(1, 1, {priceCents: 9900, title: 'Sneaker II'})
      expect(edited.statusCode).toBe(200)
      expect(edited.json()).toMatchObject({id: 1, version: 2, priceCents: 9900, title: 'Sneaker II'})
      for (let i = 0; i < 3; i++) expect((await get(1)).json()).toMatchObject({version: 2, priceCents: 9900})
      // the creator page lists it fresh too
      const page = await t.app.inject({method: 'GET', url: '/creators/1/products'})
      expect(page.json().items.find((p: {id: number}) => p.id === 1)).toMatchObject({version: 2, priceCents: 9900})

      if (kind.redis) {
        // the cached JSON in the Redis node holds the version too
        const clients = servers.map((s) => new Redis(s.url))
        try {
          // the read-through stores without waiting: give the write a moment
          let raws: Array<string | null> = []
          for (let i = 0; i < 50 && raws.length === 0; i++) {
            await get(1)
            raws = (await Promise.all(clients.map((c) => c.get('livedrop:cache:p:1')))).filter((r) => r !== null)
            if (raws.length === 0) await sleep(20)
          }
          expect(raws).toHaveLength(1)
          expect(JSON.parse(raws[0]!).v).toMatchObject({id: 1, version: 2})
        } finally {
          clients.forEach((c) => c.disconnect())
        }
      }
    })

    it('only the owning creator’s token: another creator 403, no token 401, an unknown product 404, all in the API’s error shape', async () => {
      const other = await patch(1, 2, {priceCents: 1})
      expect(other.statusCode).toBe(403)
      expect(other.json()).toEqual({error: {code: 'FORBIDDEN', message: 'product 1 belongs to another creator', hint: expect.stringMatching(/owns/)}})
      expect(other.headers['x-request-id']).toBeTruthy()
      const fan = await del(1, 4)
      expect(fan.statusCode).toBe(403)
      expect(fan.json().error.code).toBe('FORBIDDEN')

      const anonymous = await patch(1, null, {priceCents: 1})
      expect(anonymous.statusCode).toBe(401)
      expect(anonymous.json().error).toMatchObject({code: 'UNAUTHENTICATED', field: 'headers.authorization'})

      const unknown = await patch(999, 1, {priceCents: 1})
      expect(unknown.statusCode).toBe(404)
      expect(unknown.json().error).toMatchObject({code: 'NOT_FOUND', message: 'product 999 not found'})
      expect((await del(999, 1)).statusCode).toBe(404)

      // nothing above changed it
      expect((await get(1)).json()).toMatchObject({version: 2, priceCents: 9900})
    })

    it('a bad body is a 400 naming the field', async () => {
      const negative = await patch(1, 1, {priceCents: -1})
      expect(negative.statusCode).toBe(400)
      expect(negative.json().error).toMatchObject({code: 'VALIDATION', field: 'body.priceCents'})
      const text = await patch(1, 1, {priceCents: '12'})
      expect(text.json().error).toMatchObject({code: 'VALIDATION', field: 'body.priceCents'})
      const unknownField = await patch(1, 1, {colour: 'red'})
      expect(unknownField.statusCode).toBe(400)
      expect(unknownField.json().error).toMatchObject({code: 'UNKNOWN_FIELD', field: 'body.colour'})
      const empty = await patch(1, 1, {})
      expect(empty.statusCode).toBe(400)
      expect(empty.json().error).toMatchObject({code: 'VALIDATION', field: 'body'})
      const title = await patch(1, 1, {title: ''})
      expect(title.json().error).toMatchObject({code: 'VALIDATION', field: 'body.title'})
      expect((await get(1)).json().version).toBe(2)
    })

    it('the owner removes: version bumped, the next read (cached before) is 404, and the product stays gone', async () => {
      expect((await get(2)).json()).toMatchObject({id: 2, version: 1})
      const removed = await del(2, 1)
      expect(removed.statusCode).toBe(200)
      expect(removed.json()).toEqual({id: 2, creatorId: 1, version: 2, removed: true})
      expect((await get(2)).statusCode).toBe(404)
      expect((await del(2, 1)).statusCode).toBe(404)
      expect((await patch(2, 1, {priceCents: 5})).statusCode).toBe(404)
      const page = await t.app.inject({method: 'GET', url: '/creators/1/products'})
      expect(page.json().items.map((p: {id: number}) => p.id)).toEqual([1])
      const {rows} = await t.engine.db.query<{version: number; deleted: boolean}>('SELECT version, deleted_at IS NOT NULL AS deleted FROM products WHERE id = 2')
      expect(rows[0]).toEqual({version: 2, deleted: true})
    })

    if (kind.redis) {
      it('another process on the same Redis nodes sees the edit within the staleness bound (pub/sub invalidation)', async () => {
        const other = await createEngine({db: {kind: 'postgres', url: t.url!}, cache: engineConfig.cache})
        try {
          const seen = (await other.catalog.product(3))!.version
          // cached in the other process's near cache and on the nodes
          expect((await other.catalog.product(3))!.version).toBe(seen)
          const edited = await t.app.inject({method: 'PATCH', url: '/products/3', headers: t.auth(2), payload: {priceCents: 1600}})
          expect(edited.json().version).toBe(seen + 1)
          const ackAt = Date.now()
          let version = seen
          while (version === seen && Date.now() - ackAt < 1000) {
            version = (await other.catalog.product(3))!.version
            if (version === seen) await sleep(10)
          }
          expect(version).toBe(seen + 1)
        } finally {
          await other.close()
        }
      })
    }
  })
}
