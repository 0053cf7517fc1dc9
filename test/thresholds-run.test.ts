import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {InvariantViolatedError, ThresholdFailedError, UsageError, VoidRunError} from '../src/core/errors.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import {computeVerdict, evaluateRunThresholds, finalizeRun, verdictError, type RequestStats, type RunResult} from '../src/sim/metrics/result.js'
import {parseRunFile, readRunFile, writeRunFile} from '../src/sim/report/run-file.js'
import {progressLine, renderReport} from '../src/sim/report/tables.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'

function stats(latencies: number[], o: Partial<RequestStats> = {}, durationMs = 1000): RequestStats {
  const h = new LatencyHistogram()
  for (const l of latencies) h.recordMs(l)
  const s = new LatencyHistogram()
  for (const l of latencies) s.recordMs(l / 10)
  return {
    targetRate: latencies.length / (durationMs / 1000),
    achievedRate: latencies.length / (durationMs / 1000),
    scheduled: latencies.length,
    sent: latencies.length,
    completed: latencies.length,
    ok: latencies.length - (o.errors ?? 0),
    errors: 0,
    late: 0,
    queued: 0,
    unsent: 0,
    errorsByClass: {},
    statuses: {'200': latencies.length},
    corrected: h.summary(),
    service: s.summary(),
    histograms: {corrected: h.encode(), service: s.encode()},
    ...o,
  }
}

const range = (n: number, f: (i: number) => number) => Array.from({length: n}, (_, i) => f(i))

function run(thresholds: RunResult['scenario']['thresholds']): RunResult {
  const r: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    scenario: {name: 'constructed', file: null, scale: 1, seed: 1, thresholds},
    target: 'http://127.0.0.1:1',
    startedAt: new Date(0).toISOString(),
    durationMs: 3000,
    generator: {hostname: 'h', connections: 8, slackMs: 10, timeoutMs: 1000, maxLateFraction: 0.01, maxLagMs: 500, eventLoopLag: {p50: 1, p99: 2, max: 3}, lateFraction: 0, runs: 1},
    phases: [
      // browse_product: 900 fast (1..9ms), browse_drop: 100 slow (300..399ms)
      {name: 'calm', index: 0, startMs: 0, durationMs: 1000, arrival: 'constant', requests: {browse_product: stats(range(900, (i) => 1 + (i % 9))), browse_drop: stats(range(100, (i) => 300 + i))}},
      {
        name: 'burst',
        index: 1,
        startMs: 1000,
        durationMs: 2000,
        arrival: 'poisson',
        requests: {
          browse_product: stats(range(1000, (i) => 50 + (i % 100)), {}, 2000),
          order: stats(range(200, (i) => 100 + i * 3), {errors: 4, errorsByClass: {http_503: 3, timeout: 1}, ok: 196}, 2000),
        },
      },
    ],
    series: [],
    metrics: {},
    thresholds: [],
    invariants: [],
    stats: {},
    void: null,
    aborted: false,
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
  r.thresholds = evaluateRunThresholds(r, REQUEST_GROUPS)
  r.verdict = computeVerdict(r)
  return r
}

describe('thresholds on a run', () => {
  it('groups merge histograms exactly: read.p95 is the p95 of every read, per phase or whole run', () => {
    const r = run({run: ['read.p95 < 200ms', 'read.p40 < 10ms', 'browse_drop.p50 < 400ms'], phases: {calm: ['read.p95 < 200ms'], burst: ['read.p95 < 200ms', 'order.rate >= 100/s']}})
    const byScope = Object.fromEntries(r.thresholds.map((t) => [`${t.scope} ${t.expression}`, t]))
    // whole run: 2,000 reads, 100 slow among them → p95 falls among the fast burst reads
    const all = new LatencyHistogram()
    for (const l of [...range(900, (i) => 1 + (i % 9)), ...range(100, (i) => 300 + i), ...range(1000, (i) => 50 + (i % 100))]) all.recordMs(l)
    expect(byScope['run read.p95 < 200ms'].actual).toBe(all.percentileMs(95))
    expect(byScope['run read.p95 < 200ms'].pass).toBe(true)
    // calm alone: 10% of reads are slow, so its p95 is slow (an average of p95s would hide this)
    expect(byScope['calm read.p95 < 200ms'].actual).toBeGreaterThan(300)
    expect(byScope['calm read.p95 < 200ms'].pass).toBe(false)
    expect(byScope['burst read.p95 < 200ms'].pass).toBe(true)
    expect(byScope['run read.p40 < 10ms'].pass).toBe(true)
    expect(byScope['run browse_drop.p50 < 400ms'].actual).toBeCloseTo(350, -1)
    expect(byScope['burst order.rate >= 100/s'].actual).toBe(100)
    expect(r.verdict).toMatchObject({pass: false, thresholdsFailed: 1, exitCode: 99})
    expect(verdictError(r)).toBeInstanceOf(ThresholdFailedError)
    expect(verdictError(r)!.message).toMatch(/read\.p95 < 200ms \[calm\]/)
  })

  it('errors.rate counts failures (and unsent requests) over all attempts; service timing uses the service histogram', () => {
    const r = run({run: ['errors.rate < 0.1%', 'order.errors <= 2%', 'order.service.max < 100ms', 'order.max < 100ms'], phases: {}})
    expect(r.thresholds.map((t) => [t.expression, t.actual, t.pass])).toEqual([
      ['errors.rate < 0.1%', 4 / 2200, false],
      ['order.errors <= 2%', 0.02, true],
      ['order.service.max < 100ms', expect.closeTo(69.7, 0), true],
      ['order.max < 100ms', expect.closeTo(697, -1), false],
    ])
    r.phases[1].requests.order.unsent = 200
    expect(evaluateRunThresholds(r, REQUEST_GROUPS)[1].actual).toBeCloseTo(204 / 400, 6)
  })

  it('finalizeRun adds extras and re-judges: invariants (98) outrank thresholds (99), void (100) outranks all', () => {
    const r = run({run: ['notify.p95 < 2s', 'read.p95 < 1s'], phases: {}})
    // notify is not measured yet: no samples fails (before this it passed with noData)
    expect(r.thresholds[0]).toMatchObject({noData: true, pass: false})
    const notify = new LatencyHistogram()
    for (let i = 0; i < 100; i++) notify.recordMs(1000 + i * 20)
    finalizeRun(r, REQUEST_GROUPS, {metrics: {notify}, stats: {unitsSold: 500}, invariants: [{name: 'no_oversell', pass: true}]})
    expect(r.thresholds[0]).toMatchObject({noData: false, pass: false})
    expect(r.verdict.exitCode).toBe(99)
    finalizeRun(r, REQUEST_GROUPS, {invariants: [{name: 'no_oversell', pass: false, detail: 'sold 501 of 500'}]})
    expect(r.verdict.exitCode).toBe(98)
    expect(verdictError(r)).toBeInstanceOf(InvariantViolatedError)
    r.void = {reason: 'generator lagged', detail: {}}
    finalizeRun(r, REQUEST_GROUPS)
    expect(r.verdict).toMatchObject({void: true, exitCode: 100})
    expect(verdictError(r)).toBeInstanceOf(VoidRunError)

    const text = renderReport(r)
    expect(text).toMatch(/^VOID 100: /)
    expect(text).toMatch(/VOID RUN: generator lagged/)
    expect(text).not.toMatch(/Phase calm/)
    expect(renderReport(r, {full: true})).toMatch(/Phase calm/)
    expect(text).toMatch(/✗ notify\.p95 < 2s /)
    expect(text).toMatch(/✗ no_oversell +sold 501 of 500/)
    // the errors column counts failures (with the share thresholds use); statuses list the answers and the timeout
    expect(text).toMatch(/^order .* 4 \([\d.]+%\)\s+200:200\s+timeout:1$/m)
    expect(text).toMatch(/unitsSold .*500/)
    expect(progressLine({elapsedMs: 23_000, totalMs: 50_000, phase: 'drop-opens', rate: 1648, targetRate: 1650, errors: 0, late: 2, p99Ms: 41.24})).toBe(
      'drop-opens 23.0/50 s | 1,648/s of 1,650/s | errors 0 | late 2 | p99 41.2ms',
    )
  })

  it('a run file round-trips (histograms and verdict intact) and bad files are refused', async () => {
    const r = run({run: ['read.p95 < 200ms'], phases: {burst: ['order.p99 < 1s']}})
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'livedrop-run-')), 'run.json')
    await writeRunFile(file, r)
    const back = await readRunFile(file)
    expect(back).toEqual(r)
    expect(evaluateRunThresholds(back, REQUEST_GROUPS)).toEqual(r.thresholds)
    expect(renderReport(back)).toBe(renderReport(r))
    expect(() => parseRunFile('{"kind":"other"}', 'x.json')).toThrow(UsageError)
    expect(() => parseRunFile('{"kind":"livedrop-run","version":2}', 'x.json')).toThrow(/version 2/)
    expect(() => parseRunFile('{"kind":"livedrop-run","version":1}', 'x.json')).toThrow(/missing scenario/)
    expect(() => parseRunFile('nope', 'x.json')).toThrow(/not JSON/)
    await expect(readRunFile(path.join(path.dirname(file), 'none.json'))).rejects.toThrow(/ENOENT/)
  })
})
