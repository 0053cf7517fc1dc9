import {describe, expect, it} from 'vitest'
import type {CpuReport} from '../metrics/cpu.js'
import type {RunResult} from '../metrics/result.js'
import {cpuCosts, fitCosts, hotRowRate, measuredInputs, requestsPerInterval} from './inputs.js'

const T0 = '2026-01-01T00:00:00.000Z'

/** A run of `reads`/`orders` completed in each second (two phases), with the stats a drop run records. */
function run(perSecond: Array<[number, number]>, stats: Record<string, unknown> = {}): RunResult {
  const half = perSecond.length / 2
  const phase = (name: string, from: number, to: number) => {
    const secs = perSecond.slice(from, to)
    const sum = (i: 0 | 1) => secs.reduce((a, s) => a + s[i], 0)
    const req = (n: number) => ({targetRate: n / secs.length, achievedRate: n / secs.length, completed: n, service: {count: n, mean: 5, p50: 5, p90: 5, p95: 5, p99: 5, max: 5}})
    return {name, index: 0, startMs: from * 1000, durationMs: (to - from) * 1000, arrival: 'constant', requests: {browse_drop: req(sum(0)), order: req(sum(1))}}
  }
  return {
    startedAt: T0,
    durationMs: perSecond.length * 1000,
    scenario: {name: 'tiny', scale: 1},
    phases: [phase('a', 0, half), phase('b', half, perSecond.length)],
    series: perSecond.map(([r, o], t) => ({t, phase: t < half ? 'a' : 'b', target: r + o, types: {browse_drop: {done: r, serviceP99: 10}, order: {done: o, serviceP99: 20}}})),
    stats,
  } as unknown as RunResult
}

/** A CPU report whose every one-second interval is cost_read × reads + cost_order × orders (per 1,000). */
function cpu(perSecond: Array<[number, number]>, costs: Record<string, [number, number] | null>, startedAt = T0): CpuReport {
  const components: CpuReport['components'] = {}
  for (const [name, c] of Object.entries(costs)) {
    const series = c ? perSecond.map(([r, o]) => (c[0] * r + c[1] * o) / 1000) : null
    components[name] = {cpuSeconds: series ? series.reduce((a, b) => a + b, 0) : null, meanCores: null, peakCores: null, series, ...(c ? {} : {note: 'on another host'})}
  }
  return {intervalMs: 1000, startedAt, durationS: perSecond.length, t: perSecond.map((_, i) => i + 1), components, machine: null}
}

const SECONDS: Array<[number, number]> = [[100, 10], [120, 12], [90, 8], [110, 11], [50, 60], [40, 70], [60, 50], [55, 65]]

describe('plan inputs from a run', () => {
  it('fitCosts solves y = X·b and refuses collinear columns', () => {
    expect(fitCosts([[1, 0], [0, 1], [1, 1]], [2, 3, 5])!.map((v) => Number(v.toFixed(9)))).toEqual([2, 3])
    // orders always a tenth of reads: the columns cannot be told apart
    expect(fitCosts([[10, 1], [20, 2], [30, 3]], [1, 2, 3])).toBeNull()
    // a negative cost means the split is not real
    expect(fitCosts([[1, 0], [0, 1], [1, 1]], [2, -3, -1])).toBeNull()
  })

  it('cpuCosts recovers per-group costs when the mix varies between intervals', () => {
    const costs = cpuCosts(run(SECONDS), cpu(SECONDS, {server: [0.5, 2], database: [0.1, 1.2], generator: [0.2, 0.2]}))
    expect(costs.method).toBe('fit')
    expect(costs.components.serve!.read).toBeCloseTo(0.5, 3)
    expect(costs.components.serve!.order).toBeCloseTo(2, 3)
    expect(costs.components.postgres!.order).toBeCloseTo(1.2, 3)
    expect(costs.components.serve!.write).toBeNull()
  })

  it('cpuCosts charges the mix average when the mix never varies, and says why a component is missing', () => {
    const flat: Array<[number, number]> = SECONDS.map(() => [100, 10])
    const costs = cpuCosts(run(flat), cpu(flat, {server: [0.5, 2], database: null}))
    expect(costs.method).toBe('mix')
    // (0.5 × 100 + 2 × 10) ÷ 110 requests × 1000 ÷ 1000 = 0.6364 per 1,000 of either group
    expect(costs.components.serve!.read).toBeCloseTo(70 / 110, 4)
    expect(costs.components.serve!.order).toBeCloseTo(70 / 110, 4)
    expect(costs.components.postgres).toBeNull()
    expect(costs.notes.postgres).toBe('on another host')
  })

  it('requestsPerInterval aligns the sampler clock to the run by their start times', () => {
    // the sampler started half a second after the run: its first interval covers seconds 0.5–1.5
    const r = requestsPerInterval(run(SECONDS), cpu(SECONDS, {server: [1, 1]}, '2026-01-01T00:00:00.500Z'))
    expect(r[0].read).toBeCloseTo(100 / 2 + 120 / 2, 9)
    expect(r[0].order).toBeCloseTo(10 / 2 + 12 / 2, 9)
  })

  it('hotRowRate: orders confirmed over the selling seconds, and 1000 ÷ the worst p99 service', () => {
    const h = hotRowRate(run(SECONDS, {strategy: 'row', dropLiveAtMs: 2000, soldOutAtMs: 4000, ordersConfirmed: 30}))
    // 30 orders in 2 s; p99 20 ms → 50/s
    expect(h).toMatchObject({strategy: 'row', soldRate: 15, serviceBound: 50, perRow: 50, phases: ['a']})
    expect(hotRowRate(run(SECONDS)).perRow).toBeNull()
  })

  it('measuredInputs: hit ratio, hottest key share, units per order, and no CPU named as missing', () => {
    const m = measuredInputs(run(SECONDS, {cacheHitRatio: 0.9, unitsSold: 140, ordersConfirmed: 100}))
    expect(m.cpu).toBeNull()
    expect(m.cpuMissing).toBe('the run file has no stats.cpu')
    expect(m.cacheHitRatio).toBe(0.9)
    expect(m.hotKeyShare).toBe(1)
    expect(m.unitsPerOrder).toBe(1.4)
    // 625 reads over 8 s
    expect(m.mix.read).toBeCloseTo(78.1, 1)
  })
})
