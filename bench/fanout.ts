/**
 * Fan-out benchmark (real Postgres, throwaway database):
 *  1. push fan-out of one event to N followers (default 1,000,000) through drainOutbox, beside the
 *     raw baseline `INSERT INTO notifications SELECT … FROM follows WHERE creator_id = $1` of the
 *     same rows; notifications is truncated between runs; rounds alternate baseline / livedrop;
 *  2. pull path: a celebrity's event committed → visible in a follower's feed (listNotifications),
 *     and → marked pull by a running worker.
 *
 * Usage: npm run bench:fanout -- [--followers 1000000] [--rounds 2] [--page-size 5000] [--json]
 * DATABASE_URL names the server (default postgres://root@127.0.0.1:5432/postgres).
 */
import {benchDatabase} from './db.js'
import {drainOutbox, listNotifications, startFanoutWorkers} from '../src/core/fanout/index.js'
import {createTable} from '../src/cli/table.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import {JSON_OUT, numberArg} from './args.js'

const FOLLOWERS = numberArg('followers', 1_000_000)
const ROUNDS = numberArg('rounds', 2)
const PAGE = numberArg('page-size', 5000)
const PULL_SAMPLES = numberArg('pull-samples', 10)
const log = (m: string) => process.stderr.write(m + '\n')

async function main() {
  const bench = await benchDatabase('fanout', 4)
  const db = bench.db
  try {
    log(`setting up ${FOLLOWERS.toLocaleString('en-US')} followers in ${bench.url.replace(/.*\//, '')} …`)
    await db.exec(`
      INSERT INTO users (id, handle, display_name) VALUES (1, 'celebrity', 'Celebrity');
      INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'Celebrity', true);
      INSERT INTO products (id, creator_id, title, price_cents) VALUES (1, 1, 'thing', 1000);
      INSERT INTO drops (id, product_id, creator_id, starts_at, ends_at, stock_total, available, status)
        VALUES (1, 1, 1, now(), now() + interval '1 hour', 1000, 1000, 'live');`)
    await db.query(
      `INSERT INTO follows (creator_id, user_id, notify, created_at) SELECT 1, g, false, now() - interval '1 day' FROM generate_series(2, $1::bigint + 1) g`,
      [FOLLOWERS],
    )
    await db.query(`UPDATE creators SET follower_count = $1 WHERE id = 1`, [FOLLOWERS])
    await db.exec('VACUUM ANALYZE follows')
    await db.exec('CHECKPOINT')
    const eventId = (await db.query<{id: number}>(`INSERT INTO outbox (event_type, drop_id, creator_id) VALUES ('drop_started', 1, 1) RETURNING id`)).rows[0].id

    const baseline: number[] = []
    const livedrop: number[] = []
    let p95 = 0
    for (let round = 0; round < ROUNDS; round++) {
      await db.exec('TRUNCATE notifications')
      await db.exec('CHECKPOINT')
      let t0 = performance.now()
      const raw = await db.query(
        `INSERT INTO notifications (user_id, event_id, event_type, drop_id) SELECT user_id, $2, 'drop_started', 1 FROM follows WHERE creator_id = $1`,
        [1, eventId],
      )
      const baseSeconds = (performance.now() - t0) / 1000
      if (raw.rowCount !== FOLLOWERS) throw new Error(`baseline inserted ${raw.rowCount}`)
      baseline.push(FOLLOWERS / baseSeconds)

      await db.exec('TRUNCATE notifications')
      await db.exec('CHECKPOINT')
      await db.query(
        `UPDATE outbox SET delivery = NULL, cursor_user_id = NULL, delivered = 0, processed_at = NULL, lease_owner = NULL, lease_until = NULL, created_at = clock_timestamp() WHERE id = $1`,
        [eventId],
      )
      t0 = performance.now()
      const result = await drainOutbox(db, {eventId, workers: 1, pageSize: PAGE, pullThreshold: FOLLOWERS + 1})
      const seconds = (performance.now() - t0) / 1000
      if (result.notifications !== FOLLOWERS) throw new Error(`livedrop delivered ${result.notifications}`)
      livedrop.push(FOLLOWERS / seconds)
      p95 = result.latency.p95
      log(`round ${round + 1}: baseline ${Math.round(baseline.at(-1)!)} rows/s (${baseSeconds.toFixed(2)} s), livedrop ${Math.round(livedrop.at(-1)!)} rows/s (${seconds.toFixed(2)} s)`)
    }

    // pull path: the same creator is now a celebrity above the threshold
    await db.exec('TRUNCATE notifications')
    const visible = new LatencyHistogram()
    const marked = new LatencyHistogram()
    const workers = startFanoutWorkers(db, {workers: 1, pollMs: 50, pageSize: PAGE, pullThreshold: 10_000})
    const markedAt = new Map<number, number>()
    workers.onDelivered((d) => {
      if (d.delivery === 'pull' && !markedAt.has(d.eventId)) markedAt.set(d.eventId, performance.now())
    })
    try {
      for (let i = 0; i < PULL_SAMPLES; i++) {
        const follower = 2 + Math.floor(Math.random() * FOLLOWERS)
        const t0 = performance.now()
        const id = (await db.query<{id: number}>(`INSERT INTO outbox (event_type, drop_id, creator_id) VALUES ('stock_low', 1, 1) RETURNING id`)).rows[0].id
        for (;;) {
          const feed = await listNotifications(db, follower, {limit: 5})
          if (feed.items.some((n) => n.eventId === id)) break
        }
        visible.recordMs(performance.now() - t0)
        while (!markedAt.has(id)) await new Promise((r) => setTimeout(r, 2))
        marked.recordMs(markedAt.get(id)! - t0)
        // let the worker finish scanning for "notify me" followers before the next sample
        while ((await db.query<{n: number}>('SELECT count(*)::int AS n FROM outbox WHERE processed_at IS NULL')).rows[0].n > 0) {
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    } finally {
      await workers.stop()
    }

    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const report = {
      followers: FOLLOWERS,
      rounds: ROUNDS,
      pageSize: PAGE,
      baselineRowsPerSecond: Math.round(mean(baseline)),
      livedropRowsPerSecond: Math.round(mean(livedrop)),
      ratio: Number((mean(livedrop) / mean(baseline)).toFixed(2)),
      pushLatencyP95Ms: p95,
      pullVisibleMs: visible.summary(),
      pullMarkedMs: marked.summary(),
    }
    if (JSON_OUT) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    } else {
      const table = createTable(['fan-out of one event', 'rows/s', 'seconds for all'], ['left', 'right', 'right'])
      table.push(
        ['baseline: INSERT … SELECT FROM follows', report.baselineRowsPerSecond.toLocaleString('en-US'), (FOLLOWERS / report.baselineRowsPerSecond).toFixed(2)],
        [`livedrop push (pages of ${PAGE}, leased, resumable)`, report.livedropRowsPerSecond.toLocaleString('en-US'), (FOLLOWERS / report.livedropRowsPerSecond).toFixed(2)],
        ['ratio livedrop / baseline', `${report.ratio}×`, ''],
      )
      console.log(table.toString())
      const pull = createTable(['pull path, 1 celebrity', 'p50 ms', 'p95 ms', 'max ms'], ['left', 'right', 'right', 'right'])
      pull.push(
        ['commit → in a follower feed', visible.percentileMs(50).toFixed(1), visible.percentileMs(95).toFixed(1), visible.maxMs.toFixed(1)],
        ['commit → worker marked it pull', marked.percentileMs(50).toFixed(1), marked.percentileMs(95).toFixed(1), marked.maxMs.toFixed(1)],
      )
      console.log(pull.toString())
      console.log(`push: event → row visible p95 ${p95.toFixed(0)} ms (last round)`)
    }
  } finally {
    await bench.drop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
