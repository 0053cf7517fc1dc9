/**
 * k6-like thresholds, parsed and evaluated with no I/O:
 *
 *   read.p95 < 200ms            corrected latency percentile of a metric (ms, s or us; bare = ms)
 *   order.service.p99 < 300ms   the same on service time (from the actual send)
 *   errors.rate < 0.1%          failed requests over all requests (bare = fraction)
 *   order.errors < 1%           failed share of one metric
 *   order.late < 1%             share of sends that missed their intended time
 *   browse_product.rate > 95/s  achieved requests per second
 *   order.count >= 1000         completed requests
 *   order.p95? < 500ms          optional: passes when the metric has no samples (otherwise that fails)
 *   read.p99 < 300ms over 5s    holds in every 5 s window of the run (latency stats; from the per-second histograms)
 */
export type ThresholdOp = '<' | '<=' | '>' | '>=' | '=='
export type ThresholdStat = `p${number}` | 'max' | 'mean' | 'rate' | 'count' | 'errors' | 'late'
export type ThresholdKind = 'latency' | 'fraction' | 'rate' | 'count'

export interface Threshold {
  /** The text as written. */
  expression: string
  /** A request type, a group (read, write, all), an extra metric (notify) or `errors` (= all errors). */
  metric: string
  /** Latency measured from the intended send time (corrected, the default) or the actual send. */
  timing: 'corrected' | 'service'
  stat: ThresholdStat
  op: ThresholdOp
  /** The limit in the stat's base unit: ms for latency, a fraction for shares, req/s for rates. */
  limit: number
  kind: ThresholdKind
  /** Written with `?` after the stat: no samples passes instead of failing. */
  optional: boolean
  /** `over 5s`: the length of the windows it must hold in, whole seconds; null for the whole scope. */
  windowS: number | null
}

const RE = /^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.(service|corrected))?\.(p\d+(?:\.\d+)?|max|mean|avg|rate|count|errors|late)(\?)?\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|us|%|\/s)?(?:\s+over\s+(\d+)(s|m))?\s*$/

/** What a threshold on a metric with no samples says: a gate must not pass on traffic that never happened. */
export const NO_SAMPLES = 'no samples: the traffic this threshold guards never ran'

const LATENCY_UNITS: Record<string, number> = {ms: 1, s: 1000, us: 0.001}

/** Parses one threshold; throws an Error whose message says what is wrong and shows the form. */
export function parseThreshold(expression: string): Threshold {
  const m = RE.exec(expression)
  if (!m) throw new Error(`cannot parse threshold "${expression}": expected "<metric>.<stat>[?] <op> <value> [over <N>s]", e.g. "read.p95 < 200ms", "order.p95? < 500ms" or "read.p99 < 300ms over 5s"`)
  let [, metric, timing, stat, optional, op, value, unit, windowN, windowUnit] = m
  if (stat === 'avg') stat = 'mean'
  if (metric === 'errors') {
    // errors.rate is k6's spelling of "the failed share of all requests"
    if (stat !== 'rate') throw new Error(`threshold "${expression}": errors only has .rate (the failed share of all requests)`)
    metric = 'all'
    stat = 'errors'
  }
  const n = Number(value)
  const latency = /^p/.test(stat) || stat === 'max' || stat === 'mean'
  if (/^p/.test(stat)) {
    const p = Number(stat.slice(1))
    if (!(p > 0 && p <= 100)) throw new Error(`threshold "${expression}": percentile must be in (0, 100], got ${p}`)
  }
  if (timing && !latency) throw new Error(`threshold "${expression}": .${timing} only applies to latency stats (pNN, max, mean)`)
  const windowS = windowN === undefined ? null : Number(windowN) * (windowUnit === 'm' ? 60 : 1)
  if (windowS !== null && !latency) throw new Error(`threshold "${expression}": "over" windows only apply to latency stats (pNN, max, mean)`)
  if (windowS === 0) throw new Error(`threshold "${expression}": a window must be at least 1s`)
  let kind: ThresholdKind
  let limit: number
  if (latency) {
    if (unit && !(unit in LATENCY_UNITS)) throw new Error(`threshold "${expression}": latency takes ms, s or us, not ${unit}`)
    kind = 'latency'
    limit = n * LATENCY_UNITS[unit ?? 'ms']
  } else if (stat === 'errors' || stat === 'late') {
    if (unit && unit !== '%') throw new Error(`threshold "${expression}": a share takes % or a bare fraction, not ${unit}`)
    kind = 'fraction'
    limit = unit === '%' ? n / 100 : n
  } else if (stat === 'rate') {
    if (unit && unit !== '/s') throw new Error(`threshold "${expression}": a rate takes /s, not ${unit}`)
    kind = 'rate'
    limit = n
  } else {
    if (unit) throw new Error(`threshold "${expression}": a count takes no unit`)
    kind = 'count'
    limit = n
  }
  return {expression: expression.trim(), metric, timing: (timing as Threshold['timing']) ?? 'corrected', stat: stat as ThresholdStat, op: op as ThresholdOp, limit, kind, optional: optional === '?', windowS}
}

/**
 * What a threshold is measured against. Latency stats take the timing; a metric with no
 * samples returns undefined (the threshold then fails with noData, unless it is optional).
 */
export type MetricLookup = (metric: string, stat: ThresholdStat, timing: Threshold['timing']) => number | undefined

/** A latency stat in every window of `seconds` seconds that has samples, e.g. [{startS: 0, value: 41.2}, {startS: 1, value: 39.8}]. */
export type WindowLookup = (metric: string, stat: ThresholdStat, timing: Threshold['timing'], seconds: number) => WindowValue[]

export interface WindowValue {
  /** Second of the run the window starts at (0-based). */
  startS: number
  value: number
}

export interface ThresholdResult {
  expression: string
  /** `run` for the whole run, else the phase name. */
  scope: string
  metric: string
  stat: string
  timing: Threshold['timing']
  op: ThresholdOp
  limit: number
  kind: ThresholdKind
  /** The measured value; for a window threshold, the worst window's. */
  actual: number | null
  pass: boolean
  noData: boolean
  /** Written with `?` (absent in older run files). */
  optional?: boolean
  /** A window threshold's worst window (absent in older run files, null for whole-scope ones or with no data). */
  window?: {seconds: number; startS: number} | null
}

export function compare(actual: number, op: ThresholdOp, limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit
    case '<=':
      return actual <= limit
    case '>':
      return actual > limit
    case '>=':
      return actual >= limit
    case '==':
      return actual === limit
  }
}

/**
 * The window that decides a threshold: the highest value for < and <=, the lowest for > and >=,
 * for == the first unequal one (else the first). Undefined with no windows.
 */
export function worstWindow(windows: WindowValue[], op: ThresholdOp, limit: number): WindowValue | undefined {
  if (op === '==') return windows.find((w) => w.value !== limit) ?? windows[0]
  const higherIsWorse = op === '<' || op === '<='
  let worst: WindowValue | undefined
  for (const w of windows) if (!worst || (higherIsWorse ? w.value > worst.value : w.value < worst.value)) worst = w
  return worst
}

/**
 * Judges one threshold on one scope. A window threshold is measured by `windows`; where there is
 * no per-second data (a capacity step, a few seconds long), it is judged on the whole scope.
 */
export function evaluateThreshold(t: Threshold, scope: string, lookup: MetricLookup, windows?: WindowLookup): ThresholdResult {
  let actual: number | undefined
  let window: ThresholdResult['window'] = null
  if (t.windowS !== null && windows) {
    const worst = worstWindow(windows(t.metric, t.stat, t.timing, t.windowS), t.op, t.limit)
    actual = worst?.value
    if (worst) window = {seconds: t.windowS, startS: worst.startS}
  } else actual = lookup(t.metric, t.stat, t.timing)
  const noData = actual === undefined || Number.isNaN(actual)
  return {
    expression: t.expression,
    scope,
    metric: t.metric,
    stat: t.stat,
    timing: t.timing,
    op: t.op,
    limit: t.limit,
    kind: t.kind,
    actual: noData ? null : actual!,
    pass: noData ? t.optional : compare(actual!, t.op, t.limit),
    noData,
    optional: t.optional,
    window,
  }
}

/**
 * The measured value of a threshold as reports print it: "212.4ms"; a window threshold's worst
 * window "312.0ms (5s window from 12s)"; with no samples NO_SAMPLES, or "no data (optional)".
 */
export function formatThresholdActual(t: ThresholdResult): string {
  if (t.noData) return t.pass ? 'no data (optional)' : NO_SAMPLES
  const v = formatThresholdValue(t.kind, t.actual)
  return t.window ? `${v} (${t.window.seconds}s window from ${t.window.startS}s)` : v
}

/** Formats a value in the threshold's unit: 212.4ms, 0.25%, 148.9/s. */
export function formatThresholdValue(kind: ThresholdKind, v: number | null): string {
  if (v === null) return 'no data'
  switch (kind) {
    case 'latency':
      return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(v < 10 ? 2 : 1)}ms`
    case 'fraction':
      return `${(v * 100).toFixed(v < 0.01 ? 3 : 2)}%`
    case 'rate':
      return `${v.toFixed(1)}/s`
    case 'count':
      return String(v)
  }
}

/**
 * Whether a threshold can no longer pass, given the least (`lo`) and the most (`hi`) its value
 * can still end at: true when every value in [lo, hi] fails. E.g. `errors.rate < 1%` with 130
 * errors already and at most 12,001 requests to come: lo = 130 / 12,001 ≥ 1%, so it cannot pass.
 */
export function cannotPass(op: ThresholdOp, limit: number, lo: number, hi: number): boolean {
  if (lo > hi) return false
  switch (op) {
    case '<':
      return lo >= limit
    case '<=':
      return lo > limit
    case '>':
      return hi <= limit
    case '>=':
      return hi < limit
    case '==':
      return lo > limit || hi < limit
  }
}
