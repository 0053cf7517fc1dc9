import {InvariantViolatedError, ThresholdFailedError, VoidRunError, ExitCode, type LivedropError} from '../../core/errors.js'
import {LatencyHistogram, type LatencySummary} from '../../core/histogram.js'
import {evaluateThreshold, formatThresholdValue, NO_SAMPLES, parseThreshold, type MetricLookup, type ThresholdResult, type ThresholdStat, type WindowLookup, type WindowValue} from './thresholds.js'

/** The serialisable result of a run: what `--out` writes and `livedrop report` reads back. */
export interface RunResult {
  kind: 'livedrop-run'
  version: 1
  scenario: {
    name: string
    file: string | null
    scale: number
    seed: number
    /** Threshold expressions as written, so a saved or merged run can be re-evaluated. */
    thresholds: {run: string[]; phases: Record<string, string[]>}
    /** This generator's part of a split run (`--segment i/n`): `report merge` wants 1..count once each. Absent: the whole scenario. */
    segment?: {index: number; count: number}
    /** The wall-clock instant the schedule was held for (`--start-at`), ISO. Absent: started when ready. */
    startAt?: string
  }
  /** The target base URL (password hidden). */
  target: string
  startedAt: string
  durationMs: number
  generator: GeneratorInfo
  phases: PhaseResult[]
  /** One point per second of the run, for charts. */
  series: SeriesPoint[]
  /** Extra latency metrics other parts add, e.g. `notify` (drop start → event seen by a follower). */
  metrics: Record<string, ExtraMetric>
  thresholds: ThresholdResult[]
  /** Filled by the invariant checks after the run. */
  invariants: InvariantResult[]
  /** Engine figures (cache hit ratio, units sold, sold-out answers, replays…) added after the run. */
  stats: Record<string, unknown>
  /**
   * Set when the run is void (exit 100): the generator stalled (`stall`), or its late sends could
   * have turned a pass into the failure measured (`lateness`; detail.thresholds says which and by
   * how much). Derived by judgeRun; files of older versions carry no kind (a stall).
   */
  void: RunVoid | null
  /** Stopped early: by the caller's AbortSignal, or by a threshold with abortOnFail (then `abort` says which). */
  aborted: boolean
  /** Set when a threshold written with abortOnFail stopped the run (absent otherwise, and in older files). */
  abort?: RunAbort
  verdict: Verdict
  /** The first few failing responses per request type, for the reports (absent in older files). */
  failures?: Record<string, FailureSample[]>
  /** Faults the scenario injected, for the charts' markers (absent when none). */
  faults?: Array<{atMs: number; kind: string; endMs?: number; action?: string; error?: string}>
}

/** One failing response as the run kept it: when (s since start), what status (or error class), and the start of its body. */
export interface FailureSample {
  t: number
  status: number | string
  /** At most 200 characters. */
  body: string
}

/** Which threshold with abortOnFail stopped the run, when, and what it measured then. */
export interface RunAbort {
  /** The threshold as written, e.g. "read.p95 < 200ms". */
  threshold: string
  /** `run`, or the name of the phase whose threshold it is. */
  scope: string
  /** When it was decided, ms since the run's start: the end of the last second judged. */
  atMs: number
  /**
   * What it measured: "312.0ms over the run so far", or why it can no longer pass:
   * "130 errors are already 1.08% of the at most 12,001 requests the run schedules".
   */
  reason: string
}

/** "aborted at 14 s by read.p95 < 200ms [run]: 312.0ms over the run so far" */
export function describeAbort(a: RunAbort): string {
  return `aborted at ${a.atMs / 1000} s by ${a.threshold} [${a.scope}]: ${a.reason}`
}

export interface RunVoid {
  kind?: 'stall' | 'lateness'
  reason: string
  detail: Record<string, unknown>
}

/** A failed threshold that passes once the generator's own lateness is taken out. */
export interface LatenessFlip {
  expression: string
  scope: string
  kind: ThresholdResult['kind']
  op: ThresholdResult['op']
  limit: number
  /** As measured (late sends counted from their intended time). */
  actual: number
  /** With each late send's latency taken from when the generator actually got to it. */
  excused: number
}

export interface GeneratorInfo {
  hostname: string
  connections: number
  slackMs: number
  timeoutMs: number
  maxLateFraction: number
  maxLagMs: number
  /** Event-loop delay of the generator during the run, ms. */
  eventLoopLag: {p50: number; p99: number; max: number}
  /** Share of requests the generator itself sent later than slackMs. */
  lateFraction: number
  /** Requests the generator sent later than slackMs (absent in older run files). */
  late?: number
  /** The most any request waited for the generator to get to it, ms (absent in older run files). */
  worstLagMs?: number
  /** Share of the run the generator's thread was busy (event-loop utilization, 0–1; the busiest one's in a merged run). */
  cpu?: number
  /** The generator sent nothing for longer than maxLagMs while requests were due: the run stopped early. */
  stall?: {reason: string; detail: Record<string, unknown>} | null
  /** How many generator runs were merged into this one (1 for a plain run). */
  runs: number
}

export interface PhaseResult {
  name: string
  index: number
  startMs: number
  durationMs: number
  /** How long the phase ran when the run was stopped before its end (an abort, a stall); absent when it ran whole. */
  ranMs?: number
  arrival: 'constant' | 'poisson'
  requests: Record<string, RequestStats>
}

export interface RequestStats {
  /** Requests per second the scenario asked for. */
  targetRate: number
  /**
   * Requests sent before the phase ended (within slackMs) per second of the phase: a backlog
   * drained after the phase does not count, so a target that cannot keep up shows here.
   */
  achievedRate: number
  /** Requests the arrival process produced. */
  scheduled: number
  sent: number
  /** Answered with any HTTP status. */
  completed: number
  ok: number
  /** Non-OK statuses plus network failures. */
  errors: number
  /** Sent more than slackMs after the intended time because the generator fell behind. */
  late: number
  /** Waited for a free connection (max in flight reached): the target was slow, latency counts from the intended time. */
  queued: number
  /** Due but never sent: still waiting for a connection when the run ended, or cut off by a stall. Counted as failed. */
  unsent: number
  /** Not yet due when the run was stopped on purpose (abortOnFail or the user): never attempted, not counted as failed. */
  skipped?: number
  /** e.g. {"http_503": 2, "net_ECONNRESET": 1, "timeout": 1} */
  errorsByClass: Record<string, number>
  /** Answers by HTTP status, e.g. {"200": 9000, "409": 120}. */
  statuses: Record<string, number>
  /** Latency from the intended send time (coordinated-omission corrected). */
  corrected: LatencySummary
  /** Latency from the actual send. */
  service: LatencySummary
  /**
   * HDR histograms, compressed base64, for exact merging and re-rendering. `excused`: corrected
   * latency except that a late send counts from when the generator got to it (absent in older files).
   */
  histograms: {corrected: string; service: string; excused?: string}
}

export interface SeriesTypePoint {
  sent: number
  done: number
  errors: number
  /** Corrected latency of the responses completed in this second, ms. */
  p50: number
  p99: number
  serviceP99: number
  /**
   * This second's coarse HDR histograms (2 significant digits), compressed base64, so window
   * thresholds merge seconds exactly; `excused` only in a second with late sends (else it equals
   * `corrected`). Absent in older run files.
   */
  histograms?: {corrected: string; service: string; excused?: string}
  /** Answers by HTTP status completed this second, e.g. {"200": 410, "409": 12} (absent in older files). */
  statuses?: Record<string, number>
}

export interface SeriesPoint {
  /** Second of the run (0-based). */
  t: number
  phase: string
  /** Target rate of the phase at this second, req/s. */
  target: number
  /** Per request type, plus `all`. */
  types: Record<string, SeriesTypePoint>
  /** Units of the drop left at the end of this second, when known. */
  stock?: number
}

export interface ExtraMetric {
  summary: LatencySummary
  histogram: string
}

export interface InvariantResult {
  name: string
  pass: boolean
  detail?: string
  data?: Record<string, unknown>
}

export interface Verdict {
  pass: boolean
  void: boolean
  thresholdsFailed: number
  invariantsFailed: number
  /** 0, 100 (void), 98 (invariant), 99 (threshold). */
  exitCode: number
}

/** Request types of a metric name: a group (read, write, all) or a single type. */
export type Groups = Record<string, readonly string[]>

function typesOf(metric: string, groups: Groups, available: string[]): string[] {
  if (metric === 'all') return available
  return (groups[metric] as string[] | undefined) ?? [metric]
}

/** Counts, shares and rates of a metric for the whole run (phase null) or one phase; latency stats are undefined here. */
export function countLookup(result: RunResult, phase: string | null, groups: Groups): MetricLookup {
  const phases = phase === null ? result.phases : result.phases.filter((p) => p.name === phase)
  const durationS = phases.reduce((s, p) => s + (p.ranMs ?? p.durationMs), 0) / 1000
  const available = [...new Set(phases.flatMap((p) => Object.keys(p.requests)))]
  const sum = (metric: string, field: 'completed' | 'errors' | 'late' | 'sent' | 'unsent') => {
    let n = 0
    for (const p of phases) for (const t of typesOf(metric, groups, available)) n += p.requests[t]?.[field] ?? 0
    return n
  }
  return (metric: string, stat: ThresholdStat) => {
    if (stat === 'count') return sum(metric, 'completed')
    if (stat === 'rate') return durationS > 0 ? sum(metric, 'completed') / durationS : undefined
    if (stat === 'errors') {
      // unsent requests failed too: they never reached the target
      const attempts = sum(metric, 'sent') + sum(metric, 'unsent')
      return attempts === 0 ? undefined : (sum(metric, 'errors') + sum(metric, 'unsent')) / attempts
    }
    if (stat === 'late') {
      const attempts = sum(metric, 'sent') + sum(metric, 'unsent')
      return attempts === 0 ? undefined : sum(metric, 'late') / attempts
    }
    return undefined
  }
}

/**
 * Evaluates every threshold of the run (whole-run and per-phase) from its stored histograms.
 * Histograms merge exactly, so `read.p95` is the p95 of every read, not an average of p95s.
 * With excuseLateness, corrected latency is read from the excused histograms: what the run would
 * have measured had every late send gone out when the generator actually sent it.
 */
export function evaluateRunThresholds(result: RunResult, groups: Groups, excuseLateness = false): ThresholdResult[] {
  const out: ThresholdResult[] = []
  const latencyOrCount = (phase: string | null): MetricLookup => {
    const counts = countLookup(result, phase, groups)
    const hists = new Map<string, LatencyHistogram | null>()
    return (metric, stat, timing) => {
      if (!/^p|^max$|^mean$/.test(stat)) return counts(metric, stat, timing)
      const which = excuseLateness && timing === 'corrected' ? 'excused' : timing
      const key = `${metric}/${which}`
      if (!hists.has(key)) hists.set(key, mergedHistogram(result, phase, metric, which, groups))
      const h = hists.get(key)!
      if (!h || h.count === 0) return undefined
      if (stat === 'max') return h.maxMs
      if (stat === 'mean') return h.meanMs
      return h.percentileMs(Number(stat.slice(1)))
    }
  }
  const run = latencyOrCount(null)
  for (const e of result.scenario.thresholds.run) out.push(evaluateThreshold(parseThreshold(e), 'run', run, windowLookup(result, null, groups, excuseLateness)))
  for (const [phase, exprs] of Object.entries(result.scenario.thresholds.phases)) {
    const lookup = latencyOrCount(phase)
    const windows = windowLookup(result, phase, groups, excuseLateness)
    for (const e of exprs) out.push(evaluateThreshold(parseThreshold(e), phase, lookup, windows))
  }
  return out
}

/**
 * A latency stat in every window of a scope, from the per-second histograms of the run's series:
 * windows start at every second from the scope's first second with samples to the last one that
 * leaves a whole window (a scope shorter than the window is one window); empty windows are left
 * out. Seconds are those a response completed in, so a phase's drain after its end counts.
 */
export function windowLookup(result: RunResult, phase: string | null, groups: Groups, excuseLateness = false): WindowLookup {
  const points = phase === null ? result.series : result.series.filter((p) => p.phase === phase)
  return (metric, stat, timing, seconds) => {
    const which = excuseLateness && timing === 'corrected' ? 'excused' : timing
    const bySecond = new Map<number, LatencyHistogram>()
    for (const p of points) {
      const types = metric === 'all' ? ['all'] : ((groups[metric] as string[] | undefined) ?? [metric])
      for (const t of types) {
        const hs = p.types[t]?.histograms
        const enc = hs && (hs[which] ?? hs.corrected)
        if (!enc) continue
        const h = bySecond.get(p.t) ?? LatencyHistogram.coarse()
        h.add(LatencyHistogram.decode(enc))
        bySecond.set(p.t, h)
      }
    }
    if (!bySecond.size) return []
    const first = Math.min(...bySecond.keys())
    const last = Math.max(...bySecond.keys())
    const out: WindowValue[] = []
    for (let start = first; start <= Math.max(first, last - seconds + 1); start++) {
      const w = LatencyHistogram.coarse()
      for (let t = start; t < start + seconds; t++) {
        const h = bySecond.get(t)
        if (h) w.add(h)
      }
      if (w.count === 0) continue
      out.push({startS: start, value: stat === 'max' ? w.maxMs : stat === 'mean' ? w.meanMs : w.percentileMs(Number(stat.slice(1)))})
    }
    return out
  }
}

/** The exact merge of a metric's histograms over a scope; null when nothing was recorded. */
export function mergedHistogram(result: RunResult, phase: string | null, metric: string, timing: 'corrected' | 'service' | 'excused', groups: Groups): LatencyHistogram | null {
  const extra = result.metrics[metric]
  if (extra) return phase === null ? LatencyHistogram.decode(extra.histogram) : null
  const phases = phase === null ? result.phases : result.phases.filter((p) => p.name === phase)
  const available = [...new Set(phases.flatMap((p) => Object.keys(p.requests)))]
  let h: LatencyHistogram | null = null
  for (const p of phases)
    for (const t of typesOf(metric, groups, available)) {
      const hs = p.requests[t]?.histograms
      // a file without excused histograms had no way to excuse lateness: its corrected ones stand
      const enc = hs && (hs[timing] ?? hs.corrected)
      if (!enc) continue
      h ??= new LatencyHistogram()
      h.add(LatencyHistogram.decode(enc))
    }
  return h
}

export function computeVerdict(result: RunResult): Verdict {
  // the threshold that stopped the run failed when it was judged, whatever the few seconds of drain after it did to the final figure
  const thresholdsFailed = Math.max(result.thresholds.filter((t) => !t.pass).length, result.abort ? 1 : 0)
  const invariantsFailed = result.invariants.filter((i) => !i.pass).length
  const isVoid = result.void !== null
  const exitCode = isVoid ? ExitCode.voidRun : invariantsFailed ? ExitCode.invariantViolated : thresholdsFailed ? ExitCode.thresholdFailed : ExitCode.ok
  return {pass: exitCode === ExitCode.ok, void: isVoid, thresholdsFailed, invariantsFailed, exitCode}
}

/**
 * The generator's stall, if any. A file of an older version kept it in `void` (with no kind).
 */
export function stallOf(result: RunResult): {reason: string; detail: Record<string, unknown>} | null {
  if (result.generator.stall !== undefined) return result.generator.stall
  return result.void && result.void.kind === undefined ? {reason: result.void.reason, detail: result.void.detail} : null
}

/**
 * Judges the run: evaluates its thresholds, decides whether it is void, and sets the verdict.
 *
 * Latency counts from each request's intended send time, so a late send only makes a figure
 * worse: a PASS measured with late sends stands. A FAIL is void only when the generator's
 * lateness could have caused it: the thresholds are evaluated again with every late send counted
 * from when the generator got to it, and if they all pass then (and no invariant failed), the run
 * is void and `void.detail.thresholds` says which thresholds flipped and by how much. A stall of
 * the generator (the run stopped early) is void regardless. A run a threshold with abortOnFail
 * stopped fails (99) unless it stalled (100) or an invariant failed (98).
 */
export function judgeRun(result: RunResult, groups: Groups): RunResult {
  result.thresholds = evaluateRunThresholds(result, groups)
  const stall = stallOf(result)
  let flips: LatenessFlip[] = []
  // with no late send the excused histograms equal the corrected ones: nothing can flip. A run
  // stopped by abortOnFail was stopped only for a failure that stood with the lateness taken out
  // (see run/abort.ts), so lateness cannot have caused it
  if (!stall && !result.abort && result.invariants.every((i) => i.pass)) flips = latenessFlips(result.thresholds, evaluateRunThresholds(result, groups, true))
  result.void = stall
    ? {kind: 'stall', ...stall}
    : flips.length
      ? {kind: 'lateness', reason: `the generator's late sends could have caused the failure: ${flips.map(describeFlip).join('; ')}`, detail: {thresholds: flips}}
      : null
  result.verdict = computeVerdict(result)
  return result
}

/**
 * The failed thresholds that pass without the generator's lateness, when that turns the whole
 * threshold verdict into a pass; otherwise none (a failure that stands either way is the target's).
 * `measured` and `excused` are the same thresholds in the same order.
 */
export function latenessFlips(measured: ThresholdResult[], excused: ThresholdResult[]): LatenessFlip[] {
  if (measured.every((t) => t.pass) || !excused.every((t) => t.pass)) return []
  return measured.flatMap((t, i) =>
    t.pass ? [] : [{expression: t.expression, scope: t.scope, kind: t.kind, op: t.op, limit: t.limit, actual: t.actual!, excused: excused[i].actual!}],
  )
}

/** "read.p95 < 200ms [run]: 237.1ms measured, 12.4ms without the generator's lateness" */
export function describeFlip(f: LatenessFlip): string {
  return `${f.expression} [${f.scope}]: ${formatThresholdValue(f.kind, f.actual)} measured, ${formatThresholdValue(f.kind, f.excused)} without the generator's lateness`
}

/**
 * Re-evaluates thresholds and the verdict after extras were added (invariants, stats, extra
 * metrics such as notify). Returns the same object, updated.
 */
export function finalizeRun(
  result: RunResult,
  groups: Groups,
  extras: {invariants?: InvariantResult[]; stats?: Record<string, unknown>; metrics?: Record<string, LatencyHistogram>} = {},
): RunResult {
  if (extras.invariants) result.invariants = extras.invariants
  if (extras.stats) result.stats = {...result.stats, ...extras.stats}
  for (const [name, h] of Object.entries(extras.metrics ?? {})) result.metrics[name] = {summary: h.summary(), histogram: h.encode()}
  return judgeRun(result, groups)
}

/** The error to exit with for a run's verdict (void 100 > invariant 98 > threshold 99), or null. */
export function verdictError(result: RunResult): LivedropError | null {
  const v = result.verdict
  if (v.void) {
    const lateness = result.void!.kind === 'lateness'
    return new VoidRunError(`the run is void: ${result.void!.reason}`, {
      hint: lateness
        ? "The thresholds pass once the generator's own late sends are taken out, so the failure may be the generator's, not the target's. Give the generator a core or machine of its own, lower the rates or --scale, or split the load over several generators (report merge)."
        : 'The load generator stopped sending for longer than its stall budget (generator.maxLagMs), so the run was stopped. Give the generator a core or machine of its own, lower the rates or --scale, or split the load over several generators (report merge).',
      details: result.void!.detail,
    })
  }
  if (v.invariantsFailed) {
    const failed = result.invariants.filter((i) => !i.pass)
    return new InvariantViolatedError(`${failed.length} invariant(s) violated: ${failed.map((i) => `${i.name}${i.detail ? ` (${i.detail})` : ''}`).join('; ')}`, {
      hint: 'This is a correctness bug in the engine under test; the run file holds the details.',
    })
  }
  if (v.thresholdsFailed) {
    const failed = result.thresholds.filter((t) => !t.pass)
    const list = `${failed.length} threshold(s) failed: ${failed.map((t) => `${t.expression} [${t.scope}]${t.noData ? ` (${NO_SAMPLES})` : ''}`).join('; ')}`
    const message = [result.abort && `the run was ${describeAbort(result.abort)}`, failed.length && list].filter(Boolean).join('; ')
    return new ThresholdFailedError(message, {
      hint: result.abort
        ? 'abortOnFail stopped the run there: what was not yet due is counted as skipped, not failed. Raise capacity, relax the threshold, or give it a longer delayAbortEval.'
        : failed.some((t) => t.noData)
        ? 'See the report for the measured values. A threshold with no samples guards traffic the run never sent: fix the rates, or write it with ? after the stat (order.p95? < 500ms) if that traffic is optional.'
        : 'See the report for the measured values; raise capacity or relax the threshold in the scenario file.',
    })
  }
  return null
}
