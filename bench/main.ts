/**
 * npm run bench:main [-- --runs 10 --pg-runs 3 --json]
 * The main job as a user runs it: `npm start` (scenarios/celebrity-drop.yaml at the platform's full
 * targets, 1,000,000-follower celebrity, embedded Postgres in ./.livedrop) --runs times in a row,
 * then the same scenario on the Postgres at DATABASE_URL with Redis cache nodes at REDIS_URL
 * --pg-runs times (a throwaway database, seeded by the first of them). For each: exit code, read /
 * order / notify p95, the worst per-second read p99 while the drop opens, wall time, and the cores
 * the host took from this virtual machine meanwhile (steal: a slower machine); then the
 * median and the worst of each against the goals of issue "The main job holds".
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import pg from 'pg'
import {createTable} from '../src/cli/table.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const SCENARIO = 'scenarios/celebrity-drop.yaml'
const READ_TYPES = ['browse_product', 'browse_drop', 'list_followers', 'notifications']
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Figures {
  exitCode: number
  readP95: number
  orderP95: number
  notifyP95: number
  /** The worst per-second p99 of any read type during the drop-opens phase. */
  dropOpenReadP99: number
  wallSeconds: number
  /** Cores the host took from this virtual machine during the run (/proc/stat steal): a slower machine. */
  stealCores: number
}

const GOALS: Record<keyof Omit<Figures, 'exitCode'>, number | null> = {readP95: 20, orderP95: 50, notifyP95: 1000, dropOpenReadP99: 100, wallSeconds: null, stealCores: null}

function run(args: string[]): Promise<{code: number; seconds: number}> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args], {cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit']})
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, seconds: (performance.now() - started) / 1000}))
  })
}

interface RunFile {
  thresholds: Array<{expression: string; scope: string; actual: number | null}>
  series: Record<string, {phase: string; types: Record<string, {p99: number}>}>
  stats: {cpu?: {machine?: {meanStealCores?: number} | null} | null}
}

function figures(file: string, code: number, seconds: number): Figures {
  const r = JSON.parse(readFileSync(file, 'utf8')) as RunFile
  const threshold = (metric: string) => r.thresholds.find((t) => t.scope === 'run' && t.expression.startsWith(`${metric} `))?.actual ?? NaN
  let dropOpenReadP99 = 0
  for (const second of Object.values(r.series)) {
    if (second.phase !== 'drop-opens') continue
    for (const type of READ_TYPES) dropOpenReadP99 = Math.max(dropOpenReadP99, second.types[type]?.p99 ?? 0)
  }
  const stealCores = r.stats.cpu?.machine?.meanStealCores ?? NaN
  return {exitCode: code, readP95: threshold('read.p95'), orderP95: threshold('order.p95'), notifyP95: threshold('notify.p95'), dropOpenReadP99, wallSeconds: seconds, stealCores}
}

async function series(label: string, runs: number, extraArgs: string[]): Promise<Figures[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-main-'))
  const out: Figures[] = []
  try {
    for (let i = 0; i < runs; i++) {
      const file = path.join(dir, `run-${i}.json`)
      const {code, seconds} = await run(['scenario', 'run', SCENARIO, '--out', file, ...extraArgs])
      const f = figures(file, code, seconds)
      out.push(f)
      if (!JSON_OUT) process.stderr.write(`${label} run ${i + 1}/${runs}: exit ${code}, read p95 ${f.readP95.toFixed(1)} ms, order p95 ${f.orderP95.toFixed(1)} ms, notify p95 ${f.notifyP95.toFixed(0)} ms, drop-open read p99 ${f.dropOpenReadP99.toFixed(0)} ms, ${seconds.toFixed(1)} s, host steal ${f.stealCores.toFixed(2)} cores\n`)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  return out
}

function summary(runs: Figures[]) {
  const keys = Object.keys(GOALS) as Array<keyof typeof GOALS>
  return {
    runs: runs.length,
    exitCodes: runs.map((r) => r.exitCode),
    figures: Object.fromEntries(keys.map((k) => [k, {median: median(runs.map((r) => r[k])), worst: Math.max(...runs.map((r) => r[k])), goal: GOALS[k]}])),
  }
}

const results: Record<string, ReturnType<typeof summary>> = {}
const embeddedRuns = numberArg('runs', 10)
if (embeddedRuns > 0) results.embedded = summary(await series('embedded', embeddedRuns, []))

const pgRuns = numberArg('pg-runs', 3)
if (pgRuns > 0) {
  const name = `livedrop_bench_main_${process.pid}`
  const admin = new pg.Client({connectionString: ADMIN_URL})
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  try {
    results.postgres = summary(await series('postgres+redis', pgRuns, ['--db', url.toString(), '--redis', REDIS_URL, '--cache', REDIS_URL]))
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

if (JSON_OUT) {
  process.stdout.write(JSON.stringify(results, null, 2) + '\n')
} else {
  const units: Record<string, string> = {wallSeconds: ' s', stealCores: ' cores'}
  const unit = (k: string) => units[k] ?? ' ms'
  for (const [label, s] of Object.entries(results)) {
    const t = createTable([`${label}: ${s.runs} runs, exits ${s.exitCodes.join(' ')}`, 'median', 'worst', 'goal'])
    for (const [k, v] of Object.entries(s.figures)) t.push([k, v.median.toFixed(1) + unit(k), v.worst.toFixed(1) + unit(k), v.goal === null ? '' : `≤ ${v.goal}${unit(k)}`])
    process.stdout.write(t.toString() + '\n')
  }
}
