import {describe, expect, it} from 'vitest'
import {UsageError} from '../src/core/errors.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import type {RunResult} from '../src/sim/metrics/result.js'
import {mergeRuns} from '../src/sim/report/merge.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'
import {buildRun, generateRequests, type FixtureRequest, type FixtureSpec} from './report-runs.js'

const spec: FixtureSpec = {
  phases: [
    {name: 'warm', seconds: 6, rates: {browse_product: 200, list_followers: 40}},
    {name: 'burst', seconds: 4, rates: {browse_product: 600, order: 100}, thresholds: ['order.p95 < 60ms', 'order.errors < 5%']},
  ],
  thresholds: ['read.p95 < 45ms', 'read.p99 < 500ms', 'order.p99 < 100ms', 'errors.rate < 1%', 'browse_product.rate > 300/s', 'order.count >= 400'],
  invariants: [{name: 'no_oversell', pass: true}],
}

const requests = generateRequests(spec, 11, ({type, phase, random}) => ({
  ms: (phase === 'burst' ? 30 : 10) + random() * (type === 'order' ? 60 : 40) + (random() < 0.01 ? 400 : 0),
  status: type === 'order' && random() < 0.03 ? 409 : random() < 0.004 ? 503 : 200,
}))

const PCTS = [1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]
const spectrum = (enc: string) => {
  const h = LatencyHistogram.decode(enc)
  return [h.count, ...PCTS.map((p) => h.percentileMs(p))]
}

/** Everything a merged run must reproduce exactly from the whole one. */
function exactParts(r: RunResult) {
  return {
    phases: r.phases.map((p) => ({
      name: p.name,
      requests: Object.fromEntries(
        Object.entries(p.requests).map(([t, s]) => {
          const {histograms, ...rest} = s
          return [t, {...rest, corrected: spectrum(histograms.corrected), service: spectrum(histograms.service)}]
        }),
      ),
    })),
    series: r.series.map((pt) => ({t: pt.t, phase: pt.phase, target: pt.target, counts: Object.fromEntries(Object.entries(pt.types).map(([k, v]) => [k, [v.sent, v.done, v.errors]]))})),
    thresholds: r.thresholds,
    verdict: r.verdict,
  }
}

describe('mergeRuns', () => {
  const whole = buildRun(spec, requests)

  it('merging two halves equals the whole: histograms, counts, rates, series, thresholds', () => {
    const a = buildRun({...spec, hostname: 'gen-a'}, requests.filter((_, i) => i % 2 === 0), {rateShare: 0.5})
    const b = buildRun({...spec, hostname: 'gen-b'}, requests.filter((_, i) => i % 2 === 1), {rateShare: 0.5})
    const merged = mergeRuns([a, b], REQUEST_GROUPS)
    expect(exactParts(merged)).toEqual(exactParts(whole))
    expect(merged.generator.runs).toBe(2)
    expect(merged.generator.hostname).toBe('gen-a,gen-b')
    expect(merged.scenario.scale).toBe(1)
    // the fixture makes some thresholds fail, so the comparison covers both outcomes
    expect(whole.thresholds.some((t) => !t.pass)).toBe(true)
    expect(whole.thresholds.some((t) => t.pass && !t.noData)).toBe(true)
  })

  it('is exact, not an average: one slow generator moves the merged p99 as the whole run would', () => {
    // split by latency: one generator saw every slow response
    const cut = [...requests].sort((x, y) => x.corrected - y.corrected)[Math.floor(requests.length * 0.7)].corrected
    const fast = requests.filter((r) => r.corrected < cut)
    const slow = requests.filter((r) => r.corrected >= cut)
    const merged = mergeRuns([buildRun(spec, fast), buildRun(spec, slow)], REQUEST_GROUPS)
    const pick = (r: RunResult) => r.phases[1].requests.browse_product.corrected
    expect(pick(merged)).toEqual(pick(whole))
    const halves = [buildRun(spec, fast), buildRun(spec, slow)].map((r) => pick(r).p50)
    expect(pick(merged).p50).not.toBeCloseTo((halves[0] + halves[1]) / 2, 0)
    expect(merged.thresholds.map((t) => [t.expression, t.scope, t.actual, t.pass])).toEqual(whole.thresholds.map((t) => [t.expression, t.scope, t.actual, t.pass]))
  })

  it('merges three generators in any grouping to the same result', () => {
    const parts = [0, 1, 2].map((k) => buildRun({...spec, hostname: `g${k}`}, requests.filter((_, i) => i % 3 === k), {rateShare: 1 / 3}))
    const flat = mergeRuns(parts, REQUEST_GROUPS)
    const nested = mergeRuns([mergeRuns(parts.slice(0, 2), REQUEST_GROUPS), parts[2]], REQUEST_GROUPS)
    expect(nested.generator.runs).toBe(3)
    expect(exactParts(nested)).toEqual(exactParts(flat))
    expect(exactParts(flat).phases).toEqual(exactParts(whole).phases.map((p) => ({...p, requests: Object.fromEntries(Object.entries(p.requests).map(([t, s]) => [t, {...s, targetRate: expect.closeTo(s.targetRate, 9)}]))})))
  })

  it('a void generator voids the merged run; a violated invariant anywhere fails it', () => {
    const half = (k: number) => buildRun(spec, requests.filter((_, i) => i % 2 === k), {rateShare: 0.5})
    const bad = {...half(1), void: {reason: 'event loop stalled', detail: {maxLagMs: 900}}}
    const merged = mergeRuns([half(0), bad], REQUEST_GROUPS)
    expect(merged.void?.reason).toMatch(/event loop stalled/)
    expect(merged.verdict.exitCode).toBe(100)
    const broken = {...half(1), invariants: [{name: 'no_oversell', pass: false, detail: 'sold 2001 of 2000'}]}
    const m2 = mergeRuns([half(0), broken], REQUEST_GROUPS)
    expect(m2.invariants).toEqual([{name: 'no_oversell', pass: false, detail: 'sold 2001 of 2000'}])
    expect(m2.verdict.exitCode).toBe(98)
  })

  it('refuses runs of different scenarios', () => {
    const other = buildRun({...spec, phases: [spec.phases[0]]}, requests.filter((r: FixtureRequest) => r.phase === 0))
    expect(() => mergeRuns([whole, other], REQUEST_GROUPS)).toThrow(UsageError)
    expect(() => mergeRuns([whole, buildRun({...spec, thresholds: ['read.p95 < 1s']}, requests)], REQUEST_GROUPS)).toThrow(/thresholds differ/)
    expect(() => mergeRuns([], REQUEST_GROUPS)).toThrow(/at least one/)
  })
})
