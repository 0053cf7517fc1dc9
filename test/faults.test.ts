import {Redis} from 'ioredis'
import {Pool} from 'undici'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {checkDropInvariants} from '../src/core/audit/drop.js'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import {createEngine} from '../src/core/engine.js'
import {startRedisServer, type RedisServer} from '../src/core/redis-server.js'
import {startServeCluster, type ServeCluster} from '../src/server/cluster.js'
import {FaultsSchema, runFault, type FaultRecord} from '../src/sim/faults/index.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {seedWorld, TEST_SECRET} from './helpers/server.js'
import {orderLoad, outsideWindows, type LoadError} from './serve-workers.load.js'

/** Errors are allowed only this long after a fault began (or after a lasting fault ended). */
const ERROR_WINDOW_MS = 3000

/** GETs of the drop's stock and product (through the cache nodes) until the time is up; failures with their time. */
async function readLoad(url: string, dropId: number, durationMs: number): Promise<{reads: number; errors: LoadError[]}> {
  const pool = new Pool(url, {connections: 4})
  const t0 = performance.now()
  const errors: LoadError[] = []
  let reads = 0
  await Promise.all(
    Array.from({length: 4}, async (_, w) => {
      while (performance.now() - t0 < durationMs) {
        const path = w % 2 ? `/drops/${dropId}/stock` : '/products/1'
        const sentMs = performance.now() - t0
        try {
          const res = await pool.request({path, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000})
          const text = await res.body.text()
          if (res.statusCode !== 200) errors.push({sentMs, endedMs: performance.now() - t0, what: `${path} ${res.statusCode} ${text.slice(0, 100)}`})
          reads++
        } catch (err) {
          errors.push({sentMs, endedMs: performance.now() - t0, what: `${path} ${(err as {code?: string}).code ?? (err as Error).message}`})
        }
        await new Promise((r) => setTimeout(r, 10))
      }
    }),
  )
  await pool.close()
  return {reads, errors}
}

describe('faults caused for real mid-load against serve workers', () => {
  let name = ''
  let url = ''
  let db: PostgresDb
  let redis: RedisServer
  let cacheNodes: RedisServer[] = []
  let cluster: ServeCluster | undefined
  let dropId = 0
  const log: string[] = []
  const USERS = 2000

  beforeAll(async () => {
    ;({name, url} = await createTestDatabase())
    redis = await startRedisServer()
    cacheNodes = [await startRedisServer(), await startRedisServer()]
    // a redis-gate drop: Redis admits orders, so its restart is a fault for the order path too
    const engine = await createEngine({db: {kind: 'postgres', url}, redisUrl: redis.url, poolSize: 2})
    await seedWorld(engine, {users: USERS, stock: 1})
    const drop = await createDrop(engine.deps, {creatorId: 1, productId: 1, stock: 1200, strategy: 'redis-gate', startsAt: new Date(Date.now() - 1000), endsAt: new Date(Date.now() + 3_600_000)})
    await startDrop(engine.deps, drop.id)
    dropId = drop.id
    await engine.close()
    db = new PostgresDb(url, {max: 2})
    cluster = await startServeCluster({
      workers: 2,
      databaseUrl: url,
      redisUrl: redis.url,
      cache: cacheNodes.map((n) => n.url).join(','),
      secret: TEST_SECRET,
      poolSize: 6,
      log: {write: (text) => void log.push(text)},
    })
  })
  afterAll(async () => {
    if (cluster) expect(await cluster.close()).toBe(0)
    await db?.close()
    for (const server of [redis, ...cacheNodes]) await server?.stop()
    if (name) await dropTestDatabase(name)
  })

  it('kill-worker, redis-restart, pg-terminate-backends, cache-node-down: no acknowledged order lost, no oversell, no duplicate; errors only right after a fault', async () => {
    const faults = FaultsSchema.parse([
      {at: '1s', kind: 'kill-worker'},
      {at: '3.5s', kind: 'redis-restart'},
      {at: '6s', kind: 'pg-terminate-backends'},
      {at: '8s', kind: 'cache-node-down', for: '1.5s'},
    ])
    const DURATION_MS = 12_000
    const t0 = performance.now()
    const [records, orders, reads] = await Promise.all([
      Promise.all(faults.map((f) => runFault(f, {startedAt: t0, cluster, redis, cacheNodes, db, applicationName: cluster!.applicationName}))),
      orderLoad({url: cluster!.url, secret: TEST_SECRET, dropId, users: USERS, maxAttempts: 6000, durationMs: DURATION_MS, connections: 16, keyPrefix: 'fault'}),
      readLoad(cluster!.url, dropId, DURATION_MS),
    ])
    console.log(records.map((r) => `${r.kind} ${r.startedMs}→${r.endedMs} ms: ${r.action}${r.error ? ` ERROR ${r.error}` : ''}`).join('\n'))
    console.log(`${orders.attempts} order attempts ${JSON.stringify(orders.statuses)}, ${reads.reads} reads; failed tries: ${[...new Set([...orders.errors, ...reads.errors].map((e) => e.what))].join(', ')}`)

    // every fault happened, on time, and what it broke came back
    for (const [i, r] of records.entries()) {
      expect(r.error, r.action).toBeUndefined()
      expect(r.startedMs!).toBeGreaterThanOrEqual(faults[i].at)
      expect(r.endedMs!).toBeGreaterThanOrEqual(r.startedMs!)
    }
    const byKind = (kind: FaultRecord['kind']) => records.find((r) => r.kind === kind)!
    expect(byKind('kill-worker').details.newPid).not.toBe(byKind('kill-worker').details.pid)
    expect(cluster!.restarts).toBeGreaterThanOrEqual(1)
    expect(byKind('redis-restart').details.newPid).not.toBe(byKind('redis-restart').details.pid)
    // both workers' pools (6 each) had connections to cut, and none of them was ours
    expect((byKind('pg-terminate-backends').details.pids as number[]).length).toBeGreaterThanOrEqual(2)
    expect(byKind('cache-node-down').endedMs! - byKind('cache-node-down').startedMs!).toBeGreaterThanOrEqual(1500)
    const node = new Redis(cacheNodes[0].url)
    expect(await node.ping()).toBe('PONG')
    node.disconnect()

    // from the database: every 201 stored as answered, no unit sold twice or beyond the stock
    const invariants = await checkDropInvariants(db, dropId, orders.acknowledged)
    for (const inv of invariants) expect(inv, JSON.stringify(inv)).toMatchObject({ok: true})
    expect(orders.acknowledged.length).toBeGreaterThan(50)

    // errors only from requests in flight in the seconds after a fault began (or after a node came back)
    const windows = records.map((r) => [r.startedMs!, Math.max(r.startedMs!, r.endedMs!) + ERROR_WINDOW_MS] as const)
    const stray = outsideWindows([...orders.errors, ...reads.errors], windows)
    expect(stray, JSON.stringify(stray.slice(0, 5))).toEqual([])
    // and service went on after the last one
    expect(orders.acknowledgedAfter(byKind('cache-node-down').endedMs!) + (orders.statuses[409] ?? 0)).toBeGreaterThan(0)
    expect(log.join('')).toMatch(/worker \d restarted/)
  }, 120_000)
})

describe('startRedisServer', () => {
  it('refuses a missing binary with a usage error naming the Debian package', async () => {
    const err = await startRedisServer({binary: 'redis-server-not-installed'}).then(
      () => null,
      (e: unknown) => e as {exitCode: number; message: string; hint: string},
    )
    expect(err).toMatchObject({exitCode: 2})
    expect(err!.hint).toMatch(/Debian package redis-server/)
  })

  it('restarts on the same port with every key gone, and stops for good', async () => {
    const server = await startRedisServer()
    const client = new Redis(server.url, {maxRetriesPerRequest: 20})
    client.on('error', () => {})
    try {
      await client.set('k', 'v')
      const pid = server.pid
      await server.restart()
      expect(server.pid).not.toBe(pid)
      expect(await client.get('k')).toBeNull()
    } finally {
      client.disconnect()
      await server.stop()
    }
    expect(server.pid).toBeNull()
  })
})
