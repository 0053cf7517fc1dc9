import {describe, expect, it} from 'vitest'
import {RegressionError} from '../src/core/errors.js'
import {UsageError} from '../src/core/errors.js'
import {checkComparable, compareRuns, comparisonWarnings, regressionError, renderComparison, type RunComparison} from '../src/sim/report/compare.js'
import {buildRun, generateRequests, type FixtureSpec, type LatencyModel} from './report-runs.js'

const spec: FixtureSpec = {phases: [{name: 'steady', seconds: 20, rates: {browse_product: 100, order: 20}}]}

/** 20–30 ms with a 2% tail at 80–120 ms. */
const baseModel: LatencyModel = ({random}) => ({ms: random() < 0.02 ? 80 + random() * 40 : 20 + random() * 10})

const run = (seed: number, model: LatencyModel = baseModel, s: FixtureSpec = spec) => buildRun(s, generateRequests(s, seed, model))
const verdict = (c: RunComparison, type: string, metric: string) => c.rows.find((r) => r.type === type)!.metrics.find((m) => m.metric === metric)!

describe('compareRuns', () => {
  const baseline = run(1)

  it('calls a doubled order latency a regression and exits 97', () => {
    const current = run(2, (ctx) => {
      const r = baseModel(ctx)
      return {ms: ctx.type === 'order' ? r.ms * 2 : r.ms}
    })
    const c = compareRuns(current, baseline, {tolerance: 0.1})
    for (const m of ['p50', 'p95', 'p99']) expect(verdict(c, 'order', m).verdict, m).toBe('worse')
    expect(verdict(c, 'order', 'p50').pValue).toBeLessThan(0.001)
    // the untouched type and throughput stay the same
    for (const m of ['p50', 'p95', 'throughput', 'errorRate']) expect(verdict(c, 'browse_product', m).verdict, m).toBe('same')
    const err = regressionError(c)
    expect(err).toBeInstanceOf(RegressionError)
    expect(err!.exitCode).toBe(97)
    expect(err!.message).toMatch(/order p50 \[steady\]/)
    expect(renderComparison(c)).toMatch(/WORSE/)
  })

  it('calls halved latency an improvement, not a regression', () => {
    const current = run(3, (ctx) => {
      const r = baseModel(ctx)
      return {ms: ctx.type === 'browse_product' ? r.ms / 2 : r.ms}
    })
    const c = compareRuns(current, baseline)
    expect(verdict(c, 'browse_product', 'p50').verdict).toBe('better')
    expect(verdict(c, 'browse_product', 'p95').verdict).toBe('better')
    expect(c.improvements).toBeGreaterThanOrEqual(2)
    expect(c.regressions).toEqual([])
    expect(regressionError(c)).toBeNull()
  })

  it('flags lost throughput and new errors', () => {
    const slower: FixtureSpec = {phases: [{name: 'steady', seconds: 20, rates: {browse_product: 80, order: 20}}]}
    const current = run(4, (ctx) => ({...baseModel(ctx), status: ctx.type === 'order' && ctx.random() < 0.1 ? 503 : 200}), slower)
    const c = compareRuns(current, baseline)
    expect(verdict(c, 'browse_product', 'throughput').verdict).toBe('worse')
    expect(verdict(c, 'browse_product', 'throughput').relative).toBeCloseTo(-0.2, 5)
    expect(verdict(c, 'order', 'errorRate').verdict).toBe('worse')
    expect(verdict(c, 'order', 'errorRate').relative).toBeNull()
  })

  it('keeps a small consistent shift inside the tolerance as same', () => {
    const current = run(5, (ctx) => ({ms: baseModel(ctx).ms * 1.05}))
    const c = compareRuns(current, baseline, {tolerance: 0.1})
    const m = verdict(c, 'browse_product', 'p50')
    expect(m.relative!).toBeGreaterThan(0.02)
    expect(m.verdict).toBe('same')
    expect(m.reason).toBe('within tolerance')
    // the same shift is a regression with a tighter tolerance: the rule is not blind to it
    expect(verdict(compareRuns(current, baseline, {tolerance: 0.01}), 'browse_product', 'p50').verdict).toBe('worse')
  })

  it('treats p99 changes inside the runs\u2019 own per-second spread as noise', () => {
    // every second has its own slowness (a GC pause, a noisy neighbour): p99 wanders between runs of the same system
    const noisy: LatencyModel = ({second, random}) => {
      const slow = 1 + 4 * ((Math.sin(second * 12.9898 + seedShift) * 43758.5453) % 1) ** 2
      return {ms: (20 + random() * 10) * (random() < 0.05 ? slow * 3 : 1)}
    }
    let seedShift = 0
    const pairs: Array<{rel: number; verdict: string}> = []
    for (let i = 0; i < 30; i++) {
      seedShift = i
      const a = run(100 + i, noisy)
      seedShift = i + 1000
      const b = run(200 + i, noisy)
      const m = verdict(compareRuns(b, a), 'browse_product', 'p99')
      if (Math.abs(m.relative!) > 0.1) pairs.push({rel: m.relative!, verdict: m.verdict})
    }
    // tolerance alone would call every one of these changed
    expect(pairs.length).toBeGreaterThanOrEqual(8)
    const flagged = pairs.filter((p) => p.verdict !== 'same').length
    // the noise test keeps false alarms near alpha (5%)
    expect(flagged / pairs.length).toBeLessThanOrEqual(0.15)
  })

  it('lists phases and types present in only one run', () => {
    const other: FixtureSpec = {phases: [{name: 'steady', seconds: 20, rates: {browse_product: 100}}, {name: 'burst', seconds: 5, rates: {browse_product: 300}}]}
    const c = compareRuns(run(6, baseModel, other), baseline)
    expect(c.onlyInBaseline).toEqual(['steady/order'])
    expect(c.onlyInCurrent).toEqual(['burst/browse_product'])
    expect(c.rows.map((r) => `${r.phase}/${r.type}`)).toEqual(['steady/browse_product'])
  })
})

describe('a comparison that compares nothing', () => {
  const baseline = run(1)

  it('is refused: another scenario, or no phase and request type in common', () => {
    const other = run(2, baseModel, {...spec, name: 'other'})
    expect(() => checkComparable(other, baseline, compareRuns(other, baseline))).toThrow(UsageError)
    expect(() => checkComparable(other, baseline, compareRuns(other, baseline))).toThrow(/scenario "fixture", this run is of "other"/)
    const renamed = run(2, baseModel, {phases: [{...spec.phases[0], name: 'renamed'}]})
    const c = compareRuns(renamed, baseline)
    expect(c.rows).toEqual([])
    expect(() => checkComparable(renamed, baseline, c)).toThrow(/no phase and request type in common \(baseline: steady\/browse_product, steady\/order; this run: renamed\/browse_product, renamed\/order\)/)
    // one type in common is a comparison
    const partly = run(2, baseModel, {phases: [{name: 'steady', seconds: 20, rates: {order: 20, follow: 5}}]})
    expect(() => checkComparable(partly, baseline, compareRuns(partly, baseline))).not.toThrow()
  })

  it('warns when scale or dataset seed differ', () => {
    const current = run(2)
    expect(comparisonWarnings(current, baseline)).toEqual([])
    current.scenario.scale = 2
    current.scenario.seed = 7
    expect(comparisonWarnings(current, baseline)).toEqual([
      'the baseline ran at --scale 1, this run at 2: rates and dataset sizes differ',
      "the baseline's dataset seed is 1, this run's 7: the datasets differ",
    ])
  })
})
