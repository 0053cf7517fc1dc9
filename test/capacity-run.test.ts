import {mkdtempSync, readFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import type {AddressInfo} from 'node:net'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {createEngine, type Engine} from '../src/core/engine.js'
import {buildServer} from '../src/server/app.js'
import {runScenario} from '../src/sim/run/index.js'
import {capacityVerdictError} from '../src/sim/capacity/result.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {runCli} from './helpers/cli.js'
import {scenarioFile} from './helpers/scenario.js'
import {TEST_SECRET} from './helpers/server.js'

/**
 * A capacity search end to end on a real stack (engine, HTTP server, generator thread) whose
 * capacity is known: a proxy in front of the server answers 250 ms late whenever more than
 * LIMIT product reads arrived in the last second, so read.p95 < 100ms holds below LIMIT/s and fails above it.
 */
const LIMIT = 50
const BASE_RATE = 20

let name = ''
let url = ''
let engine: Engine | undefined
let app: Awaited<ReturnType<typeof buildServer>>['app'] | undefined
let proxy: Server | undefined
let proxyUrl = ''

beforeAll(async () => {
  ;({name, url} = await createTestDatabase())
  engine = await createEngine({db: {kind: 'postgres', url}, migrate: false})
  ;({app} = await buildServer(engine, {secret: TEST_SECRET, rateLimitPerSecond: 1e6, rateLimitBurst: 1e6, log: false}))
  const serverUrl = await app.listen({port: 0, host: '127.0.0.1'})
  const arrivals: number[] = []
  proxy = createServer((req, res) => {
    const now = Date.now()
    // the scenario's requests only: not the generator's connection warm-up (HEAD /) nor the secret check
    if (req.url!.startsWith('/products/')) arrivals.push(now)
    while (arrivals.length && arrivals[0] <= now - 1000) arrivals.shift()
    const delay = arrivals.length > LIMIT ? 250 : 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () =>
      setTimeout(async () => {
        const upstream = await request(serverUrl + req.url, {method: req.method as 'GET', headers: req.headers, body: chunks.length ? Buffer.concat(chunks) : undefined})
        const body = Buffer.from(await upstream.body.arrayBuffer())
        res.writeHead(upstream.statusCode, {'content-type': String(upstream.headers['content-type'] ?? 'application/json'), 'content-length': body.length})
        res.end(body)
      }, delay),
    )
  })
  await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve))
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
})

afterAll(async () => {
  proxy?.closeAllConnections()
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()))
  await app?.close()
  await engine?.close()
  if (name) await dropTestDatabase(name)
})

const SCENARIO = `
name: known-capacity
dataset: {users: 300, creators: 3, celebrityFollowers: 100, productsPerCreator: 2, seed: 3}
drop: {stock: 1000, startOffset: 500ms}
arrival: constant
notify: {sample: 0}
generator: {slackMs: 200, maxLateFraction: 0.5, maxLagMs: 2000}
phases: [{name: steady, duration: 2s, rates: {browse_product: ${BASE_RATE}}}]
thresholds: ['read.p95 < 100ms']
`

describe('scenario run --mode capacity', () => {
  it('is a CI gate: a capacity below --min-scale exits 99, and the table says what failed; report re-renders the steps', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'capacity-'))
    const out = path.join(dir, 'capacity.json')
    const r = await runCli(
      ['scenario', 'run', scenarioFile(SCENARIO), '--mode', 'capacity', '--target', proxyUrl, '--db', url, '--secret', TEST_SECRET, '--step-seconds', '2', '--no-probe', '--min-scale', '4', '--max-scale', '4', '--out', out],
      {timeoutMs: 90_000},
    )
    expect(r.code, r.stderr).toBe(99)
    expect(r.stderr).toMatch(/capacity .* is below --min-scale ×4/)
    expect(r.stdout).toMatch(/×4/)
    const html = path.join(dir, 'capacity.html')
    const report = await runCli(['report', out, '--html', html])
    expect(report.code, report.stderr).toBe(0)
    expect(report.stdout).toMatch(/×4/)
    expect(readFileSync(html, 'utf8')).toContain('capacity-chart')
    expect((await runCli(['report', out, '--compare', out])).code).toBe(2)
    const bad = await runCli(['scenario', 'run', scenarioFile(SCENARIO), '--mode', 'capacity', '--min-scale', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--min-scale/)
  }, 120_000)

  it('finds the rate at which the target starts to fail, within the search tolerance', async () => {
    const scenario = parseScenario(SCENARIO)
    const handle = runScenario({scenario, mode: 'capacity', target: proxyUrl, db: {kind: 'postgres', url}, secret: TEST_SECRET, stepSeconds: 2, probe: false, minScale: 1, maxScale: 8})
    const steps: number[] = []
    handle.on('capacityStep', (s) => steps.push(s.scale))
    const r = await handle.result
    expect(r.limit, r.limitedBy).toBe('target')
    // LIMIT/s is ×2.5: the highest pass sits below it and the first fail above it, each within the tolerance
    expect(r.capacity! * BASE_RATE).toBeLessThanOrEqual(LIMIT * 1.1)
    expect(r.firstFail! * BASE_RATE).toBeGreaterThanOrEqual(LIMIT * 0.9)
    expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1 + r.tolerance + 0.01)
    expect(steps).toEqual(r.steps.map((s) => s.scale))
    expect(r.steps[0]).toMatchObject({scale: 1, verdict: 'pass'})
    // every step measured where the CPU went: the in-process generator thread and the local database
    expect(r.steps[0].data.cpu?.components.generator.cpuSeconds).toBeGreaterThan(0)
    expect(capacityVerdictError(r)).toBeNull()
  }, 180_000)
})
