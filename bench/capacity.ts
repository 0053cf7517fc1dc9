/**
 * npm run bench:capacity [-- --runs 3] [-- --step-seconds 10] [-- --only embedded|postgres] [-- --json]
 *
 * The capacity of scenarios/celebrity-drop.yaml (the highest multiple of its rates that still
 * meets its thresholds, open model: `scenario run --mode capacity`) on two stacks, --runs times
 * each: the embedded Postgres (its own directory under the system temp dir, so the 1,000,000-
 * follower dataset is seeded once and kept for later runs, and nobody else's ./.livedrop is
 * touched), then the Postgres at DATABASE_URL (a throwaway database, seeded by the first run) with
 * two Redis cache nodes: REDIS_URL and a redis-server this bench starts on a free port and stops.
 * Per run: the capacity (× the scenario's rates, and the drop-opens phase's req/s and order
 * attempts/s at that scale), what limited it (the run's own sentence: the failing threshold and
 * each component's CPU), and the machine's load average when the run started. Then the median and
 * the worst. The goal (issue "Capacity"): ×3 on the embedded default.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer, Socket} from 'node:net'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import pg from 'pg'
import {createTable} from '../src/cli/table.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const SCENARIO = 'scenarios/celebrity-drop.yaml'
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Where the embedded database lives between runs (its dataset takes a while to seed). */
const EMBEDDED_DIR = path.join(tmpdir(), 'livedrop-bench-capacity')
/** The goal on the embedded default. */
const GOAL_SCALE = 3

const runs = numberArg('runs', 3)
// 10 s steps: a whole search (8–10 steps, each a fresh drop plus setup) takes 2–4 minutes
const stepSeconds = numberArg('step-seconds', 10)
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : null

interface CapacityFile {
  capacity: number | null
  atLeast: boolean
  limit: string
  limitedBy: string
  answer: {scale: number; total: number; read: number; order: number} | null
  steps: Array<{scale: number; verdict: string}>
}

interface Run {
  loadAverage1m: number
  exitCode: number
  capacity: number | null
  atLeast: boolean
  /** At the capacity, in the drop-opens phase: every request, reads, order attempts (req/s). */
  total: number | null
  read: number | null
  order: number | null
  limitedBy: string
  steps: number
  wallSeconds: number
}

function cli(args: string[]): Promise<{code: number; seconds: number}> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args], {cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit']})
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, seconds: (performance.now() - started) / 1000}))
  })
}

async function series(label: string, dbArgs: string[]): Promise<Run[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-capacity-'))
  const out: Run[] = []
  try {
    for (let i = 0; i < runs; i++) {
      const file = path.join(dir, `run-${i}.json`)
      const loadAverage1m = Math.round(loadavg()[0] * 100) / 100
      const {code, seconds} = await cli(['scenario', 'run', SCENARIO, '--mode', 'capacity', '--step-seconds', String(stepSeconds), '--out', file, ...dbArgs])
      const r = JSON.parse(readFileSync(file, 'utf8')) as CapacityFile
      const run: Run = {
        loadAverage1m,
        exitCode: code,
        capacity: r.capacity,
        atLeast: r.atLeast,
        total: r.answer?.total ?? null,
        read: r.answer?.read ?? null,
        order: r.answer?.order ?? null,
        limitedBy: r.limitedBy,
        steps: r.steps.length,
        wallSeconds: Math.round(seconds),
      }
      out.push(run)
      if (!JSON_OUT) process.stderr.write(`${label} run ${i + 1}/${runs} (load ${loadAverage1m}): ${describe(run)} — ${run.limitedBy} [${run.steps} steps, ${run.wallSeconds} s]\n`)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  return out
}

const describe = (r: Run) => (r.capacity === null ? 'no passing scale' : `${r.atLeast ? '≥ ' : ''}×${r.capacity} (${r.total} req/s, ${r.read} reads/s, ${r.order} orders/s)`)

function summary(label: string, rs: Run[]) {
  const caps = rs.map((r) => r.capacity ?? 0)
  const med = median(caps)
  const worst = rs.reduce((w, r) => ((r.capacity ?? 0) < (w.capacity ?? 0) ? r : w), rs[0])
  return {label, runs: rs, medianScale: med, worstScale: worst.capacity ?? 0, worstReadPerS: worst.read, worstOrdersPerS: worst.order}
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port
      s.close(() => resolve(port))
    })
  })
}

/** A redis-server of this bench's own (no persistence), stopped by stop(). */
async function startRedis(): Promise<{url: string; stop: () => Promise<void>}> {
  const port = await freePort()
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {stdio: 'ignore'})
  const url = `redis://127.0.0.1:${port}`
  // an interrupted bench leaves no redis-server behind
  const killOnExit = () => child.kill('SIGTERM')
  process.once('exit', killOnExit)
  // ready when it accepts a connection
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = new Socket()
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
      s.connect(port, '127.0.0.1')
    })
    if (up) break
    if (i > 100) throw new Error(`redis-server on port ${port} did not start`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off('exit', killOnExit)
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

const results: Array<ReturnType<typeof summary>> = []
if (only === null || only === 'embedded') {
  mkdirSync(EMBEDDED_DIR, {recursive: true})
  results.push(summary('embedded Postgres, memory:3 cache nodes (the default)', await series('embedded', ['--db', EMBEDDED_DIR])))
}
if (only === null || only === 'postgres') {
  const name = `livedrop_bench_capacity_${process.pid}`
  const admin = new pg.Client({connectionString: ADMIN_URL})
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  const second = await startRedis()
  try {
    const cache = `${REDIS_URL},${second.url}`
    results.push(summary(`system Postgres, Redis cache nodes ${cache}`, await series('postgres+redis', ['--db', url.toString(), '--redis', REDIS_URL, '--cache', cache])))
  } finally {
    await second.stop()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

if (JSON_OUT) process.stdout.write(JSON.stringify({scenario: SCENARIO, stepSeconds, goalScale: GOAL_SCALE, results}, null, 2) + '\n')
else {
  for (const s of results) {
    const t = createTable([`${s.label}: ${s.runs.length} runs, --step-seconds ${stepSeconds}`, 'load avg', 'capacity', 'what limited it'])
    s.runs.forEach((r, i) => t.push([`run ${i + 1} (exit ${r.exitCode}, ${r.steps} steps, ${r.wallSeconds} s)`, r.loadAverage1m, describe(r), r.limitedBy]))
    t.push(['median / worst', '', `×${s.medianScale} / ×${s.worstScale} (${s.worstReadPerS ?? 0} reads/s, ${s.worstOrdersPerS ?? 0} orders/s)`, `goal ×${GOAL_SCALE}`])
    process.stdout.write(t.toString() + '\n')
  }
}
