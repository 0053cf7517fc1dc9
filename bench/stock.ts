/**
 * npm run bench:stock [-- --seconds 3 --rounds 3 --concurrency 16 --json]
 *
 * Orders/s of each stock strategy beside a baseline, in one run, on a throwaway database:
 *   baseline   a bare pg loop: BEGIN; conditional UPDATE of one hot drop row; INSERT order; COMMIT
 *   row        placeOrder (idempotency key claimed, order + outbox + stored answer, hot row last)
 *   buckets    placeOrder on a drop split into 16 bucket rows
 *   redis-gate placeOrder behind the Redis gate (confirmed orders/s), and its sold-out answers/s
 * Targets (2 cores): row ≥ 0.8× baseline; buckets ≥ 2.5× row; redis-gate sold-out ≥ 20,000/s.
 * Env: DATABASE_URL (admin database to create the throwaway one from), REDIS_URL.
 */
import pg from 'pg'
import {randomBytes} from 'node:crypto'
import {Redis} from 'ioredis'
import Table from 'cli-table3'
import {scanKeys} from '../src/core/redis.js'
import {benchDatabase} from './db.js'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {placeOrder} from '../src/core/orders/place-order.js'
import type {EngineDeps} from '../src/core/orders/deps.js'
import type {StockStrategyName} from '../src/core/stock/index.js'
import {createDropFixture, type DropFixture} from '../src/core/catalog/fixture.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const SECONDS = numberArg('seconds', 3)
/** Each measure runs this many times, interleaved with the others; the median is reported (a shared machine is noisy). */
const ROUNDS = numberArg('rounds', 3)
const CONCURRENCY = numberArg('concurrency', 16)
const GATE_CONCURRENCY = numberArg('gate-concurrency', 256)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const BIG_STOCK = 1_000_000_000
const log = (m: string) => process.stderr.write(m + '\n')

/** Runs `workers` loops of fn for SECONDS; returns completed calls per second. */
async function timed(workers: number, fn: (worker: number, i: number) => Promise<unknown>): Promise<number> {
  const until = performance.now() + SECONDS * 1000
  let done = 0
  const started = performance.now()
  await Promise.all(
    Array.from({length: workers}, async (_, w) => {
      for (let i = 0; performance.now() < until; i++) {
        await fn(w, i)
        done++
      }
    }),
  )
  return done / ((performance.now() - started) / 1000)
}

async function liveDrop(deps: EngineDeps, f: DropFixture, strategy: StockStrategyName, stock = BIG_STOCK): Promise<number> {
  const d = await createDrop(deps, {
    creatorId: f.creatorId,
    productId: f.productId,
    stock,
    startsAt: new Date(),
    endsAt: new Date(Date.now() + 3_600_000),
    strategy,
    buckets: 16,
  })
  await startDrop(deps, d.id)
  return d.id
}

async function main(): Promise<void> {
  const bench = await benchDatabase('stock', CONCURRENCY)
  const db = bench.db
  const redis = new Redis(REDIS_URL)
  const prefix = `livedrop-bench:${randomBytes(4).toString('hex')}:`
  const results: Array<{name: string; rate: number; unit: string}> = []
  try {
    const f = await createDropFixture(db, 2000)
    const deps: EngineDeps = {db, redis, redisPrefix: prefix}
    let seq = 0
    const user = (w: number, i: number) => f.buyerIds[(w * 7919 + i) % f.buyerIds.length]

    const hot = await liveDrop(deps, f, 'row')
    const pool = new pg.Pool({connectionString: bench.url, max: CONCURRENCY})
    const drops = {row: await liveDrop(deps, f, 'row'), buckets: await liveDrop(deps, f, 'buckets'), 'redis-gate': await liveDrop(deps, f, 'redis-gate')}
    const samples: Record<string, number[]> = {baseline: [], row: [], buckets: [], 'redis-gate': []}
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}/${ROUNDS}: baseline (bare pg loop: conditional UPDATE + INSERT on one hot row), row, buckets, redis-gate; ${CONCURRENCY} concurrent, ${SECONDS} s each`)
      samples.baseline.push(
        await timed(CONCURRENCY, async (w, i) => {
          const c = await pool.connect()
          try {
            await c.query('BEGIN')
            await c.query({name: 'b.upd', text: 'UPDATE drops SET available = available - $2 WHERE id = $1 AND available >= $2', values: [hot, 1]})
            await c.query({
              name: 'b.ins',
              text: 'INSERT INTO orders (user_id, drop_id, qty, idempotency_key) VALUES ($1, $2, $3, $4)',
              values: [user(w, i), hot, 1, `b-${seq++}`],
            })
            await c.query('COMMIT')
          } finally {
            c.release()
          }
        }),
      )
      for (const strategy of ['row', 'buckets', 'redis-gate'] as const) {
        const dropId = drops[strategy]
        samples[strategy].push(await timed(CONCURRENCY, (w, i) => placeOrder(deps, {userId: user(w, i), dropId, qty: 1, idempotencyKey: `${strategy}-${seq++}`})))
      }
    }
    await pool.end()
    results.push({name: 'baseline (bare pg loop, hot row)', rate: median(samples.baseline), unit: 'orders/s'})
    for (const strategy of ['row', 'buckets', 'redis-gate'] as const) results.push({name: strategy, rate: median(samples[strategy]), unit: 'orders/s'})

    log(`redis-gate sold out: answers from the gate alone, ${GATE_CONCURRENCY} concurrent, ${SECONDS} s`)
    const gone = await liveDrop(deps, f, 'redis-gate', 1)
    await placeOrder(deps, {userId: f.buyerIds[0], dropId: gone, qty: 1, idempotencyKey: 'the-only-one'})
    const soldOut = await timed(GATE_CONCURRENCY, async (w, i) => {
      const r = await placeOrder(deps, {userId: user(w, i), dropId: gone, qty: 1, idempotencyKey: `so-${seq++}`})
      if (r.outcome !== 'sold_out') throw new Error('expected sold out')
    })
    results.push({name: 'redis-gate sold-out answers', rate: soldOut, unit: 'answers/s'})
  } finally {
    // the gate's keys are this run's alone (its own prefix): leave nothing behind in the shared Redis
    await scanKeys(redis, prefix, async (keys) => void (await redis.del(...keys)))
    redis.disconnect()
    await bench.drop()
  }

  const rate = (n: string) => results.find((r) => r.name.startsWith(n))!.rate
  const ratios = {
    rowVsBaseline: rate('row') / rate('baseline'),
    bucketsVsRow: rate('buckets') / rate('row'),
    redisGateVsBaseline: rate('redis-gate') / rate('baseline'),
    soldOutAnswersPerSecond: rate('redis-gate sold-out'),
  }
  const targets = {rowVsBaseline: 0.8, bucketsVsRow: 2.5, soldOutAnswersPerSecond: 20_000}
  if (JSON_OUT) {
    process.stdout.write(JSON.stringify({seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, results, ratios, targets}, null, 2) + '\n')
    return
  }
  const table = new Table({head: ['measure', 'rate', 'unit'], colAligns: ['left', 'right', 'left'], style: {head: [], border: []}})
  for (const r of results) table.push([r.name, Math.round(r.rate).toLocaleString('en-US'), r.unit])
  table.push(
    ['row / baseline', ratios.rowVsBaseline.toFixed(2) + '×', `target ≥ ${targets.rowVsBaseline}×`],
    ['buckets / row', ratios.bucketsVsRow.toFixed(2) + '×', `target ≥ ${targets.bucketsVsRow}×`],
    ['redis-gate / baseline', ratios.redisGateVsBaseline.toFixed(2) + '×', ''],
  )
  console.log(table.toString())
}

await main()
