import {describe, expect, it} from 'vitest'
import {LatencyHistogram} from './histogram.js'
import {judgeRun, latenessFlips, type RequestStats, type RunResult} from './result.js'
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
