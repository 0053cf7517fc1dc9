import {describe, expect, it} from 'vitest'
import {LatencyHistogram} from '../../core/histogram.js'
import {judgeRun, latenessFlips, verdictError, windowLookup, type RequestStats, type RunResult, type SeriesPoint} from './result.js'
import {evaluateThreshold, parseThreshold, type ThresholdResult} from './thresholds.js'

const GROUPS = {read: ['browse_product'], all: ['browse_product']}

function th(expression: string, actual: number): ThresholdResult {
  return evaluateThreshold(parseThreshold(expression), 'run', () => actual)
}

describe('latenessFlips', () => {
  it('lists the failed thresholds when all of them pass without the lateness', () => {
    const flips = latenessFlips([th('read.p95 < 200ms', 237), th('errors.rate < 1%', 0)], [th('read.p95 < 200ms', 12), th('errors.rate < 1%', 0)])
    expect(flips).toEqual([{expression: 'read.p95 < 200ms', scope: 'run', kind: 'latency', op: '<', limit: 200, actual: 237, excused: 12}])
  })

  it('lists none when the verdict stands either way', () => {
    // measured pass: a PASS with late sends counted stands
    expect(latenessFlips([th('read.p95 < 200ms', 150)], [th('read.p95 < 200ms', 10)])).toEqual([])
    // still failing without the lateness: the target is slow
    expect(latenessFlips([th('read.p95 < 200ms', 400)], [th('read.p95 < 200ms', 390)])).toEqual([])
    // one flips, another fails regardless: the run fails anyway
    expect(latenessFlips([th('read.p95 < 200ms', 400), th('errors.rate < 1%', 0.05)], [th('read.p95 < 200ms', 10), th('errors.rate < 1%', 0.05)])).toEqual([])
  })
})

/** One phase of browse_product: each request as [corrected ms, generator lateness ms]. */
function runOf(requests: Array<[number, number]>, thresholds: string[]): RunResult {
  const corrected = new LatencyHistogram()
  const excused = new LatencyHistogram()
  for (const [ms, late] of requests) {
    corrected.recordMs(ms)
    excused.recordMs(ms - late)
  }
  const late = requests.filter(([, l]) => l > 0).length
  const stats: RequestStats = {
    targetRate: requests.length,
    achievedRate: requests.length,
    scheduled: requests.length,
    sent: requests.length,
    completed: requests.length,
    ok: requests.length,
    errors: 0,
    late,
    queued: 0,
    unsent: 0,
    errorsByClass: {},
    statuses: {},
    corrected: corrected.summary(),
    service: excused.summary(),
    histograms: {corrected: corrected.encode(), service: excused.encode(), excused: excused.encode()},
  }
  return {
    kind: 'livedrop-run',
    version: 1,
    scenario: {name: 't', file: null, scale: 1, seed: 1, thresholds: {run: thresholds, phases: {}}},
    target: 'http://127.0.0.1:1',
    startedAt: new Date(0).toISOString(),
    durationMs: 1000,
    generator: {hostname: 'h', connections: 8, slackMs: 10, timeoutMs: 1000, maxLateFraction: 0.01, maxLagMs: 500, eventLoopLag: {p50: 0, p99: 0, max: 0}, lateFraction: late / requests.length, late, worstLagMs: 0, cpu: 0, stall: null, runs: 1},
    phases: [{name: 'p', index: 0, startMs: 0, durationMs: 1000, arrival: 'constant', requests: {browse_product: stats}}],
    series: [],
    metrics: {},
    thresholds: [],
    invariants: [],
    stats: {},
    void: null,
    aborted: false,
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
}

// 90 answers in 5 ms; 10 more that the generator sent 300 ms late (5 ms of service)
const LATE_TAIL: Array<[number, number]> = [...Array.from({length: 90}, (): [number, number] => [5, 0]), ...Array.from({length: 10}, (): [number, number] => [305, 300])]
// 10 answers the target itself took 300 ms over, sent on time
const SLOW_TAIL: Array<[number, number]> = [...Array.from({length: 90}, (): [number, number] => [5, 0]), ...Array.from({length: 10}, (): [number, number] => [300, 0])]

describe('judgeRun', () => {
  it('a FAIL caused by late sends is void (100), with the threshold and both values', () => {
    const r = judgeRun(runOf(LATE_TAIL, ['read.p95 < 200ms']), GROUPS)
    expect(r.thresholds[0]).toMatchObject({pass: false, actual: expect.closeTo(305, -1)})
    expect(r.void).toMatchObject({kind: 'lateness', detail: {thresholds: [{expression: 'read.p95 < 200ms', actual: expect.closeTo(305, -1), excused: expect.closeTo(5, 0)}]}})
    expect(r.void!.reason).toMatch(/read\.p95 < 200ms \[run\]: 305\.\dms measured, 5\.00ms without the generator's lateness/)
    expect(r.verdict).toMatchObject({void: true, pass: false, exitCode: 100})
  })

  it('the same tail on time is the target: 99; a PASS with late sends stands: 0', () => {
    expect(judgeRun(runOf(SLOW_TAIL, ['read.p95 < 200ms']), GROUPS)).toMatchObject({void: null, verdict: {exitCode: 99}})
    expect(judgeRun(runOf(LATE_TAIL, ['read.p95 < 400ms']), GROUPS)).toMatchObject({void: null, verdict: {exitCode: 0}})
    // a service-time threshold is not touched by the generator's lateness
    expect(judgeRun(runOf(LATE_TAIL, ['read.service.p95 < 1ms']), GROUPS)).toMatchObject({void: null, verdict: {exitCode: 99}})
  })

  it('a violated invariant is 98 whatever the lateness; a stall is void whatever the thresholds', () => {
    const broken = runOf(LATE_TAIL, ['read.p95 < 200ms'])
    broken.invariants = [{name: 'no_oversell', pass: false}]
    expect(judgeRun(broken, GROUPS)).toMatchObject({void: null, verdict: {exitCode: 98}})
    const stalled = runOf(SLOW_TAIL, ['read.p95 < 400ms'])
    stalled.generator.stall = {reason: 'the generator sent nothing for 900 ms', detail: {}}
    expect(judgeRun(stalled, GROUPS)).toMatchObject({void: {kind: 'stall', reason: 'the generator sent nothing for 900 ms'}, verdict: {exitCode: 100}})
    // re-judging (finalizeRun after invariants and extra metrics) recomputes the void from the facts
    stalled.generator.stall = null
    expect(judgeRun(stalled, GROUPS)).toMatchObject({void: null, verdict: {exitCode: 0}})
  })
})

/** A series second: per type, corrected latencies (and, where the generator was late, [corrected, lateness]). */
function second(t: number, phase: string, types: Record<string, Array<number | [number, number]>>): SeriesPoint {
  const point: SeriesPoint = {t, phase, target: 0, types: {}}
  for (const [type, values] of Object.entries(types)) {
    const c = LatencyHistogram.coarse()
    const x = LatencyHistogram.coarse()
    let late = false
    for (const v of values) {
      const [ms, lateMs] = typeof v === 'number' ? [v, 0] : v
      c.recordMs(ms)
      x.recordMs(ms - lateMs)
      late ||= lateMs > 0
    }
    point.types[type] = {sent: values.length, done: values.length, errors: 0, p50: 0, p99: 0, serviceP99: 0, histograms: {corrected: c.encode(), service: c.encode(), ...(late ? {excused: x.encode()} : {})}}
  }
  return point
}

const fast = (n: number) => Array.from({length: n}, () => 5)

describe('windowLookup', () => {
  // seconds 0–5 of 20 fast reads; second 3 adds 5 slow browse_drop reads; second 8 (after quiet 6 and 7) is fast again
  const series = [
    second(0, 'a', {browse_product: fast(20)}),
    second(1, 'a', {browse_product: fast(20)}),
    second(2, 'a', {browse_product: fast(20)}),
    second(3, 'b', {browse_product: fast(20), browse_drop: [400, 400, 400, 400, 400]}),
    second(4, 'b', {browse_product: fast(20)}),
    second(5, 'b', {browse_product: fast(20)}),
    second(8, 'b', {browse_product: fast(20)}),
  ]
  const result = {...runOf([[5, 0]], []), series}
  const groups = {read: ['browse_product', 'browse_drop'], all: ['browse_product', 'browse_drop']}

  it('merges the seconds of each window (and the types of a group) and slides by one second', () => {
    const w = windowLookup(result, null, groups)
    // 2 s windows over seconds 0..8: starts 0..7; the one of seconds 6–7 is empty and left out
    const p99 = w('read', 'p99', 'corrected', 2)
    expect(p99.map((x) => x.startS)).toEqual([0, 1, 2, 3, 4, 5, 7])
    // windows holding second 3: 5 slow of 45 → p99 is slow; the others are fast
    expect(p99.map((x) => x.value > 300)).toEqual([false, false, true, true, false, false, false])
    // the same seconds one type at a time
    expect(w('browse_product', 'max', 'corrected', 2).every((x) => x.value < 10)).toBe(true)
    expect(w('browse_drop', 'p50', 'corrected', 2)).toEqual([
      {startS: 3, value: expect.closeTo(400, -1)},
    ])
    // a window as long as the scope is one window; longer too
    expect(w('read', 'p95', 'corrected', 9).map((x) => x.startS)).toEqual([0])
    expect(w('read', 'p95', 'corrected', 60)).toEqual([{startS: 0, value: expect.closeTo(5, 0)}])
  })

  it('a phase scope uses only its own seconds; files without per-second histograms give no windows', () => {
    expect(windowLookup(result, 'a', groups)('read', 'max', 'corrected', 1).map((x) => x.startS)).toEqual([0, 1, 2])
    const old = {...result, series: series.map((p) => ({...p, types: Object.fromEntries(Object.entries(p.types).map(([k, v]) => [k, {...v, histograms: undefined}]))}))}
    expect(windowLookup(old, null, groups)('read', 'p99', 'corrected', 2)).toEqual([])
  })

  it('judgeRun fails a window threshold the whole run meets, names the worst window, and voids it only when lateness caused it', () => {
    const slow = judgeRun({...runOf(LATE_TAIL, ['read.p99 < 100ms over 2s', 'read.p50 < 100ms', 'browse_drop.p95? < 1ms over 2s']), series}, groups)
    expect(slow.thresholds.map((t) => [t.expression, t.pass, t.window])).toEqual([
      ['read.p99 < 100ms over 2s', false, {seconds: 2, startS: 2}],
      ['read.p50 < 100ms', true, null],
      // optional, and has data here: judged
      ['browse_drop.p95? < 1ms over 2s', false, {seconds: 2, startS: 3}],
    ])
    expect(slow.verdict.exitCode).toBe(99)
    // the slow second's latency was all the generator's lateness: the window failure is void
    const lateSeries = [...series.slice(0, 3), second(3, 'b', {browse_product: [...fast(20), [400, 396], [400, 396], [400, 396], [400, 396], [400, 396]]}), ...series.slice(4)]
    const late = judgeRun({...runOf(LATE_TAIL, ['read.p99 < 100ms over 2s']), series: lateSeries}, groups)
    expect(late.void).toMatchObject({kind: 'lateness', detail: {thresholds: [{expression: 'read.p99 < 100ms over 2s', actual: expect.closeTo(400, -1), excused: expect.closeTo(5, 0)}]}})
  })

  it('a required threshold with no samples fails (99) with the no-samples message; an optional one passes', () => {
    const r = judgeRun(runOf(SLOW_TAIL, ['order.p95 < 500ms', 'browse_drop.p99? < 1ms', 'read.p95 < 1s']), GROUPS)
    expect(r.thresholds.map((t) => [t.expression, t.pass, t.noData])).toEqual([
      ['order.p95 < 500ms', false, true],
      ['browse_drop.p99? < 1ms', true, true],
      ['read.p95 < 1s', true, false],
    ])
    expect(r.verdict).toMatchObject({exitCode: 99, thresholdsFailed: 1})
    expect(verdictError(r)!.message).toBe('1 threshold(s) failed: order.p95 < 500ms [run] (no samples: the traffic this threshold guards never ran)')
  })
})
