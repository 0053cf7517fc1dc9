/**
 * npm run bench:http [-- --json] [-- --seconds 5]
 *
 * `livedrop serve` (cached GET /products/:id, real Postgres behind it) beside a bare node:http
 * server answering the same product JSON, each in its own process on 127.0.0.1, driven by the
 * same generators from this process: autocannon (closed model, max throughput) and livedrop's
 * open-model generator at a fixed 1,500 req/s (p99 from the intended send time).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import autocannon from 'autocannon'
import Table from 'cli-table3'
import {seed} from '../src/core/catalog/seed.js'
import {getProduct} from '../src/core/catalog/products.js'
import {runOpenModel} from '../src/sim/load/open-model.js'
import {benchDatabase} from './db.js'
import {JSON_OUT, numberArg} from './args.js'

const json = JSON_OUT
const seconds = numberArg('seconds', 5)
const CONNECTIONS = 64
const FIXED_RATE = 1500

const BARE = `
const http = require('node:http')
const body = process.env.BODY
const s = http.createServer((req, res) => { res.writeHead(200, {'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body)}); res.end(body) })
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => process.stdout.write('at http://127.0.0.1:' + s.address().port + '\\n'))
`

function start(args: string[], env: Record<string, string> = {}): Promise<{url: string; child: ChildProcess}> {
  const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, ...env}})
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve({url: m[1], child})
    })
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)))
  })
}

interface Figures {
  maxRps: number
  closedP99: number
  fixedAchieved: number
  fixedP99: number
  fixedServiceP99: number
  /** Set when the generator itself could not keep the schedule (a busy machine): the fixed-rate figures are void. */
  fixedVoid: string | null
}

async function measure(url: string): Promise<Figures> {
  // warm the route (and the cache) before measuring
  await autocannon({url: `${url}/products/1`, connections: 8, duration: 1})
  const closed = await autocannon({url: `${url}/products/1`, connections: CONNECTIONS, duration: seconds})
  const fixed = await runOpenModel({
    baseUrl: url,
    phases: [{name: 'fixed', durationMs: seconds * 1000, arrival: 'constant', rates: {product: FIXED_RATE}}],
    builders: {product: () => ({path: '/products/1'})},
    connections: CONNECTIONS,
  })
  const stats = fixed.phases[0].requests.product
  return {
    maxRps: Math.round(closed.requests.average),
    closedP99: closed.latency.p99,
    fixedAchieved: Math.round(stats.achievedRate),
    fixedP99: Number(stats.corrected.p99.toFixed(2)),
    fixedServiceP99: Number(stats.service.p99.toFixed(2)),
    fixedVoid: fixed.stall?.reason ?? null,
  }
}

const bench = await benchDatabase('http')
const servers: ChildProcess[] = []
try {
  await seed(bench.db, {users: 1000, creators: 10, celebrities: 1, celebrityFollowers: 500, productsPerCreator: 3, seed: 42, reset: false})
  const product = await getProduct(bench.db, 1)
  const bare = await start(['-e', BARE], {BODY: JSON.stringify(product)})
  servers.push(bare.child)
  const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
  const serve = await start([bin, 'serve', '--port', '0', '--db', bench.url, '--workers-fanout', '0', '--rate-limit', '1000000'])
  servers.push(serve.child)

  const baseline = await measure(bare.url)
  const livedrop = await measure(serve.url)
  const ratio = Number((livedrop.maxRps / baseline.maxRps).toFixed(2))
  const result = {seconds, connections: CONNECTIONS, baseline, serve: livedrop, ratio, targets: {ratio: 0.4, fixedP99Ms: 10}}
  if (json) console.log(JSON.stringify(result, null, 2))
  else {
    const t = new Table({head: ['server', 'max req/s (autocannon)', 'closed p99 ms', `open ${FIXED_RATE}/s achieved`, 'p99 ms (corrected)', 'service p99 ms']})
    t.push(['bare node:http (baseline)', baseline.maxRps, baseline.closedP99, baseline.fixedAchieved, baseline.fixedP99, baseline.fixedServiceP99])
    t.push(['livedrop serve GET /products/1', livedrop.maxRps, livedrop.closedP99, livedrop.fixedAchieved, livedrop.fixedP99, livedrop.fixedServiceP99])
    console.log(t.toString())
    for (const [name, f] of [['baseline', baseline], ['serve', livedrop]] as const) if (f.fixedVoid) console.log(`${name}: fixed-rate run VOID (${f.fixedVoid})`)
    console.log(`throughput ratio serve/bare: ${ratio}× (target ≥ 0.4×); serve p99 at ${FIXED_RATE} req/s: ${livedrop.fixedP99} ms (target ≤ 10 ms)`)
  }
} finally {
  for (const s of servers) s.kill('SIGTERM')
  await bench.drop()
}
