/**
 * npm run bench:http [-- --json] [-- --seconds 5] [-- --runs 3]
 *
 * `livedrop serve` (cached GET /products/1, real Postgres behind it) beside a bare node:http
 * server answering the same product JSON, each in its own process on 127.0.0.1, driven by the
 * same generators from this process: autocannon (closed model, max throughput, 64 connections)
 * and livedrop's open-model generator at a fixed 1,500 req/s (p99 from the intended send time).
 * Each run measures both servers back to back (the order alternates between runs, so a drift in
 * the machine's load does not always favour the same one) and gives the ratio serve/bare; beside
 * it each server's own CPU per request (from /proc), which other work on the machine disturbs
 * less than throughput does. Prints every run, then the median and the worst ratio.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {fileURLToPath} from 'node:url'
import autocannon from 'autocannon'
import Table from 'cli-table3'
import {seed} from '../src/core/catalog/seed.js'
import {getProduct} from '../src/core/catalog/products.js'
import {runOpenModel} from '../src/sim/executors/open-model/index.js'
import {benchDatabase} from './db.js'
import {JSON_OUT, numberArg} from './args.js'
import {median} from './median.js'

const json = JSON_OUT
const seconds = numberArg('seconds', 5)
const runs = numberArg('runs', 3)
const CONNECTIONS = 64
const FIXED_RATE = 1500
/** The goal for serve ÷ bare at the same connections. */
const RATIO_GOAL = 0.9
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100

const BARE = `
const http = require('node:http')
const body = process.env.BODY
const s = http.createServer((req, res) => { res.writeHead(200, {'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body)}); res.end(body) })
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => process.stdout.write('at http://127.0.0.1:' + s.address().port + '\\n'))
`

interface Server {
  name: string
  url: string
  child: ChildProcess
}

function start(name: string, args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, ...env}})
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve({name, url: m[1], child})
    })
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)))
  })
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  // the command name (field 2) may hold spaces: count fields after its closing parenthesis
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
}

interface Figures {
  maxRps: number
  closedP99: number
  /** The server's own CPU per answered request during the closed-model run, µs. */
  cpuUsPerRequest: number
  fixedAchieved: number
  fixedP99: number
  fixedServiceP99: number
  /** Set when the generator itself could not keep the schedule (a busy machine): the fixed-rate figures are void. */
  fixedVoid: string | null
}

async function measure(server: Server): Promise<Figures> {
  const url = `${server.url}/products/1`
  // warm the route (and the cache) before measuring
  await autocannon({url, connections: 8, duration: 1})
  const cpuBefore = cpuSeconds(server.child.pid!)
  const closed = await autocannon({url, connections: CONNECTIONS, duration: seconds})
  const cpu = cpuSeconds(server.child.pid!) - cpuBefore
  const fixed = await runOpenModel({
    baseUrl: server.url,
    phases: [{name: 'fixed', durationMs: seconds * 1000, arrival: 'constant', rates: {product: FIXED_RATE}}],
    builders: {product: () => ({path: '/products/1'})},
    connections: CONNECTIONS,
  })
  const stats = fixed.phases[0].requests.product
  return {
    maxRps: Math.round(closed.requests.average),
    closedP99: closed.latency.p99,
    cpuUsPerRequest: closed.requests.total > 0 ? Math.round((cpu * 1e6) / closed.requests.total) : 0,
    fixedAchieved: Math.round(stats.achievedRate),
    fixedP99: Number(stats.corrected.p99.toFixed(2)),
    fixedServiceP99: Number(stats.service.p99.toFixed(2)),
    fixedVoid: fixed.stall?.reason ?? null,
  }
}

interface Run {
  loadAverage1m: number
  bare: Figures
  serve: Figures
  /** serve ÷ bare max req/s. */
  ratio: number
  /** bare ÷ serve CPU per request: the same ratio as the CPU each answer costs. */
  cpuRatio: number
}

const round2 = (x: number) => Math.round(x * 100) / 100

const bench = await benchDatabase('http')
const servers: ChildProcess[] = []
try {
  await seed(bench.db, {users: 1000, creators: 10, celebrities: 1, celebrityFollowers: 500, productsPerCreator: 3, seed: 42, reset: false})
  const product = await getProduct(bench.db, 1)
  const bare = await start('bare', ['-e', BARE], {BODY: JSON.stringify(product)})
  servers.push(bare.child)
  const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
  const serve = await start('serve', [bin, 'serve', '--port', '0', '--db', bench.url, '--workers-fanout', '0', '--rate-limit', '1000000'])
  servers.push(serve.child)

  const results: Run[] = []
  for (let i = 0; i < runs; i++) {
    const loadAverage1m = round2(loadavg()[0])
    const figures: Record<string, Figures> = {}
    for (const s of i % 2 === 0 ? [bare, serve] : [serve, bare]) figures[s.name] = await measure(s)
    results.push({
      loadAverage1m,
      bare: figures.bare,
      serve: figures.serve,
      ratio: round2(figures.serve.maxRps / figures.bare.maxRps),
      cpuRatio: round2(figures.bare.cpuUsPerRequest / figures.serve.cpuUsPerRequest),
    })
  }
  const ratios = results.map((r) => r.ratio)
  const summary = {
    medianRatio: median(ratios),
    worstRatio: Math.min(...ratios),
    medianCpuRatio: median(results.map((r) => r.cpuRatio)),
    worstCpuRatio: Math.min(...results.map((r) => r.cpuRatio)),
  }
  const result = {seconds, connections: CONNECTIONS, runs: results, ...summary, targets: {ratio: RATIO_GOAL, fixedP99Ms: 10}}
  if (json) console.log(JSON.stringify(result, null, 2))
  else {
    const t = new Table({head: ['run (load avg)', 'server', 'max req/s (autocannon)', 'closed p99 ms', 'server CPU µs/req', `open ${FIXED_RATE}/s achieved`, 'p99 ms (corrected)', 'service p99 ms']})
    results.forEach((r, i) => {
      t.push([`${i + 1} (${r.loadAverage1m})`, 'bare node:http (baseline)', r.bare.maxRps, r.bare.closedP99, r.bare.cpuUsPerRequest, r.bare.fixedAchieved, r.bare.fixedP99, r.bare.fixedServiceP99])
      t.push(['', 'livedrop serve GET /products/1', r.serve.maxRps, r.serve.closedP99, r.serve.cpuUsPerRequest, r.serve.fixedAchieved, r.serve.fixedP99, r.serve.fixedServiceP99])
      t.push(['', 'ratio serve/bare', `${r.ratio}×`, '', `${r.cpuRatio}×`, '', '', ''])
    })
    console.log(t.toString())
    for (const [i, r] of results.entries()) for (const [name, f] of [['bare', r.bare], ['serve', r.serve]] as const) if (f.fixedVoid) console.log(`run ${i + 1} ${name}: fixed-rate run VOID (${f.fixedVoid})`)
    console.log(
      `throughput ratio serve/bare over ${runs} runs: median ${summary.medianRatio}×, worst ${summary.worstRatio}× (goal ≥ ${RATIO_GOAL}×); ` +
        `CPU per request bare/serve: median ${summary.medianCpuRatio}×, worst ${summary.worstCpuRatio}×`,
    )
  }
} finally {
  for (const s of servers) s.kill('SIGTERM')
  await bench.drop()
}
