/**
 * npm run bench:purge [-- --keys 5000000 --batch-size 5000 --json]
 *
 * On a throwaway database, with --keys expired completed idempotency keys each time:
 *   baseline   one raw `DELETE FROM idempotency_keys WHERE state = 'completed' AND created_at < …`
 *   batched    `purgeIdempotencyKeys` deleting the same number in batches (keys not in a day partition),
 *              resting twice as long as each batch took
 *   partition  the same number in one expired day partition: dropped whole
 * and order p99 latency (placeOrder, 8 concurrent, row strategy) without a purge and during the
 * batched purge (target: within 20%).
 * Env: DATABASE_URL (admin database to create the throwaway one from).
 */
import Table from 'cli-table3'
import {benchDatabase} from './db.js'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {placeOrder} from '../src/core/orders/place-order.js'
import {purgeIdempotencyKeys} from '../src/core/orders/purge.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import {createDropFixture} from '../src/core/catalog/fixture.js'
import {JSON_OUT, numberArg} from './args.js'

const KEYS = numberArg('keys', 5_000_000)
const BATCH = numberArg('batch-size', 5000)
const ORDER_SECONDS = numberArg('order-seconds', 10)
const DAY = 86_400_000
const log = (m: string) => process.stderr.write(m + '\n')

async function main(): Promise<void> {
  const bench = await benchDatabase('purge', 12)
  const db = bench.db
  const out: Record<string, number> = {}
  try {
    const old = new Date(Date.now() - 30 * DAY)
    const oldDay = old.toISOString().slice(0, 10)
    /** Loads KEYS expired completed keys for `day` (its own partition if one exists, else the default). */
    const load = async (tag: string, day: string) => {
      const started = performance.now()
      for (let from = 1; from <= KEYS; from += 1_000_000) {
        const to = Math.min(KEYS, from + 999_999)
        await db.query(
          `INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
           SELECT g % 100000 + 1, $1 || g, $2::date, 'fp', 'completed', 201, '{"id": 1}'::jsonb, $3, $3 FROM generate_series($4::int, $5::int) g`,
          [tag, day, old, from, to],
        )
      }
      await db.exec('ANALYZE idempotency_keys')
      log(`loaded ${KEYS.toLocaleString('en-US')} keys (${tag}) in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }
    const cutoff = new Date(Date.now() - 3 * DAY)

    // baseline: one raw DELETE
    await load('raw-', oldDay)
    let t0 = performance.now()
    const raw = await db.query(`DELETE FROM idempotency_keys WHERE state = 'completed' AND created_at < $1`, [cutoff])
    out.rawSeconds = (performance.now() - t0) / 1000
    out.rawKeysPerSecond = raw.rowCount / out.rawSeconds
    log(`raw DELETE: ${raw.rowCount.toLocaleString('en-US')} keys in ${out.rawSeconds.toFixed(1)} s`)
    await db.exec('VACUUM idempotency_keys_default')

    // orders: latency without a purge, then during the batched purge
    const f = await createDropFixture(db, 2000)
    const drop = await createDrop({db}, {creatorId: f.creatorId, productId: f.productId, stock: 1_000_000_000, startsAt: new Date(), endsAt: new Date(Date.now() + DAY)})
    await startDrop({db}, drop.id)
    let seq = 0
    const orders = async (until: () => boolean) => {
      const h = new LatencyHistogram()
      await Promise.all(
        Array.from({length: 8}, async (_, w) => {
          for (let i = 0; !until(); i++) {
            const s = performance.now()
            await placeOrder({db}, {userId: f.buyerIds[(w * 977 + i) % f.buyerIds.length], dropId: drop.id, qty: 1, idempotencyKey: `o-${seq++}`})
            h.recordMs(performance.now() - s)
          }
        }),
      )
      return h
    }
    await load('batched-', oldDay)
    const quietUntil = performance.now() + ORDER_SECONDS * 1000
    const quiet = await orders(() => performance.now() > quietUntil)
    let purging = true
    t0 = performance.now()
    const [batched, busy] = await Promise.all([
      purgeIdempotencyKeys(db, {olderThanMs: 3 * DAY, batchSize: BATCH}).finally(() => (purging = false)),
      orders(() => !purging),
    ])
    out.batchedSeconds = (performance.now() - t0) / 1000
    out.batchedKeysPerSecond = batched.deleted / out.batchedSeconds
    out.orderP99QuietMs = quiet.percentileMs(99)
    out.orderP99DuringPurgeMs = busy.percentileMs(99)
    out.ordersQuiet = quiet.count
    out.ordersDuringPurge = busy.count
    log(`batched purge: ${batched.deleted.toLocaleString('en-US')} keys in ${out.batchedSeconds.toFixed(1)} s (${batched.batches} batches)`)

    // a whole expired day partition
    await db.query(`SELECT livedrop_ensure_idempotency_partitions($1::date, 1)`, [oldDay])
    await load('part-', oldDay)
    t0 = performance.now()
    const part = await purgeIdempotencyKeys(db, {olderThanMs: 3 * DAY})
    out.partitionSeconds = (performance.now() - t0) / 1000
    out.partitionLockSeconds = part.partitionLockSeconds
    out.partitionKeys = part.deleted
    log(`partition drop: ${part.deleted.toLocaleString('en-US')} keys (${part.partitionsDropped.join(', ')}) in ${out.partitionSeconds.toFixed(3)} s`)
  } finally {
    await bench.drop()
  }

  const ratios = {
    batchedVsRaw: out.batchedKeysPerSecond / out.rawKeysPerSecond,
    orderP99DuringVsQuiet: out.orderP99DuringPurgeMs / out.orderP99QuietMs,
  }
  if (JSON_OUT) {
    process.stdout.write(JSON.stringify({keys: KEYS, batchSize: BATCH, ...out, ratios, targets: {orderP99DuringVsQuiet: 1.2}}, null, 2) + '\n')
    return
  }
  const n = (v: number) => Math.round(v).toLocaleString('en-US')
  const table = new Table({head: ['measure', 'value'], colAligns: ['left', 'right'], style: {head: [], border: []}})
  table.push(
    [`raw DELETE of ${n(KEYS)} keys (baseline)`, `${out.rawSeconds.toFixed(1)} s, ${n(out.rawKeysPerSecond)} keys/s`],
    [`batched purge, batches of ${n(BATCH)}`, `${out.batchedSeconds.toFixed(1)} s, ${n(out.batchedKeysPerSecond)} keys/s`],
    ['batched / raw', `${ratios.batchedVsRaw.toFixed(2)}×`],
    [`day partition of ${n(out.partitionKeys)} keys dropped`, `${out.partitionSeconds.toFixed(3)} s (locks held ${(out.partitionLockSeconds * 1000).toFixed(0)} ms)`],
    ['order p99 without purge', `${out.orderP99QuietMs.toFixed(1)} ms (${n(out.ordersQuiet)} orders)`],
    ['order p99 during batched purge', `${out.orderP99DuringPurgeMs.toFixed(1)} ms (${n(out.ordersDuringPurge)} orders)`],
    ['during / without (target ≤ 1.2×)', `${ratios.orderP99DuringVsQuiet.toFixed(2)}×`],
  )
  console.log(table.toString())
}

await main()
