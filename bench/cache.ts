/**
 * npm run bench:cache [-- --json]
 * 1. ring lookups/s beside plain modulo hashing (hash32(key) % n);
 * 2. cached product reads on in-process nodes beside reading the embedded database directly;
 * 3. on two redis-servers of our own: reads through the cache (near cache off, so every read is a
 *    Redis GET) beside raw ioredis GETs of the same keys at the same concurrency.
 * Each phase is bounded in count and time.
 */
import {Redis} from 'ioredis'
import {createTable} from '../src/cli/table.js'
import {hash32} from '../src/core/hash.js'
import {HashRing} from '../src/core/cache/ring.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {createCatalogCache, type CatalogCache} from '../src/core/cache/catalog-cache.js'
import {createProduct, getProduct} from '../src/core/catalog/products.js'
import {openDb} from '../src/core/db/index.js'
import {migrate} from '../src/core/db/migrate.js'
import {startRedis} from '../test/cache-servers.js'
import {JSON_OUT} from './args.js'
import {median} from './median.js'

const json = JSON_OUT
const PHASE_MS = 2000
const CONCURRENCY = 64

interface Row {
  measure: string
  livedrop: number
  baseline: number
  baselineName: string
  ratio: number
  target: string
}

/** Runs fn in a loop for about ms (at least once), returns operations per second. */
function rateSync(ms: number, batch: number, fn: () => void): number {
  let ops = 0
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    fn()
    ops += batch
    now = performance.now()
  }
  return ops / ((now - start) / 1000)
}

/** CONCURRENCY workers calling fn until ms pass (or maxOps); returns operations per second. */
async function rateAsync(ms: number, maxOps: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let ops = 0
  const start = performance.now()
  const deadline = start + ms
  await Promise.all(
    Array.from({length: CONCURRENCY}, async (_, w) => {
      for (let i = w; performance.now() < deadline && ops < maxOps; i += CONCURRENCY) {
        await fn(i)
        ops++
      }
    }),
  )
  return ops / ((performance.now() - start) / 1000)
}


const rows: Row[] = []
const add = (measure: string, livedrop: number, baselineName: string, baseline: number, target: string) =>
  rows.push({measure, livedrop: Math.round(livedrop), baselineName, baseline: Math.round(baseline), ratio: livedrop / baseline, target})

// 1. ring
{
  const keys = Array.from({length: 100_000}, (_, i) => `product:${i}`)
  const ring = new HashRing(Array.from({length: 8}, (_, i) => `redis://10.0.0.${i}:6379`))
  let sink = 0
  // alternating rounds, median of each: other jobs' load then hits both alike
  const ringRounds: number[] = []
  const modRounds: number[] = []
  for (let round = 0; round < 3; round++) {
    ringRounds.push(
      rateSync(PHASE_MS / 2, keys.length, () => {
        for (let i = 0; i < keys.length; i++) sink += ring.lookupIndex(hash32(keys[i]))
      }),
    )
    modRounds.push(
      rateSync(PHASE_MS / 2, keys.length, () => {
        for (let i = 0; i < keys.length; i++) sink += hash32(keys[i]) % 8
      }),
    )
  }
  const ringRate = median(ringRounds)
  const modRate = median(modRounds)
  if (sink === -1) console.log(sink)
  add('ring lookups/s (8 nodes × 160 vnodes)', ringRate, 'hash % n', modRate, '≥ 5,000,000/s')
}

// a small catalog in the embedded database
const db = await openDb({kind: 'embedded', dir: null})
await migrate(db)
await db.query(`INSERT INTO users (id, handle, display_name) VALUES (1, 'c', 'C')`)
await db.query(`INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'C', true)`)
const ids: number[] = []
for (let i = 0; i < 1000; i++) ids.push((await createProduct({db}, {creatorId: 1, title: `Product ${i}`, description: 'x'.repeat(200), priceCents: i})).id)
const pick = (i: number) => ids[(i * 7919) % ids.length]

// 2. memory nodes
{
  const cache = await createCatalogCache({db, nodes: await createCacheNodes('memory:4')})
  for (const id of ids) await cache.product(id)
  const cached = await rateAsync(PHASE_MS, 5_000_000, (i) => cache.product(pick(i)))
  const direct = await rateAsync(PHASE_MS, 200_000, (i) => getProduct(db, pick(i)))
  add('cached product reads/s, memory:4 nodes', cached, 'database reads (embedded Postgres)', direct, '≥ 200,000/s')
  await cache.close()
}

// 3. two real Redis nodes of our own
const servers = await Promise.all([startRedis(), startRedis()])
try {
  const spec = servers.map((s) => s.url).join(',')
  const warm = async (cache: CatalogCache) => {
    for (const id of ids) await cache.product(id)
  }
  const remote = await createCatalogCache({db, nodes: await createCacheNodes(spec), nearTtlMs: 0, hotThreshold: Number.MAX_SAFE_INTEGER})
  await warm(remote)
  // raw baseline: the same keys and values, GET on the node the ring chose, one client per node
  const clients = servers.map((s) => new Redis(s.url))
  const ring = new HashRing(spec.split(','))
  const keyOf = new Map(ids.map((id) => [id, `livedrop:cache:p:${id}`]))
  const clientOf = new Map(ids.map((id) => [id, clients[spec.split(',').indexOf(ring.lookup(`p:${id}`))]]))
  const rawGet = async (i: number) => {
    const id = pick(i)
    const v = await clientOf.get(id)!.get(keyOf.get(id)!)
    if (v === null) throw new Error(`bench: ${keyOf.get(id)} missing on its node`)
    return JSON.parse(v)
  }
  // alternate short rounds and keep the median of each, so load from elsewhere hits both alike
  const before = remote.stats()
  const cacheRounds: number[] = []
  const rawRounds: number[] = []
  for (let round = 0; round < 3; round++) {
    cacheRounds.push(await rateAsync(PHASE_MS / 2, 1_000_000, (i) => remote.product(pick(i))))
    rawRounds.push(await rateAsync(PHASE_MS / 2, 1_000_000, rawGet))
  }
  const viaCache = median(cacheRounds)
  const raw = median(rawRounds)
  const after = remote.stats()
  if (after.misses !== before.misses) throw new Error('bench: the cache missed during the Redis phase; figures would mix in the database')
  add(`cached reads/s, 2 Redis nodes, near cache off (c=${CONCURRENCY})`, viaCache, 'raw ioredis GET + JSON.parse', raw, '≥ 0.5× raw')
  const nearOn = await createCatalogCache({db, nodes: await createCacheNodes(spec)})
  await warm(nearOn)
  const withNear = await rateAsync(PHASE_MS, 5_000_000, (i) => nearOn.product(pick(i)))
  add(`cached reads/s, 2 Redis nodes, near cache 1 s (c=${CONCURRENCY})`, withNear, 'raw ioredis GET + JSON.parse', raw, '-')
  clients.forEach((c) => c.disconnect())
  await remote.close()
  await nearOn.close()
} finally {
  await Promise.all(servers.map((s) => s.kill()))
  await db.close()
}

if (json) {
  console.log(JSON.stringify({node: process.version, concurrency: CONCURRENCY, phaseMs: PHASE_MS, rows}, null, 2))
} else {
  const table = createTable(['measure', 'livedrop', 'baseline', 'baseline is', 'ratio', 'target'], ['left', 'right', 'right', 'left', 'right', 'left'])
  for (const r of rows) table.push([r.measure, r.livedrop.toLocaleString('en-US'), r.baseline.toLocaleString('en-US'), r.baselineName, `${r.ratio.toFixed(2)}×`, r.target])
  console.log(table.toString())
}
