/**
 * npm run bench:loadgen [-- --json] [-- --seconds 3] [-- --connections 256]
 *
 * The open-model generator against a bare node:http server (its own process, 127.0.0.1):
 * does it hold 1,500 and 10,000 req/s within ±1%, and what is the highest rate it holds? Beside
 * it, wrk (closed model, same connections) against the same server: the reference for what the
 * server and this machine can do, so the generator's own overhead shows as a ratio.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import Table from 'cli-table3'
import {loadavg} from 'node:os'
import {runOpenModel, type OpenModelResult} from '../src/sim/executors/open-model/index.js'
import {JSON_OUT, numberArg} from './args.js'

const json = JSON_OUT
const seconds = numberArg('seconds', 3)
const connections = numberArg('connections', 256)

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
  } finally {
    server.child.kill()
  }
}

await main()
