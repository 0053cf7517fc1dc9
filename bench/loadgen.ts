/**
 * npm run bench:loadgen [-- --json] [-- --seconds 3] [-- --connections 256] [-- --cpu-runs 3]
 *
 * The open-model generator against a bare node:http server (its own process, 127.0.0.1):
 * does it hold 1,500 and 10,000 req/s within ±1%, and what is the highest rate it holds? Beside
 * it, wrk (closed model, same connections) against the same server: the reference for what the
 * server and this machine can do, so the generator's own overhead shows as a ratio.
 * Then the generator's CPU per request beside wrk's at the same rates (wrk paced by a Lua
 * delay() per connection), --cpu-runs times each, alternating which goes first: median and worst
 * of the ratio. CPU per request is what a generator costs the machine whatever else runs on it.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import Table from 'cli-table3'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {runOpenModel, type OpenModelResult} from '../src/sim/executors/open-model/index.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const json = JSON_OUT
const seconds = numberArg('seconds', 3)
const connections = numberArg('connections', 256)
const cpuRuns = numberArg('cpu-runs', 3)
/** The rates of the CPU comparison: the platform's burst, and ×3 of the whole celebrity-drop peak. */
const CPU_RATES = [1500, 5000]
/** Connections of the CPU comparison: enough for either generator at these rates on loopback. */
const CPU_CONNECTIONS = 64
const CPU_SECONDS = 5
/** The goal for the generator's CPU per request ÷ wrk's. */
const CPU_RATIO_GOAL = 1.5
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100

// the same bare server the HTTP bench uses as its baseline: small JSON, keep-alive
const SERVER = `
const http = require('node:http')
const body = JSON.stringify({id: 1, title: 'Product 1', priceCents: 1999, creatorId: 1})
const s = http.createServer((req, res) => { res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)}); res.end(body) })
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'))
`

async function startServer(): Promise<{url: string; child: ChildProcess}> {
  const child = spawn(process.execPath, ['-e', SERVER], {stdio: ['ignore', 'pipe', 'inherit']})
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(String(d).trim()))
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
  return {url: `http://127.0.0.1:${port}`, child}
}

interface Step {
  target: number
  achieved: number
  /** Achieved within ±1% of the target with no errors and nothing unsent. */
  rateHeld: boolean
  /** Share of sends more than 10 ms late; the shipped guard voids a run above 1%. */
  lateShare: number
  /** Would the shipped guard (1% late sends, 500 ms event-loop stall) have voided this run? */
  guardVoid: string | null
  queued: number
  p50: number
  p99: number
  serviceP99: number
  /** Generator CPU (user + system) per request, µs: its cost, whatever else runs on the machine. */
  cpuUsPerRequest: number
}

async function openModel(url: string, rate: number, stepSeconds = seconds): Promise<Step> {
  const cpu = process.cpuUsage()
  const r: OpenModelResult = await runOpenModel({
    baseUrl: url,
    phases: [{name: 'bench', durationMs: stepSeconds * 1000, arrival: 'constant', rates: {get: rate}}],
    builders: {get: () => ({path: '/products/1'})},
    connections,
    // the stall guard never stops the step, so rate and lateness are both measured;
    // lateness is judged below with the shipped budgets
    maxLagMs: 1e9,
  })
  const used = process.cpuUsage(cpu)
  const s = r.phases[0].requests.get
  const lateShare = s.scheduled ? s.late / s.scheduled : 0
  const guardVoid =
    r.eventLoopLag.max > 500 ? `event-loop stall ${r.eventLoopLag.max.toFixed(0)} ms` : lateShare > 0.01 ? `${(lateShare * 100).toFixed(1)}% sent > 10 ms late` : null
  return {
    target: rate,
    achieved: Math.round(s.achievedRate),
    rateHeld: s.errors + s.unsent === 0 && Math.abs(s.achievedRate - rate) / rate <= 0.01,
    lateShare: Math.round(lateShare * 10000) / 10000,
    guardVoid,
    queued: s.queued,
    p50: s.corrected.p50,
    p99: s.corrected.p99,
    serviceP99: s.service.p99,
    cpuUsPerRequest: s.completed ? Math.round(((used.user + used.system) / s.completed) * 10) / 10 : 0,
  }
}

function wrk(url: string): {rate: number; p99: number | null} | null {
  if (spawnSync('wrk', ['--version']).error) return null
  const out = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `${url}/products/1`], {encoding: 'utf8'}).stdout
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const p99m = /99%\s+([\d.]+)(us|ms|s)/.exec(out)
  const p99 = p99m ? Number(p99m[1]) * ({us: 0.001, ms: 1, s: 1000} as Record<string, number>)[p99m[2]] : null
  return Number.isFinite(rate) ? {rate, p99} : null
}

/** CPU seconds of this process's waited-for children so far (cutime + cstime of /proc/self/stat). */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_S
}

interface CpuPoint {
  rate: number
  generator: {achieved: number; cpuUsPerRequest: number}
  wrk: {achieved: number; cpuUsPerRequest: number}
  /** generator ÷ wrk CPU per request. */
  ratio: number
}

/** wrk paced to about `rate` req/s: each connection waits connections/rate s between requests. */
function wrkPaced(url: string, rate: number, script: string): {achieved: number; cpuUsPerRequest: number} {
  const before = childrenCpuSeconds()
  const out = spawnSync('wrk', ['-t1', `-c${CPU_CONNECTIONS}`, `-d${CPU_SECONDS}s`, '-s', script, `${url}/products/1`], {
    encoding: 'utf8',
    env: {...process.env, WRK_DELAY_MS: String((CPU_CONNECTIONS / rate) * 1000)},
  }).stdout
  const cpu = childrenCpuSeconds() - before
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  return {achieved: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)), cpuUsPerRequest: total ? Math.round((cpu * 1e6) / total) : 0}
}

async function generatorAt(url: string, rate: number): Promise<{achieved: number; cpuUsPerRequest: number}> {
  const cpu = process.cpuUsage()
  const r = await runOpenModel({
    baseUrl: url,
    phases: [{name: 'cpu', durationMs: CPU_SECONDS * 1000, arrival: 'constant', rates: {get: rate}}],
    builders: {get: () => ({path: '/products/1'})},
    connections: CPU_CONNECTIONS,
    maxLagMs: 1e9,
  })
  const used = process.cpuUsage(cpu)
  const s = r.phases[0].requests.get
  return {achieved: Math.round(s.achievedRate), cpuUsPerRequest: s.completed ? Math.round((used.user + used.system) / s.completed) : 0}
}

/** The generator's and wrk's CPU per request at the same rates, `cpuRuns` times each. */
async function cpuVersusWrk(url: string): Promise<CpuPoint[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-loadgen-'))
  const script = path.join(dir, 'pace.lua')
  writeFileSync(script, 'local d = tonumber(os.getenv("WRK_DELAY_MS"))\nfunction delay() return d end\n')
  const points: CpuPoint[] = []
  try {
    for (let i = 0; i < cpuRuns; i++) {
      for (const rate of CPU_RATES) {
        let generator: CpuPoint['generator']
        let w: CpuPoint['wrk']
        if (i % 2 === 0) {
          generator = await generatorAt(url, rate)
          w = wrkPaced(url, rate, script)
        } else {
          w = wrkPaced(url, rate, script)
          generator = await generatorAt(url, rate)
        }
        points.push({rate, generator, wrk: w, ratio: Math.round((generator.cpuUsPerRequest / w.cpuUsPerRequest) * 100) / 100})
      }
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  return points
}

async function main() {
  const loadBefore = loadavg()[0]
  const server = await startServer()
  try {
    // one untimed second first, so JIT warm-up is not charged to the first step
    await openModel(server.url, 1000, 1)
    // wrk before and after the generator's steps: the machine's load drifts, both are shown
    const wrkBefore = wrk(server.url)
    const steps: Step[] = []
    for (const rate of [1500, 10_000]) steps.push(await openModel(server.url, rate))
    // the highest rate reached: climb until the achieved rate falls more than 1% short
    for (const rate of [12_500, 15_000, 17_500, 20_000, 22_500, 25_000, 30_000, 35_000, 40_000]) {
      const s = await openModel(server.url, rate)
      steps.push(s)
      if (!s.rateHeld) break
    }
    const best = steps.filter((s) => s.rateHeld).reduce((m, s) => Math.max(m, s.target), 0)
    const bestKept = steps.filter((s) => s.rateHeld && !s.guardVoid).reduce((m, s) => Math.max(m, s.target), 0)
    const wrkAfter = wrk(server.url)
    const ref = wrkBefore && wrkAfter ? {rate: (wrkBefore.rate + wrkAfter.rate) / 2, p99: wrkAfter.p99, before: wrkBefore.rate, after: wrkAfter.rate} : (wrkBefore ?? wrkAfter)
    const cpu = ref ? await cpuVersusWrk(server.url) : []
    const cpuSummary = CPU_RATES.map((rate) => {
      const rs = cpu.filter((p) => p.rate === rate).map((p) => p.ratio)
      return {rate, medianRatio: median(rs), worstRatio: Math.max(...rs)}
    })
    const result = {
      // other work on the machine steals the generator's and the server's CPU: say how much
      loadAverage1m: Math.round(loadBefore * 100) / 100,
      connections,
      secondsPerStep: seconds,
      steps,
      maxHeldRate: best,
      maxHeldRateOnSchedule: bestKept,
      wrk: ref,
      ratioToWrk: ref ? Math.round((best / ref.rate) * 100) / 100 : null,
      cpuVersusWrk: {connections: CPU_CONNECTIONS, secondsPerStep: CPU_SECONDS, goal: CPU_RATIO_GOAL, points: cpu, summary: cpuSummary, loadAverage1mAfter: Math.round(loadavg()[0] * 100) / 100},
    }
    if (json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n')
      return
    }
    const t = new Table({head: ['generator', 'target/s', 'achieved/s', '±1%', 'late > 10 ms', 'queued', 'p50', 'p99', 'service p99', 'CPU µs/req', 'shipped guard']})
    for (const s of steps) {
      t.push(['livedrop open model', s.target, s.achieved, s.rateHeld ? 'yes' : 'no', `${(s.lateShare * 100).toFixed(2)}%`, s.queued, `${s.p50.toFixed(2)}ms`, `${s.p99.toFixed(2)}ms`, `${s.serviceP99.toFixed(2)}ms`, s.cpuUsPerRequest, s.guardVoid ? `void: ${s.guardVoid}` : 'ok'])
    }
    if (ref) t.push(['wrk (closed model, max; mean of before/after)', '-', Math.round(ref.rate), '-', '-', '-', '-', ref.p99 === null ? '-' : `${ref.p99.toFixed(2)}ms`, '-', '-', 'service time only'])
    process.stdout.write(t.toString() + '\n')
    process.stdout.write(
      `Highest rate held within ±1%: ${best.toLocaleString('en-US')} req/s (${bestKept.toLocaleString('en-US')} req/s also within the late-send budget)` +
        (ref ? `; wrk's closed-model max: ${Math.round(ref.rate).toLocaleString('en-US')} req/s (ratio ${result.ratioToWrk})` : '; wrk not installed (apt-get install -y wrk)') +
        ` — ${connections} connections, ${seconds} s per step, load average ${result.loadAverage1m} on this machine.\n`,
    )
    if (cpu.length) {
      const c = new Table({head: ['rate/s', 'generator achieved', 'generator CPU µs/req', 'wrk achieved', 'wrk CPU µs/req', 'ratio']})
      for (const p of cpu) c.push([p.rate, p.generator.achieved, p.generator.cpuUsPerRequest, p.wrk.achieved, p.wrk.cpuUsPerRequest, `${p.ratio}×`])
      process.stdout.write(c.toString() + '\n')
      for (const x of cpuSummary) process.stdout.write(`CPU per request, generator ÷ wrk at ${x.rate} req/s over ${cpuRuns} runs: median ${x.medianRatio}×, worst ${x.worstRatio}× (goal ≤ ${CPU_RATIO_GOAL}×)\n`)
    }
  } finally {
    server.child.kill()
  }
}

await main()
