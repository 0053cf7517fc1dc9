/**
 * npm run bench:orders [-- --rounds 3 --buyers 20000 --concurrency 16 --pgbench-seconds 10 --json]
 *
 * Orders end to end, as a user pays for them: the whole command
 *   livedrop drop run --buyers 20000 --stock 20000 --concurrency 16 --retry-rate 0 --qty 1 --strategy row|buckets
 * (CLI start, migration, 20,000 buyers created, every order with its idempotency key, outbox event
 * and stored answer, the invariant checks), timed as orders in the table ÷ the command's wall time,
 * beside pgbench's minimal hot-row transaction at the same 16 clients in the same run:
 *   BEGIN; UPDATE stock SET stock = stock - 1 WHERE id = 1 AND stock >= 1; INSERT an order; END
 * Each round runs the three once, interleaved (a shared machine is noisy); the ratios of every
 * round are reported with their median and worst. --stock equals --buyers so every buyer orders.
 * Targets (2 cores): row ≥ 0.8× pgbench; buckets ≥ 2.5× row.
 * Needs pgbench (Debian: postgresql-contrib or postgresql-client). Env: DATABASE_URL (admin database).
 */
import {spawn, spawnSync} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import Table from 'cli-table3'
import {benchDatabase} from './db.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const ROUNDS = numberArg('rounds', 3)
const BUYERS = numberArg('buyers', 20_000)
const CONCURRENCY = numberArg('concurrency', 16)
const PGBENCH_SECONDS = numberArg('pgbench-seconds', 10)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const TARGETS = {rowVsPgbench: 0.8, bucketsVsRow: 2.5}
const log = (m: string) => process.stderr.write(m + '\n')

const PGBENCH_SETUP = `
  CREATE TABLE bench_stock (id int PRIMARY KEY, stock bigint NOT NULL);
  INSERT INTO bench_stock VALUES (1, 1000000000);
  CREATE TABLE bench_orders (id bigserial PRIMARY KEY, user_id int NOT NULL, stock_id int NOT NULL, qty int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());`

const PGBENCH_SCRIPT = `\\set uid random(1, ${BUYERS})
BEGIN;
UPDATE bench_stock SET stock = stock - 1 WHERE id = 1 AND stock >= 1;
INSERT INTO bench_orders (user_id, stock_id, qty) VALUES (:uid, 1, 1);
END;
`

function run(command: string, args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? 1, stdout, stderr}))
  })
}

/** pgbench's transactions per second (without connection time) for the hot-row script. */
async function pgbench(scriptFile: string): Promise<number> {
  const bench = await benchDatabase('pgbench', 1)
  try {
    await bench.db.exec(PGBENCH_SETUP)
    const r = await run('pgbench', ['-n', '-c', String(CONCURRENCY), '-j', '2', '-T', String(PGBENCH_SECONDS), '-f', scriptFile, bench.url])
    const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout) ?? /tps = ([\d.]+)/.exec(r.stdout)
    if (r.code !== 0 || !tps) throw new Error(`pgbench failed (exit ${r.code}): ${r.stderr || r.stdout}`)
    return Number(tps[1])
  } finally {
    await bench.drop()
  }
}

/** The whole `drop run` command on a fresh database: confirmed orders in the table ÷ wall seconds. */
async function dropRun(strategy: 'row' | 'buckets'): Promise<{rate: number; orders: number; seconds: number}> {
  const bench = await benchDatabase(`orders_${strategy}`, 1)
  try {
    const args = [path.join(ROOT, 'bin/run.js'), 'drop', 'run', '--db', bench.url, '--strategy', strategy, '--buyers', String(BUYERS), '--stock', String(BUYERS)]
    args.push('--concurrency', String(CONCURRENCY), '--retry-rate', '0', '--qty', '1', '--json')
    const started = performance.now()
    const r = await run(process.execPath, args)
    const seconds = (performance.now() - started) / 1000
    if (r.code !== 0) throw new Error(`drop run --strategy ${strategy} failed (exit ${r.code}): ${(r.stderr + r.stdout).slice(-2000)}`)
    const {rows} = await bench.db.query<{n: number}>(`SELECT count(*)::int AS n FROM orders WHERE status = 'confirmed'`)
    return {rate: rows[0].n / seconds, orders: rows[0].n, seconds}
  } finally {
    await bench.drop()
  }
}

async function main(): Promise<void> {
  if (spawnSync('pgbench', ['--version']).error) {
    throw new Error('pgbench is not installed: apt-get install -y postgresql-contrib (or postgresql-client)')
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-bench-orders-'))
  const scriptFile = path.join(dir, 'hot-row.sql')
  writeFileSync(scriptFile, PGBENCH_SCRIPT)
  const rounds: Array<{pgbench: number; row: number; buckets: number; rowVsPgbench: number; bucketsVsRow: number}> = []
  try {
    for (let i = 1; i <= ROUNDS; i++) {
      log(`round ${i}/${ROUNDS}: pgbench (${CONCURRENCY} clients, ${PGBENCH_SECONDS} s)`)
      const pg = await pgbench(scriptFile)
      log(`round ${i}/${ROUNDS}: drop run --strategy row (${BUYERS} buyers, concurrency ${CONCURRENCY})`)
      const row = await dropRun('row')
      log(`round ${i}/${ROUNDS}: drop run --strategy buckets`)
      const buckets = await dropRun('buckets')
      rounds.push({pgbench: pg, row: row.rate, buckets: buckets.rate, rowVsPgbench: row.rate / pg, bucketsVsRow: buckets.rate / row.rate})
      log(`  pgbench ${pg.toFixed(0)}/s, row ${row.rate.toFixed(0)}/s (${row.orders} in ${row.seconds.toFixed(1)} s), buckets ${buckets.rate.toFixed(0)}/s (${buckets.orders} in ${buckets.seconds.toFixed(1)} s)`)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
  const worst = (xs: number[]) => sorted(xs)[0]
  const of = (k: keyof (typeof rounds)[number]) => rounds.map((r) => r[k])
  const summary = {
    rowVsPgbench: {median: median(of('rowVsPgbench')), worst: worst(of('rowVsPgbench'))},
    bucketsVsRow: {median: median(of('bucketsVsRow')), worst: worst(of('bucketsVsRow'))},
  }
  if (JSON_OUT) {
    process.stdout.write(JSON.stringify({buyers: BUYERS, concurrency: CONCURRENCY, pgbenchSeconds: PGBENCH_SECONDS, rounds, summary, targets: TARGETS}, null, 2) + '\n')
    return
  }
  const table = new Table({head: ['round', 'pgbench tx/s', 'row orders/s', 'buckets orders/s', 'row / pgbench', 'buckets / row'], colAligns: ['left', 'right', 'right', 'right', 'right', 'right'], style: {head: [], border: []}})
  const x = (v: number) => v.toFixed(2) + '×'
  rounds.forEach((r, i) => table.push([String(i + 1), r.pgbench.toFixed(0), r.row.toFixed(0), r.buckets.toFixed(0), x(r.rowVsPgbench), x(r.bucketsVsRow)]))
  table.push(['median', '', '', '', x(summary.rowVsPgbench.median), x(summary.bucketsVsRow.median)])
  table.push(['worst', '', '', '', x(summary.rowVsPgbench.worst), x(summary.bucketsVsRow.worst)])
  table.push(['target', '', '', '', `≥ ${TARGETS.rowVsPgbench}×`, `≥ ${TARGETS.bucketsVsRow}×`])
  console.log(table.toString())
}

await main()
