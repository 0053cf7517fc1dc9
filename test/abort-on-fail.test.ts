import {execFile} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {ScenarioInvalidError, ThresholdFailedError} from '../src/core/errors.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import {exportK6} from '../src/sim/export/k6.js'
import {saturationPlan} from '../src/sim/load/saturate.js'
import {phasePeakRates} from '../src/sim/load/arrivals.js'
import {computeVerdict, judgeRun, verdictError, type RequestStats, type RunAbort, type RunResult, type SeriesPoint, type SeriesTypePoint} from '../src/sim/metrics/result.js'
import {renderHtml} from '../src/sim/report/html.js'
import {renderMarkdownSummary} from '../src/sim/report/markdown.js'
import {renderReport} from '../src/sim/report/tables.js'
import {scheduledAtMost, watchAborts, type AbortWatcher} from '../src/sim/run/abort.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'
import {ROOT} from './helpers/cli.js'

/** A scenario of one or more phases with the thresholds given (YAML flow text). */
function scenario(thresholds: string, phases = '[{name: steady, duration: 30s, rates: {browse_product: 10}}]', extra = '') {
  return parseScenario(`name: abort\ndrop: {stock: 10}\nnotify: {sample: 0}\n${extra}phases: ${phases}\nthresholds: ${thresholds}\n`, 'abort.yaml')
}

interface TypeSecond {
  /** Latencies of the answers this second, ms (corrected). */
  lat?: number[]
  /** The same answers with late sends counted from when the generator got to them; absent: no late send. */
  excused?: number[]
  /** Of the answers, how many were 500s. */
  status500?: number
  /** Requests that failed with no answer (connection reset). */
  net?: number
}

const encode = (ms: number[]) => {
  const h = LatencyHistogram.coarse()
  for (const v of ms) h.recordMs(v)
  return h.encode()
}

/** One closed second as the open model emits it: per type, and `all`. */
function point(t: number, phase: string, types: Record<string, TypeSecond>): SeriesPoint {
  const out: Record<string, SeriesTypePoint> = {}
  const all: Required<TypeSecond> = {lat: [], excused: [], status500: 0, net: 0}
  let late = false
  for (const [type, x] of Object.entries(types)) {
    const lat = x.lat ?? []
    const answered500 = x.status500 ?? 0
    out[type] = {
      sent: lat.length + (x.net ?? 0),
      done: lat.length + (x.net ?? 0),
      errors: answered500 + (x.net ?? 0),
      p50: 0,
      p99: 0,
      serviceP99: 0,
      histograms: {corrected: encode(lat), service: encode(lat), ...(x.excused ? {excused: encode(x.excused)} : {})},
      statuses: {...(lat.length - answered500 ? {'200': lat.length - answered500} : {}), ...(answered500 ? {'500': answered500} : {})},
    }
    all.lat.push(...lat)
    all.excused.push(...(x.excused ?? lat))
    all.status500 += answered500
    all.net += x.net ?? 0
    late ||= x.excused !== undefined
  }
  out.all = {
    sent: all.lat.length + all.net,
    done: all.lat.length + all.net,
    errors: all.status500 + all.net,
    p50: 0,
    p99: 0,
    serviceP99: 0,
    histograms: {corrected: encode(all.lat), service: encode(all.lat), ...(late ? {excused: encode(all.excused)} : {})},
    statuses: {...(all.lat.length - all.status500 ? {'200': all.lat.length - all.status500} : {}), ...(all.status500 ? {'500': all.status500} : {})},
  }
  return {t, phase, target: 10, types: out}
}

const many = (n: number, ms: number) => Array.from({length: n}, () => ms)

/** Feeds seconds 0, 1, 2… until the watcher fires; the second it fired at, or null. */
function feed(w: AbortWatcher, seconds: SeriesPoint[]): number | null {
  for (const p of seconds) if (w.second(p)) return p.t
  return null
}

const seconds = (from: number, to: number, f: (t: number) => SeriesPoint) => Array.from({length: to - from}, (_, i) => f(from + i))

describe('abortOnFail in scenario files', () => {
  it('takes k6’s object form beside plain strings, at run and phase level; the rest of the pipeline sees expressions', () => {
    const s = scenario(
      '["errors.rate < 1%", {threshold: "read.p95 < 200ms", abortOnFail: true, delayAbortEval: 10s}, {threshold: "order.p95? < 500ms"}]',
      '[{name: warm, duration: 5s, rates: {browse_product: 5}}, {name: race, duration: 30s, rates: {order: 5}, thresholds: [{threshold: "order.p99 < 1s", abortOnFail: true, delayAbortEval: 2}]}]',
    )
    expect(s.thresholds).toEqual(['errors.rate < 1%', 'read.p95 < 200ms', 'order.p95? < 500ms'])
    expect(s.phases[1].thresholds).toEqual(['order.p99 < 1s'])
    expect(s.abortRules).toEqual([
      {scope: 'race', index: 0, delayMs: 2000},
      {scope: 'run', index: 1, delayMs: 10_000},
    ])
    // no abortOnFail anywhere: no rules, and no watcher
    expect(scenario('["read.p95 < 200ms", {threshold: "read.p99 < 1s"}]').abortRules).toBeUndefined()
    expect(watchAborts(scenario('["read.p95 < 200ms"]'))).toBeNull()
  })

  it('refuses what cannot stop a run, naming file:line:column and the field (exit 4)', () => {
    let err: unknown
    try {
      scenario(
        `
  - {threshold: "notify.p95 < 2s", abortOnFail: true}
  - {threshold: "read.late < 1%", abortOnFail: true}
  - {threshold: "read.p95 < 1s", delayAbortEval: 5s}
  - {threshold: "read.p95 <<", abortOnFail: true}
  - {abortOnFail: true}
  - {threshold: "read.p95 < 1s", abortOnFail: yes please}`,
        '[{name: race, duration: 30s, rates: {order: 5}, thresholds: [{threshold: "order.count > 10", abortOnFail: true}]}]',
      )
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ScenarioInvalidError)
    expect((err as ScenarioInvalidError).exitCode).toBe(4)
    const lines = (err as Error).message.split('\n').slice(1).map((l) => l.trim())
    expect(lines).toEqual([
      expect.stringMatching(/^abort\.yaml:4:\d+ phases\[0\]\.thresholds\[0\]\.abortOnFail: a phase's count or rate is known once the run is over/),
      expect.stringMatching(/^abort\.yaml:6:\d+ thresholds\[0\]\.abortOnFail: notify is measured once the run is over/),
      expect.stringMatching(/^abort\.yaml:7:\d+ thresholds\[1\]\.abortOnFail: late sends are counted once the run is over/),
      expect.stringMatching(/^abort\.yaml:8:\d+ thresholds\[2\]\.delayAbortEval: only applies with abortOnFail: true/),
      expect.stringMatching(/^abort\.yaml:9:\d+ thresholds\[3\]\.threshold: cannot parse threshold "read\.p95 <<"/),
      expect.stringMatching(/^abort\.yaml:10:5 thresholds\[4\]: expected a threshold: "read\.p95 < 200ms", or \{threshold: /),
      expect.stringMatching(/^abort\.yaml:11:5 thresholds\[5\]: expected a threshold: /),
    ])
  })

  it('is in the published JSON Schema (scenarios/schema.json), for editors', () => {
    const schema = readFileSync(`${ROOT}scenarios/schema.json`, 'utf8')
    expect(schema).toContain('"abortOnFail"')
    expect(schema).toContain('"delayAbortEval"')
  })

  it('exports to k6 as {threshold, abortOnFail, delayAbortEval}; a phase threshold’s delay counts from its phase’s start, as k6 counts from the test’s', async () => {
    const s = scenario(
      '["errors.rate < 1%", {threshold: "read.p95 < 200ms", abortOnFail: true, delayAbortEval: 10s}]',
      '[{name: warm, duration: 5s, rates: {browse_product: 5}}, {name: race, duration: 30s, rates: {order: 5}, thresholds: [{threshold: "order.p99 < 1s", abortOnFail: true, delayAbortEval: 2s}, {threshold: "order.p95 < 1s", abortOnFail: true}]}]',
    )
    const script = exportK6(s)
    const options = script.slice(script.indexOf('thresholds: {'), script.indexOf('export function setup'))
    expect(options).toContain('{"threshold":"p(95)<200","abortOnFail":true,"delayAbortEval":"10000ms"}')
    expect(options).toContain('{"threshold":"p(99)<1000","abortOnFail":true,"delayAbortEval":"7000ms"}')
    expect(options).toContain('{"threshold":"p(95)<1000","abortOnFail":true,"delayAbortEval":"5000ms"}')
    expect(options).toMatch(/http_req_failed": \["rate<0\.01"\]|http_req_failed: \["rate<0\.01"\]/)

    // and k6's own types accept the object form
    const dir = mkdtempSync(path.join(tmpdir(), 'abort-k6-'))
    writeFileSync(path.join(dir, 'drop.k6.ts'), script)
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {strict: true, noEmit: true, target: 'es2020', module: 'esnext', moduleResolution: 'bundler', lib: ['es2020'], types: ['k6'], typeRoots: [path.join(ROOT, 'node_modules/@types')]},
        files: ['drop.k6.ts'],
      }),
    )
    const out = await new Promise<string>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {timeout: 60_000}, (err, stdout, stderr) => resolve(err ? `${stdout}${stderr}` || 'failed' : '')),
    )
    expect(out).toBe('')
  })
})

describe('the abort watcher, fed closed seconds', () => {
  const slow = (t: number) => point(t, 'steady', {browse_product: {lat: many(10, 150)}})
  const fast = (t: number) => point(t, 'steady', {browse_product: {lat: many(10, 20)}})

  it('judges latency on everything so far once the delay is over, and fires once', () => {
    const w = watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true, delayAbortEval: 3s}]'))!
    // failing from the first second, but the delay holds it until the second that ends at 3 s
    expect(feed(w, seconds(0, 10, slow))).toBe(2)
    expect(w.fired).toEqual<RunAbort>({threshold: 'read.p95 < 100ms', scope: 'run', atMs: 3000, reason: expect.stringMatching(/^15\d\.\dms over the run so far$/)})
    expect(w.second(slow(10))).toBeNull()

    // fast for long enough, then slow: fires only once the p95 of everything so far is over the limit
    const w2 = watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true}]'))!
    expect(feed(w2, [...seconds(0, 10, fast), ...seconds(10, 20, slow)])).toBe(10)
    const w3 = watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true}]'))!
    expect(feed(w3, seconds(0, 30, fast))).toBeNull()
  })

  it('does not stop a run for a failure the generator’s own lateness explains', () => {
    const late = (t: number) => point(t, 'steady', {browse_product: {lat: many(10, 150), excused: many(10, 20)}})
    const lateAndSlow = (t: number) => point(t, 'steady', {browse_product: {lat: many(10, 300), excused: many(10, 150)}})
    expect(feed(watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true}]'))!, seconds(0, 30, late))).toBeNull()
    expect(feed(watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true}]'))!, seconds(0, 30, lateAndSlow))).toBe(0)
    // service time starts at the actual send: no lateness in it to excuse
    expect(feed(watchAborts(scenario('[{threshold: "read.service.p95 < 100ms", abortOnFail: true}]'))!, seconds(0, 30, late))).toBe(0)
  })

  it('a phase threshold watches that phase’s seconds, its delay counted from the phase’s start', () => {
    const s = scenario('[]', '[{name: warm, duration: 10s, rates: {browse_product: 10}}, {name: race, duration: 20s, rates: {browse_product: 10}, thresholds: [{threshold: "read.p95 < 100ms", abortOnFail: true, delayAbortEval: 2s}]}]')
    const w = watchAborts(s)!
    // the warm phase is slow, which is none of this threshold's business; race is slow from 15 s
    const seconds0 = [...seconds(0, 10, (t) => point(t, 'warm', {browse_product: {lat: many(10, 150)}})), ...seconds(10, 30, (t) => point(t, 'race', {browse_product: {lat: many(10, t < 15 ? 20 : 150)}}))]
    expect(feed(w, seconds0)).toBe(15)
    expect(w.fired).toMatchObject({scope: 'race', atMs: 16_000, reason: expect.stringMatching(/over phase race so far$/)})

    // slow from the phase's first second: held by the delay until 12 s
    const w2 = watchAborts(s)!
    expect(feed(w2, [...seconds(0, 10, fast), ...seconds(10, 30, (t) => point(t, 'race', {browse_product: {lat: many(10, 150)}}))])).toBe(11)
  })

  it('a window threshold judges each whole window so far and names the worst', () => {
    // 3 slow seconds (5, 6, 7) in fast ones: the run's p50 stays fast, a 3 s window's does not
    const burst = (t: number) => (t >= 5 && t <= 7 ? slow(t) : fast(t))
    const w = watchAborts(scenario('[{threshold: "read.p50 < 100ms over 3s", abortOnFail: true}]'))!
    // the window from 4 s (seconds 4, 5, 6) is two-thirds slow: whole at the end of second 6
    expect(feed(w, seconds(0, 30, burst))).toBe(6)
    expect(w.fired!.reason).toMatch(/^15\d\.\dms \(3s window from 4s\) over the run so far$/)
    expect(feed(watchAborts(scenario('[{threshold: "read.p50 < 100ms", abortOnFail: true}]'))!, seconds(0, 30, burst))).toBeNull()
  })

  it('an error share fails after the delay on the requests done so far', () => {
    const s = scenario('[]', '[{name: steady, duration: 30s, rates: {browse_product: 10}, thresholds: [{threshold: "errors.rate < 5%", abortOnFail: true, delayAbortEval: 4s}]}]')
    const w = watchAborts(s)!
    expect(feed(w, seconds(0, 30, (t) => point(t, 'steady', {browse_product: {lat: many(10, 20), status500: 1}})))).toBe(3)
    expect(w.fired!.reason).toBe('10.00% of the 40 requests done in phase steady so far')
  })

  it('a run error share that can no longer pass stops the run at once, delay or not', () => {
    const s = scenario('[{threshold: "errors.rate < 1%", abortOnFail: true, delayAbortEval: 20s}]')
    // 30 s at 10/s constant: at most 301 requests, so 4 errors are already 1.33%
    const w = watchAborts(s)!
    expect(feed(w, seconds(0, 30, (t) => point(t, 'steady', {browse_product: {lat: many(8, 20), status500: t === 0 ? 2 : 0, net: t === 1 ? 2 : 0}})))).toBe(1)
    expect(w.fired).toMatchObject({atMs: 2000, reason: 'can no longer pass: 4 errors are already 1.33% of the at most 301 requests the run schedules'})
    // 3 errors are 0.997% of 301: the share may still end under 1%, so nothing stops the run before the delay
    const w2 = watchAborts(s)!
    expect(feed(w2, seconds(0, 19, (t) => point(t, 'steady', {browse_product: {lat: many(10, 20), status500: t === 0 ? 3 : 0}})))).toBeNull()
  })

  it('a run count that can no longer pass stops the run: too many already, or too few left possible', () => {
    const few = watchAborts(scenario('[{threshold: "browse_product.count < 25", abortOnFail: true}]'))!
    expect(feed(few, seconds(0, 30, fast))).toBe(2)
    expect(few.fired!.reason).toBe('can no longer pass: 30 requests completed already (30)')

    // every request fails with no answer: at most 301 − done can still complete
    const many250 = watchAborts(scenario('[{threshold: "browse_product.count >= 250", abortOnFail: true}]'))!
    expect(feed(many250, seconds(0, 30, (t) => point(t, 'steady', {browse_product: {net: 10}})))).toBe(5)
    expect(many250.fired!.reason).toBe('can no longer pass: at most 241 requests can complete (241): 60 of at most 301 are done')

    // a rate is the count over the run's 30 s
    const rate = watchAborts(scenario('[{threshold: "browse_product.rate >= 9/s", abortOnFail: true}]'))!
    expect(feed(rate, seconds(0, 30, (t) => point(t, 'steady', {browse_product: {net: 10}})))).toBe(3)
    expect(rate.fired!.reason).toMatch(/^can no longer pass: at most 261 requests can complete \(8\.7\/s\)/)
  })

  it('never fires on no data so far, nor in the drain after the schedule', () => {
    const none = watchAborts(scenario('[{threshold: "order.p95 < 1ms", abortOnFail: true}]'))!
    expect(feed(none, seconds(0, 30, slow))).toBeNull()
    // seconds 30, 31, 32 close after the 30 s schedule: requests draining, nothing left to stop
    const drain = watchAborts(scenario('[{threshold: "read.p95 < 100ms", abortOnFail: true}]'))!
    expect(feed(drain, seconds(30, 33, slow))).toBeNull()
    expect(feed(drain, seconds(29, 30, slow))).toBe(29)
  })

  it('bounds the requests a run schedules: constant streams exactly, ramps by their integral, Poisson with 8 σ to spare', () => {
    expect(scheduledAtMost(scenario('[]'), 'all')).toBe(301)
    expect(scheduledAtMost(scenario('[]', '[{name: ramp, duration: 10s, rates: {browse_product: 0, order: 3}, rampTo: {browse_product: 20}}]'), 'read')).toBe(101)
    expect(scheduledAtMost(scenario('[]', '[{name: ramp, duration: 10s, rates: {browse_product: 0, order: 3}, rampTo: {browse_product: 20}}]'), 'all')).toBe(101 + 31)
    expect(scheduledAtMost(scenario('[]', undefined, 'arrival: poisson\n'), 'browse_product')).toBe(Math.ceil(300 + 8 * Math.sqrt(300) + 10))
    expect(scheduledAtMost(scenario('[]'), 'order')).toBe(0)
  })
})

function stats(latencies: number[], o: Partial<RequestStats> = {}): RequestStats {
  const h = new LatencyHistogram()
  for (const l of latencies) h.recordMs(l)
  const summary = h.summary()
  return {
    targetRate: 10,
    achievedRate: 10,
    scheduled: latencies.length,
    sent: latencies.length,
    completed: latencies.length,
    ok: latencies.length,
    errors: 0,
    late: 0,
    queued: 0,
    unsent: 0,
    errorsByClass: {},
    statuses: {'200': latencies.length},
    corrected: summary,
    service: summary,
    histograms: {corrected: h.encode(), service: h.encode(), excused: h.encode()},
    ...o,
  }
}

/** A finished run of 30 s scheduled, aborted after 3 s unless `abort` is null. */
function abortedRun(latency: number, abort: RunAbort | null, invariantsPass = true): RunResult {
  const r: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    scenario: {name: 'abort', file: null, scale: 1, seed: 1, thresholds: {run: ['read.p95 < 100ms'], phases: {}}},
    target: 'http://127.0.0.1:1',
    startedAt: new Date(0).toISOString(),
    durationMs: 3200,
    generator: {hostname: 'h', connections: 8, slackMs: 10, timeoutMs: 1000, maxLateFraction: 0.01, maxLagMs: 500, eventLoopLag: {p50: 1, p99: 2, max: 3}, lateFraction: 0, runs: 1},
    phases: [{name: 'steady', index: 0, startMs: 0, durationMs: 30_000, arrival: 'constant', requests: {browse_product: stats(many(30, latency))}}],
    series: [],
    metrics: {},
    thresholds: [],
    invariants: [{name: 'no_oversell', pass: invariantsPass, ...(invariantsPass ? {} : {detail: 'sold 11 of 10'})}],
    stats: {},
    void: null,
    aborted: abort !== null,
    ...(abort ? {abort} : {}),
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
  return judgeRun(r, REQUEST_GROUPS)
}

const ABORT: RunAbort = {threshold: 'read.p95 < 100ms', scope: 'run', atMs: 3000, reason: '155.6ms over the run so far'}

describe('an aborted run’s verdict and reports', () => {
  it('is FAIL 99 naming the threshold, when and why; 98 when an invariant failed too', () => {
    const r = abortedRun(150, ABORT)
    expect(r.verdict).toMatchObject({pass: false, void: false, exitCode: 99, thresholdsFailed: 1})
    const err = verdictError(r)!
    expect(err).toBeInstanceOf(ThresholdFailedError)
    expect(err.message).toBe('the run was aborted at 3 s by read.p95 < 100ms [run]: 155.6ms over the run so far; 1 threshold(s) failed: read.p95 < 100ms [run]')
    expect(abortedRun(150, ABORT, false).verdict.exitCode).toBe(98)
  })

  it('stays FAIL 99 when the drain after the abort brought the final figure under the limit', () => {
    const r = abortedRun(20, ABORT)
    expect(r.thresholds[0].pass).toBe(true)
    expect(computeVerdict(r)).toMatchObject({pass: false, exitCode: 99, thresholdsFailed: 1})
    expect(verdictError(r)!.message).toBe('the run was aborted at 3 s by read.p95 < 100ms [run]: 155.6ms over the run so far')
  })

  it('is not voided by lateness (the abort was judged without it), but a stall stays VOID 100', () => {
    // every send late: without the lateness the threshold would pass, which voids a run that was not aborted
    const late = (abort: RunAbort | null) => {
      const r = abortedRun(150, abort)
      const excused = new LatencyHistogram()
      for (const l of many(30, 20)) excused.recordMs(l)
      r.phases[0].requests.browse_product.histograms.excused = excused.encode()
      r.phases[0].requests.browse_product.late = 30
      return judgeRun(r, REQUEST_GROUPS)
    }
    expect(late(null).verdict.exitCode).toBe(100)
    expect(late(ABORT).verdict.exitCode).toBe(99)
    const stalled = abortedRun(150, ABORT)
    stalled.generator.stall = {reason: 'the generator sent nothing for 900 ms', detail: {}}
    expect(judgeRun(stalled, REQUEST_GROUPS).verdict.exitCode).toBe(100)
  })

  it('every report says it was aborted, when (of how long) and by which threshold', () => {
    const r = abortedRun(150, ABORT)
    const text = renderReport(r)
    expect(text.split('\n')[0]).toBe('FAIL 99: aborted at 3 s by read.p95 < 100ms; 1 of 1 threshold(s) failed')
    expect(text).toContain('ABORTED at 3 s of 30 s by read.p95 < 100ms [run]: 155.6ms over the run so far. abortOnFail stopped')
    expect(text.split('\n').every((l) => l.length <= 100)).toBe(true)
    expect(renderMarkdownSummary(r)).toContain('> **ABORTED** at 3 s of 30 s by read.p95 &lt; 100ms [run]: 155.6ms over the run so far.')
    const html = renderHtml(r)
    expect(html).toContain('<p id="aborted"><strong>ABORTED at 3 s of 30 s by read.p95 &lt; 100ms [run]: 155.6ms over the run so far.')
    expect(html).toContain('FAIL (aborted at 3 s, 1 threshold(s), 0 invariant(s))')
    // a run that was not aborted says nothing of it
    expect(renderReport(abortedRun(150, null))).not.toContain('ABORTED')
  })
})

describe('peak rates with rampTo (scenario validate, saturate)', () => {
  it('a ramping phase peaks at its busier end; saturate drives the read mix there', () => {
    expect(phasePeakRates({rates: {browse_product: 10, order: 5}, rampTo: {browse_product: 100}})).toEqual({browse_product: 100, order: 5})
    expect(phasePeakRates({rates: {browse_product: 100, order: 5}, rampTo: {browse_product: 10}})).toEqual({browse_product: 100, order: 5})
    expect(phasePeakRates({rates: {browse_product: 10, order: 50}, rampTo: {browse_product: 30, order: 0}}, REQUEST_GROUPS.read)).toEqual({browse_product: 30})
    const plan = saturationPlan(
      {
        phases: [
          {rates: {browse_product: 40, browse_drop: 10}},
          {rates: {browse_product: 10, browse_drop: 0}, rampTo: {browse_drop: 100}},
        ],
        thresholds: [],
      },
      REQUEST_GROUPS.read,
    )
    expect(plan.weights).toEqual({browse_product: 10, browse_drop: 100})
  })
})
