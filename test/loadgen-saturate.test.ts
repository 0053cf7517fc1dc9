import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ServiceUnreachableError} from '../src/core/errors.js'
import {saturate, saturationPlan} from '../src/sim/load/saturate.js'
import {loadScenario} from '../src/sim/scenario/loader.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'
import {ROOT} from './helpers/cli.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import {LatencyHistogram} from '../src/core/histogram.js'

let target: TestTarget
// a server with 2 "workers": each request takes 20 ms and at most 2 run at once, so
// throughput tops out near 100/s and latency grows with queueing beyond 2 connections
let busy = 0
const waiting: Array<() => void> = []
beforeAll(async () => {
  target = await startTestTarget({delayMs: () => 0})
  target.server.removeAllListeners('request')
  target.server.on('request', (req, res) => {
    const serve = () => {
      busy++
      setTimeout(() => {
        res.writeHead(req.url!.startsWith('/missing') ? 404 : 200, {'content-type': 'application/json'})
        res.end('{}')
        busy--
        waiting.shift()?.()
      }, 20)
    }
    req.resume()
    req.once('end', () => (busy < 2 ? serve() : waiting.push(serve)))
  })
})
afterAll(() => target.close())

describe('saturate (autocannon, closed model)', () => {
  it('climbs connections and stops where the read threshold fails, reporting the best passing step', async () => {
    const seen = new Set<string>()
    const result = await saturate({
      target: target.url,
      builders: {
        browse_product: (ctx) => (seen.add('p'), {path: `/products/${1 + Math.floor(ctx.random() * 10)}`}),
        browse_drop: () => (seen.add('d'), {path: '/drops/1'}),
      },
      weights: {browse_product: 3, browse_drop: 1},
      thresholds: ['read.p95 < 80ms', 'errors.rate < 1%'],
      connections: [1, 2, 16, 64],
      stepSeconds: 1,
    })
    expect(seen).toEqual(new Set(['p', 'd']))
    expect(result.stoppedBecause).toBe('thresholds failed')
    const [c1, c2, c16] = result.steps
    expect(result.steps.length).toBe(3)
    expect(c1.pass && c2.pass).toBe(true)
    expect(c16.pass).toBe(false)
    // 16 connections queue behind 2 workers: ~160 ms each
    expect(c16.latency.p95).toBeGreaterThan(80)
    expect(c2.throughput).toBeGreaterThan(c1.throughput * 1.5)
    expect(c16.throughput).toBeLessThan(110)
    expect(result.best).toBe(c2)
    expect(LatencyHistogram.decode(c2.histogram).count).toBe(c2.requests)
  })

  it('counts non-2xx answers as errors against errors.rate', async () => {
    const result = await saturate({
      target: target.url,
      builders: {browse_product: () => ({path: '/missing'})},
      weights: {browse_product: 1},
      thresholds: ['errors.rate < 1%'],
      connections: [2],
      stepSeconds: 1,
    })
    expect(result.steps[0].errors).toBe(result.steps[0].requests)
    expect(result.steps[0].thresholds[0]).toMatchObject({actual: 1, pass: false})
    expect(result.best).toBeNull()
  })

  it('refuses an unreachable target with exit 3', async () => {
    const err = await saturate({target: 'http://127.0.0.1:1', builders: {b: () => ({path: '/'})}, weights: {b: 1}}).catch((e) => e)
    expect(err).toBeInstanceOf(ServiceUnreachableError)
    expect(err.exitCode).toBe(3)
  })

  it('plans a scenario: the busiest read mix as weights, the read thresholds only', async () => {
    const s = await loadScenario(`${ROOT}/scenarios/celebrity-drop.yaml`)
    expect(saturationPlan(s, REQUEST_GROUPS.read)).toEqual({
      weights: {browse_product: 700, browse_drop: 500, list_followers: 100, notifications: 200},
      thresholds: ['read.p95 < 200ms', 'errors.rate < 0.1%'],
    })
  })
})
