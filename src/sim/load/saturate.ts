import autocannon from 'autocannon'
import {createRandom} from '../../core/random.js'
import {LatencyHistogram, type LatencySummary} from '../../core/histogram.js'
import {evaluateThreshold, parseThreshold, type MetricLookup, type ThresholdResult} from '../metrics/thresholds.js'
import type {RequestBuilder} from '../executors/open-model/index.js'
import {phasePeakRates} from './arrivals.js'
import {reachable} from './reachable.js'

export interface SaturateOptions {
  /** http://host:port[/base] of the target. */
  target: string
  /** Builders of the request types in the mix (reads: any status outside 200–399 counts as an error; `ok` and `onResponse` are not used). */
  builders: Record<string, RequestBuilder>
  /** Relative weight of each type in the mix, e.g. a phase's read rates. */
  weights: Record<string, number>
  /**
   * Thresholds that must hold (latency stats, .errors, errors.rate); every metric name is
   * judged on the whole mix, since a closed model has no per-type schedule. Default ["read.p95 < 200ms"].
   */
  thresholds?: string[]
  /** Connection counts to climb through. Default 1, 2, 4 … 256. */
  connections?: number[]
  /** Seconds per step. Default 5. */
  stepSeconds?: number
  /** Seeds the request mix. Default 1. */
  seed?: number
  onStep?: (step: SaturateStep) => void
}

export interface SaturateStep {
  connections: number
  /** Responses per second. */
  throughput: number
  requests: number
  errors: number
  /** Latency of each request from its send (a closed model has no intended time to correct from). */
  latency: LatencySummary
  histogram: string
  thresholds: ThresholdResult[]
  pass: boolean
}

export interface SaturateResult {
  steps: SaturateStep[]
  /** The highest-throughput step whose thresholds all held; null if even the first failed. */
  best: SaturateStep | null
  stoppedBecause: 'thresholds failed' | 'throughput stopped rising' | 'all steps ran'
}

/**
 * Closed-model saturation with autocannon: climbs through connection counts and reports the
 * highest throughput at which the thresholds still hold. It stops at the first failing step,
 * or once more connections stop adding throughput (beyond that only queueing grows).
 */
export async function saturate(o: SaturateOptions): Promise<SaturateResult> {
  const thresholds = (o.thresholds ?? ['read.p95 < 200ms']).map(parseThreshold)
  const ladder = o.connections ?? [1, 2, 4, 8, 16, 32, 64, 128, 256]
  const random = createRandom(o.seed ?? 1)
  const types = Object.keys(o.weights).filter((t) => o.weights[t] > 0)
  const total = types.reduce((s, t) => s + o.weights[t], 0)
  let seq = 0
  const pick = () => {
    let x = random() * total
    for (const t of types) if ((x -= o.weights[t]) < 0) return t
    return types[types.length - 1]
  }
  const base = new URL(o.target)
  const prefix = base.pathname.replace(/\/$/, '')

  await reachable(base)
  const steps: SaturateStep[] = []
  let stoppedBecause: SaturateResult['stoppedBecause'] = 'all steps ran'
  for (const connections of ladder) {
    const h = new LatencyHistogram()
    let errors = 0
    let requests = 0
    let settle!: (r: {err: unknown; result: autocannon.Result}) => void
    const finished = new Promise<{err: unknown; result: autocannon.Result}>((resolve) => (settle = resolve))
    const options = {
      url: base.origin,
      connections,
      duration: o.stepSeconds ?? 5,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => {
            const type = pick()
            const spec = o.builders[type]({type, phase: 'saturate', seq: seq++, intendedMs: 0, random})
            const body = spec.body === undefined ? undefined : typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body)
            const headers = {...(spec.body !== undefined && typeof spec.body !== 'string' ? {'content-type': 'application/json'} : {}), ...spec.headers}
            return {...req, method: spec.method ?? 'GET', path: prefix + spec.path, headers, body}
          },
        },
      ],
    }
    const instance = autocannon(options as unknown as autocannon.Options, (err, result) => settle({err, result}))
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      requests++
      h.recordMs(ms)
      if (status < 200 || status >= 400) errors++
    })
    const {err, result} = await finished
    if (err) throw err
    errors += result.errors + result.timeouts
    const durationS = (result.duration ?? o.stepSeconds ?? 5) || 1
    const lookup: MetricLookup = (_metric, stat) => {
      if (stat === 'errors') return requests + result.errors + result.timeouts === 0 ? undefined : errors / (requests + result.errors + result.timeouts)
      if (stat === 'rate') return requests / durationS
      if (stat === 'count') return requests
      if (stat === 'late') return 0
      if (h.count === 0) return undefined
      if (stat === 'max') return h.maxMs
      if (stat === 'mean') return h.meanMs
      return h.percentileMs(Number(stat.slice(1)))
    }
    const judged = thresholds.map((t) => evaluateThreshold(t, `c${connections}`, lookup))
    const step: SaturateStep = {
      connections,
      throughput: requests / durationS,
      requests,
      errors,
      latency: h.summary(),
      histogram: h.encode(),
      thresholds: judged,
      pass: judged.every((t) => t.pass) && requests > 0,
    }
    steps.push(step)
    o.onStep?.(step)
    if (!step.pass) {
      stoppedBecause = 'thresholds failed'
      break
    }
    const prev = steps.at(-2)
    if (prev && step.throughput < prev.throughput * 1.02 && steps.length >= 3 && steps.at(-3)!.throughput * 1.02 > prev.throughput) {
      stoppedBecause = 'throughput stopped rising'
      break
    }
  }
  const passing = steps.filter((s) => s.pass)
  const best = passing.length ? passing.reduce((a, b) => (b.throughput > a.throughput ? b : a)) : null
  return {steps, best, stoppedBecause}
}

/**
 * What `--mode saturate` drives for a scenario: the read mix of its busiest read phase as weights,
 * and its read thresholds (on read types or the read group, plus errors.rate), whole-run or per phase.
 */
export function saturationPlan(
  s: {phases: Array<{rates: Record<string, number | undefined>; rampTo?: Record<string, number | undefined>; thresholds?: string[]}>; thresholds: string[]},
  readTypes: readonly string[],
): {weights: Record<string, number>; thresholds: string[]} {
  // a ramping phase's read mix at its busiest end (the start or the rampTo rates)
  const mixes = s.phases.map((p) => phasePeakRates(p, readTypes))
  const readRate = (mix: Record<string, number>) => Object.values(mix).reduce((sum, r) => sum + r, 0)
  const busiest = mixes.reduce((a, b) => (readRate(b) > readRate(a) ? b : a))
  const weights = Object.fromEntries(Object.entries(busiest).filter(([, r]) => r > 0))
  const isRead = (expr: string) => {
    const t = parseThreshold(expr)
    return t.metric === 'read' || readTypes.includes(t.metric) || (t.metric === 'all' && t.stat === 'errors')
  }
  const thresholds = [...new Set([...s.thresholds, ...s.phases.flatMap((p) => p.thresholds ?? [])].filter(isRead))]
  return {weights, thresholds: thresholds.length ? thresholds : ['read.p95 < 200ms']}
}
