/**
 * Run results built programmatically for the report tests: a list of requests (phase, type,
 * completion second, latencies, status) is turned into a RunResult the way the open-model
 * generator records one (HDR histograms, per-second series, thresholds, verdict).
 */
import {createRandom} from '../src/core/random.js'
import {LatencyHistogram} from '../src/core/histogram.js'
import {computeVerdict, evaluateRunThresholds, type InvariantResult, type PhaseResult, type RunResult, type SeriesPoint, type SeriesTypePoint} from '../src/sim/metrics/result.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'

export interface FixtureRequest {
  phase: number
  type: string
  /** Completion time, ms from the run's start. */
  t: number
  corrected: number
  service: number
  status: number
}

export interface FixturePhase {
  name: string
  seconds: number
  /** Requests per second per type. */
  rates: Record<string, number>
  thresholds?: string[]
}

export interface FixtureSpec {
  name?: string
  phases: FixturePhase[]
  thresholds?: string[]
  invariants?: InvariantResult[]
  hostname?: string
}

/** Latency of request i of a type in a given second, and whether it fails. */
export type LatencyModel = (ctx: {type: string; phase: string; second: number; i: number; random: () => number}) => {ms: number; status?: number}

/** Evenly spaced requests at each type's rate, latencies from the model. */
export function generateRequests(spec: FixtureSpec, seed: number, model: LatencyModel): FixtureRequest[] {
  const random = createRandom(seed)
  const out: FixtureRequest[] = []
  let start = 0
  spec.phases.forEach((p, pi) => {
    for (const [type, rate] of Object.entries(p.rates)) {
      const n = Math.round(rate * p.seconds)
      for (let i = 0; i < n; i++) {
        const sent = start + (i * 1000) / rate
        const second = Math.floor(sent / 1000)
        const {ms, status} = model({type, phase: p.name, second, i, random})
        // completion inside the same second keeps the series easy to reason about
        out.push({phase: pi, type, t: Math.min(sent + 1, second * 1000 + 999), corrected: ms, service: ms * 0.6, status: status ?? 200})
      }
    }
    start += p.seconds * 1000
  })
  return out
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0
  xs.sort((a, b) => a - b)
  return Math.round(xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] * 1000) / 1000
}

/** A RunResult as the generator would have written it; `rateShare` scales target rates (a half of a split run: 0.5). */
export function buildRun(spec: FixtureSpec, requests: FixtureRequest[], options: {rateShare?: number} = {}): RunResult {
  const share = options.rateShare ?? 1
  let start = 0
  const phases: PhaseResult[] = spec.phases.map((p, pi) => {
    const startMs = start
    start += p.seconds * 1000
    const requestsOut: PhaseResult['requests'] = {}
    for (const [type, rate] of Object.entries(p.rates)) {
      const mine = requests.filter((r) => r.phase === pi && r.type === type)
      const corrected = new LatencyHistogram()
      const service = new LatencyHistogram()
      const statuses: Record<string, number> = {}
      const errorsByClass: Record<string, number> = {}
      let errors = 0
      for (const r of mine) {
        corrected.recordMs(r.corrected)
        service.recordMs(r.service)
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (r.status >= 400) {
          errors++
          errorsByClass[`http_${r.status}`] = (errorsByClass[`http_${r.status}`] ?? 0) + 1
        }
      }
      requestsOut[type] = {
        targetRate: rate * share,
        achievedRate: mine.length / p.seconds,
        scheduled: mine.length,
        sent: mine.length,
        completed: mine.length,
        ok: mine.length - errors,
        errors,
        late: 0,
        queued: 0,
        unsent: 0,
        errorsByClass,
        statuses,
        corrected: corrected.summary(),
        service: service.summary(),
        histograms: {corrected: corrected.encode(), service: service.encode()},
      }
    }
    return {name: p.name, index: pi, startMs, durationMs: p.seconds * 1000, arrival: 'constant', requests: requestsOut}
  })
  const totalS = spec.phases.reduce((s, p) => s + p.seconds, 0)
  const series: SeriesPoint[] = []
  let phaseEnd = 0
  let pi = -1
  const bySecond = new Map<number, FixtureRequest[]>()
  for (const r of requests) {
    const s = Math.floor(r.t / 1000)
    bySecond.set(s, [...(bySecond.get(s) ?? []), r])
  }
  for (let s = 0; s < totalS; s++) {
    while (s * 1000 >= phaseEnd) phaseEnd += spec.phases[++pi].seconds * 1000
    const p = spec.phases[pi]
    const inSecond = bySecond.get(s) ?? []
    const types: Record<string, SeriesTypePoint> = {}
    const point = (rs: FixtureRequest[]): SeriesTypePoint => ({
      sent: rs.length,
      done: rs.length,
      errors: rs.filter((r) => r.status >= 400).length,
      p50: pct(rs.map((r) => r.corrected), 50),
      p99: pct(rs.map((r) => r.corrected), 99),
      serviceP99: pct(rs.map((r) => r.service), 99),
    })
    for (const type of Object.keys(p.rates)) types[type] = point(inSecond.filter((r) => r.type === type))
    types.all = point(inSecond)
    series.push({t: s, phase: p.name, target: Object.values(p.rates).reduce((a, b) => a + b, 0) * share, types})
  }
  const result: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    scenario: {
      name: spec.name ?? 'fixture',
      file: null,
      scale: share,
      seed: 1,
      thresholds: {run: spec.thresholds ?? [], phases: Object.fromEntries(spec.phases.filter((p) => p.thresholds).map((p) => [p.name, p.thresholds!]))},
    },
    target: 'http://127.0.0.1:1/',
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: totalS * 1000,
    generator: {hostname: spec.hostname ?? 'gen', connections: 64, slackMs: 10, timeoutMs: 10_000, maxLateFraction: 0.01, maxLagMs: 500, eventLoopLag: {p50: 1, p99: 2, max: 3}, lateFraction: 0, runs: 1},
    phases,
    series,
    metrics: {},
    thresholds: [],
    invariants: spec.invariants ?? [],
    stats: {},
    void: null,
    aborted: false,
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
  result.thresholds = evaluateRunThresholds(result, REQUEST_GROUPS)
  result.verdict = computeVerdict(result)
  return result
}
