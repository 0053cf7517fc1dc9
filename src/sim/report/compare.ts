import Table from 'cli-table3'
import {RegressionError, UsageError} from '../../core/errors.js'
import type {RequestStats, RunResult} from '../metrics/result.js'

/**
 * Compares a run with a baseline run, per phase and request type, on throughput, corrected
 * p50/p95/p99 and error rate. The rule for each figure:
 *
 * 1. Within the tolerance (relative change, default 10%) → same.
 * 2. Below the resolution floor (latency change < 1 ms, error-rate change < 0.1 percentage
 *    points) → same: a 0.4 → 0.6 ms p99 is +50% but means nothing.
 * 3. Noise: the per-second samples of both runs (per-second completions for throughput,
 *    per-second p50 for p50, per-second p99 for p95 and p99, per-second error share for the
 *    error rate) are compared with a two-sided Mann-Whitney U test. If p ≥ alpha (0.05) the
 *    change is inside the runs' own second-to-second spread → same. With fewer than 3 seconds
 *    on either side the spread cannot be judged and the tolerance alone decides.
 * 4. Otherwise better or worse by direction. Any "worse" is a regression (exit 97).
 */
export interface CompareOptions {
  /** Relative change allowed before a figure counts as changed; 0.1 = 10%. Default 0.1. */
  tolerance?: number
  /** Significance level of the noise test. Default 0.05. */
  alpha?: number
  /** Latency changes smaller than this are "same", ms. Default 1. */
  minLatencyDeltaMs?: number
  /** Error-rate changes smaller than this (absolute share) are "same". Default 0.001 (0.1 pp). */
  minErrorRateDelta?: number
}

export type CompareMetric = 'throughput' | 'p50' | 'p95' | 'p99' | 'errorRate'
export type Change = 'better' | 'same' | 'worse'

export interface MetricComparison {
  metric: CompareMetric
  baseline: number
  current: number
  /** (current − baseline) / baseline; null when the baseline is 0. */
  relative: number | null
  verdict: Change
  /** Why: "within tolerance", "inside the runs' spread (p=0.41)", "p=0.002"… */
  reason: string
  /** Mann-Whitney two-sided p-value of the per-second samples; null when not computed. */
  pValue: number | null
  samples: {baseline: number; current: number}
}

export interface RowComparison {
  phase: string
  type: string
  metrics: MetricComparison[]
}

export interface RunComparison {
  tolerance: number
  alpha: number
  rows: RowComparison[]
  regressions: Array<{phase: string; type: string; metric: CompareMetric; reason: string}>
  improvements: number
  /** phase/type pairs present in only one of the runs (not compared). */
  onlyInBaseline: string[]
  onlyInCurrent: string[]
}

/** "10%" → 0.1, "0.1" → 0.1, "5" → 0.05 (a bare number above 1 is read as percent). */
export function parseTolerance(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text)
  if (!m) throw new UsageError('--tolerance', `expected a percentage such as 10% or a fraction such as 0.1, got "${text}"`)
  const n = Number(m[1])
  const v = m[2] === '%' || n > 1 ? n / 100 : n
  if (v >= 10) throw new UsageError('--tolerance', `${text} is not a sensible tolerance`)
  return v
}

const HIGHER_IS_WORSE: Record<CompareMetric, boolean> = {throughput: false, p50: true, p95: true, p99: true, errorRate: true}

function errorRate(s: RequestStats): number {
  // as thresholds count it: unsent requests failed too
  const attempts = s.sent + s.unsent
  return attempts === 0 ? 0 : (s.errors + s.unsent) / attempts
}

/** The per-second samples that stand for a figure's spread within one phase. */
function perSecond(run: RunResult, phase: string, type: string, metric: CompareMetric): number[] {
  const out: number[] = []
  for (const pt of run.series) {
    if (pt.phase !== phase) continue
    const s = pt.types[type]
    if (metric === 'throughput') {
      out.push(s?.done ?? 0)
      continue
    }
    if (!s || s.done === 0) continue
    if (metric === 'errorRate') out.push(s.errors / s.done)
    else if (metric === 'p50') out.push(s.p50)
    else out.push(s.p99)
  }
  return out
}

function figure(s: RequestStats, metric: CompareMetric): number {
  if (metric === 'throughput') return s.achievedRate
  if (metric === 'errorRate') return errorRate(s)
  return s.corrected[metric]
}

export function compareRuns(current: RunResult, baseline: RunResult, options: CompareOptions = {}): RunComparison {
  const tolerance = options.tolerance ?? 0.1
  const alpha = options.alpha ?? 0.05
  const minLatency = options.minLatencyDeltaMs ?? 1
  const minError = options.minErrorRateDelta ?? 0.001
  const rows: RowComparison[] = []
  const regressions: RunComparison['regressions'] = []
  let improvements = 0
  const basePairs = new Set(baseline.phases.flatMap((p) => Object.keys(p.requests).map((t) => `${p.name}/${t}`)))
  const curPairs = new Set(current.phases.flatMap((p) => Object.keys(p.requests).map((t) => `${p.name}/${t}`)))

  for (const cp of current.phases) {
    const bp = baseline.phases.find((p) => p.name === cp.name)
    if (!bp) continue
    for (const [type, cs] of Object.entries(cp.requests)) {
      const bs = bp.requests[type]
      if (!bs) continue
      const metrics: MetricComparison[] = []
      for (const metric of ['throughput', 'p50', 'p95', 'p99', 'errorRate'] as CompareMetric[]) {
        const b = figure(bs, metric)
        const c = figure(cs, metric)
        const bSamples = perSecond(baseline, bp.name, type, metric)
        const cSamples = perSecond(current, cp.name, type, metric)
        const relative = b === 0 ? (c === 0 ? 0 : null) : (c - b) / b
        const m: MetricComparison = {metric, baseline: b, current: c, relative, verdict: 'same', reason: '', pValue: null, samples: {baseline: bSamples.length, current: cSamples.length}}
        const delta = c - b
        const isLatency = metric === 'p50' || metric === 'p95' || metric === 'p99'
        if (relative !== null && Math.abs(relative) <= tolerance) m.reason = 'within tolerance'
        else if (isLatency && Math.abs(delta) < minLatency) m.reason = `change below ${minLatency} ms`
        else if (metric === 'errorRate' && Math.abs(delta) < minError) m.reason = `change below ${(minError * 100).toFixed(2)} percentage points`
        else {
          let significant = true
          if (bSamples.length >= 3 && cSamples.length >= 3) {
            m.pValue = mannWhitneyU(bSamples, cSamples).p
            significant = m.pValue < alpha
          }
          if (!significant) m.reason = `inside the runs' per-second spread (p=${m.pValue!.toFixed(3)})`
          else {
            m.verdict = delta > 0 === HIGHER_IS_WORSE[metric] ? 'worse' : 'better'
            m.reason = m.pValue === null ? 'beyond tolerance (too few seconds to judge noise)' : `beyond tolerance, p=${m.pValue.toFixed(4)}`
          }
        }
        if (m.verdict === 'worse') regressions.push({phase: cp.name, type, metric, reason: m.reason})
        if (m.verdict === 'better') improvements++
        metrics.push(m)
      }
      rows.push({phase: cp.name, type, metrics})
    }
  }
  return {
    tolerance,
    alpha,
    rows,
    regressions,
    improvements,
    onlyInBaseline: [...basePairs].filter((k) => !curPairs.has(k)),
    onlyInCurrent: [...curPairs].filter((k) => !basePairs.has(k)),
  }
}

/**
 * A comparison that compares nothing is not a pass: a baseline of another scenario, or one with
 * no phase and request type in common, is refused (exit 2) before any figure is judged.
 */
export function checkComparable(current: RunResult, baseline: RunResult, c: RunComparison): void {
  if (current.scenario.name !== baseline.scenario.name) {
    throw new UsageError('--compare', `the baseline is a run of scenario "${baseline.scenario.name}", this run is of "${current.scenario.name}"`, {
      hint: 'Compare runs of the same scenario file; keep one baseline run file per scenario.',
    })
  }
  if (c.rows.length === 0) {
    throw new UsageError('--compare', `the runs have no phase and request type in common (baseline: ${c.onlyInBaseline.join(', ') || 'none'}; this run: ${c.onlyInCurrent.join(', ') || 'none'})`, {
      hint: 'The scenario file changed its phases or request types since the baseline: record a new baseline with this file.',
    })
  }
}

/** What makes the figures of two runs of one scenario less comparable: a different --scale or dataset seed. */
export function comparisonWarnings(current: RunResult, baseline: RunResult): string[] {
  const out: string[] = []
  if (current.scenario.scale !== baseline.scenario.scale) out.push(`the baseline ran at --scale ${baseline.scenario.scale}, this run at ${current.scenario.scale}: rates and dataset sizes differ`)
  if (current.scenario.seed !== baseline.scenario.seed) out.push(`the baseline's dataset seed is ${baseline.scenario.seed}, this run's ${current.scenario.seed}: the datasets differ`)
  return out
}

/** The error to exit with when a comparison found a regression (exit 97), or null. */
export function regressionError(c: RunComparison): RegressionError | null {
  if (c.regressions.length === 0) return null
  const list = c.regressions.map((r) => `${r.type} ${r.metric} [${r.phase}]`)
  return new RegressionError(`${c.regressions.length} regression(s) beyond ${(c.tolerance * 100).toFixed(0)}% against the baseline: ${list.join('; ')}`, {
    hint: 'Compare the tables above; if the change is intended, make this run the new baseline.',
    details: {regressions: c.regressions},
  })
}

/**
 * Two-sided Mann-Whitney U test (normal approximation with tie and continuity correction).
 * Example: [1..5] vs [6..10] → U = 0, p ≈ 0.0122.
 */
export function mannWhitneyU(a: number[], b: number[]): {u: number; z: number; p: number} {
  const n1 = a.length
  const n2 = b.length
  const all = [...a.map((v) => ({v, g: 0})), ...b.map((v) => ({v, g: 1}))].sort((x, y) => x.v - y.v)
  const n = n1 + n2
  let rankA = 0
  let tieTerm = 0
  for (let i = 0; i < n; ) {
    let j = i
    while (j + 1 < n && all[j + 1].v === all[i].v) j++
    const rank = (i + j) / 2 + 1
    const t = j - i + 1
    tieTerm += t ** 3 - t
    for (let k = i; k <= j; k++) if (all[k].g === 0) rankA += rank
    i = j + 1
  }
  const u = rankA - (n1 * (n1 + 1)) / 2
  const mean = (n1 * n2) / 2
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)))
  if (!(variance > 0)) return {u, z: 0, p: 1}
  const diff = u - mean
  const z = (diff - Math.sign(diff) * 0.5) / Math.sqrt(variance)
  return {u, z, p: Math.min(1, 2 * (1 - normalCdf(Math.abs(z))))}
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 erf; error < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2)
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2)
  return x >= 0 ? (1 + y) / 2 : (1 - y) / 2
}

const fmt = (metric: CompareMetric, v: number) =>
  metric === 'throughput' ? `${v.toFixed(1)}/s` : metric === 'errorRate' ? `${(v * 100).toFixed(2)}%` : `${v.toFixed(v < 10 ? 2 : 1)}ms`

export interface ComparisonRenderOptions {
  /** Plain text, no colour. Default true. */
  plain?: boolean
  /** List every compared figure; by default only those that changed beyond the tolerance and the noise. Default false. */
  all?: boolean
}

/** The figures to show: every one with `all`, else those judged better or worse (beyond the tolerance and the runs' noise). */
export function shownFigures(c: RunComparison, all = false): Array<{phase: string; type: string; m: MetricComparison}> {
  return c.rows.flatMap((r) => r.metrics.filter((m) => all || m.verdict !== 'same').map((m) => ({phase: r.phase, type: r.type, m})))
}

/** "+12.0%", "new" (from a zero baseline). */
export function formatChange(m: MetricComparison): string {
  return m.relative === null ? 'new' : `${m.relative >= 0 ? '+' : ''}${(m.relative * 100).toFixed(1)}%`
}

export const formatFigure = fmt

/** "12 figure(s) unchanged (within 10% or inside the runs' noise) not shown; --all lists them." or null when all are shown. */
export function hiddenNote(c: RunComparison, all = false): string | null {
  const total = c.rows.reduce((n, r) => n + r.metrics.length, 0)
  const hidden = total - shownFigures(c, all).length
  if (!hidden) return null
  return `${hidden} of ${total} figure(s) unchanged (within ${(c.tolerance * 100).toFixed(0)}% or inside the runs' noise) not shown; --all lists them.`
}

/** The comparison as a table: by default only the figures that changed; `all` lists every phase, type and figure. */
export function renderComparison(c: RunComparison, options: ComparisonRenderOptions = {}): string {
  const plain = options.plain ?? true
  const shown = shownFigures(c, options.all)
  const lines = [`Compared with the baseline (tolerance ${(c.tolerance * 100).toFixed(0)}%, noise test alpha ${c.alpha}):`]
  if (shown.length) {
    const t = new Table({
      head: ['phase', 'type', 'figure', 'baseline', 'current', 'change', 'verdict', 'why'],
      colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'left', 'left'],
      style: plain ? {head: [], border: []} : {},
    })
    for (const {phase, type, m} of shown) t.push([phase, type, m.metric, fmt(m.metric, m.baseline), fmt(m.metric, m.current), formatChange(m), m.verdict.toUpperCase(), m.reason])
    lines.push(t.toString())
  } else lines.push('No figure changed beyond the tolerance and the runs\' noise.')
  const note = hiddenNote(c, options.all)
  if (note) lines.push(note)
  if (c.onlyInBaseline.length) lines.push(`Only in the baseline (not compared): ${c.onlyInBaseline.join(', ')}`)
  if (c.onlyInCurrent.length) lines.push(`Only in this run (not compared): ${c.onlyInCurrent.join(', ')}`)
  lines.push(c.regressions.length ? `${c.regressions.length} regression(s), ${c.improvements} improvement(s).` : `No regression; ${c.improvements} improvement(s).`)
  return lines.join('\n')
}
