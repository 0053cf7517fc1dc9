import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {runCli} from './helpers/cli.js'
import {startRedis, type RedisServer} from './cache-servers.js'
import {createProduct} from '../src/core/catalog/products.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {createCatalogCache} from '../src/core/cache/catalog-cache.js'

describe('livedrop cache ring', () => {
  it('prints shares, keys moved and the cascade as JSON', async () => {
    const r = await runCli(['cache', 'ring', '--nodes', '6', '--keys', '50000', '--zipf', '1.1', '--remove', '1', '--fail', '1', '--cascade', '--capacity', '1.6', '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.shares).toHaveLength(6)
    expect(out.moved.expected).toBeCloseTo(1 / 6, 9)
    expect(Math.abs(out.moved.plain - 1 / 6)).toBeLessThan(0.05)
    expect(out.failure.bounded.survivors).toBeGreaterThan(out.failure.plain.survivors)
  })

  it('refuses bad values with exit 2', async () => {
    const r = await runCli(['cache', 'ring', '--nodes', '3', '--remove', '3'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--remove/)
  })
})

describe('livedrop cache stats', () => {
  const t = usePostgres()
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.kill()
  })

  it('sums the counters caches pushed into the nodes and shows each node', async () => {
    await t.db.query(`INSERT INTO users (id, handle, display_name) VALUES (1, 'c', 'C')`)
    await t.db.query(`INSERT INTO creators (id, user_id, name) VALUES (1, 1, 'C')`)
    const ids: number[] = []
    for (let i = 0; i < 5; i++) ids.push((await createProduct({db: t.db}, {creatorId: 1, title: `P${i}`, priceCents: i})).id)
    const cache = await createCatalogCache({db: t.db, nodes: await createCacheNodes(server.url)})
    for (let round = 0; round < 3; round++) for (const id of ids) await cache.product(id)
    await cache.close() // flushes its counters
    const r = await runCli(['cache', 'stats', '--cache', server.url, '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.counters).toMatchObject({misses: 5, hits: 10, hitRatio: 10 / 15})
    expect(out.nodes).toEqual([expect.objectContaining({id: server.url, up: true, keys: 5})])

    const memory = await runCli(['cache', 'stats', '--cache', 'memory:2'])
    expect(memory.code).toBe(2)
    expect(memory.stderr).toMatch(/metrics/)
  })
})
