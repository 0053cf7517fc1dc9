/**
 * What a capacity run records: one summary per step (from the step's RunResult and CPU report),
 * the search's answer, and the rates that answer stands for. Serialisable: `--json` prints it and
 * a run file can hold it.
 */
import {ExitCode, InvariantViolatedError, ThresholdFailedError, VoidRunError, type LivedropError} from '../../core/errors.js'
import {cpuPer1000Requests, cpuSentence, cpuWindow, runStartS, type CpuReport} from '../metrics/cpu.js'
import {mergedHistogram, type PhaseResult, type RunResult} from '../metrics/result.js'
import {NO_SAMPLES} from '../metrics/thresholds.js'
import {REQUEST_GROUPS, type Scenario} from '../scenario/schema.js'
import {peakRates} from './scale.js'
import type {CapacityLimit, CapacitySearch, SearchStep, StepOutcome, StepVerdict} from './search.js'

/** p95 and p99 of a metric, ms; null when it had no samples. */
export interface Percentiles {
  p95: number
  p99: number
}

export interface CapacityStepData {
  /** The rate scale this step ran at (× the scenario's rates). */
  scale: number
  /** The busiest phase (the burst): target and achieved req/s, all request types. */
  peak: {phase: string; target: number; achieved: number}
  /** Over the whole step: mean target and achieved req/s. */
  rate: {target: number; achieved: number}
  /** Order attempts/s the busiest phase asked for and achieved. */
  orders: {target: number; achieved: number}
  /** Completed requests of the step (what CPU per 1,000 requests divides by). */
  requests: number
  latency: {read: Percentiles | null; order: Percentiles | null; notify: Percentiles | null}
  /** Failed and never-sent requests over all attempts. */
  errors: {count: number; share: number}
  /** 0, 98, 99 or 100, as the step's run exits alone. */
  exitCode: number
  /** Failed thresholds ("read.p95 < 200ms [run]: 241ms"), the void reason, violated invariants. */
  failures: string[]
  durationMs: number
  /** The step's CPU per component; null when not sampled. */
  cpu: CpuReport | null
  /** The same over the busiest phase alone (where a burst saturates what the step's mean hides); null when not sampled. */
  peakCpu: CpuReport | null
  /** CPU-seconds per 1,000 completed requests per component, plus `machine`. */
  cpuPer1000: Record<string, number | null> | null
}

export type CapacityStep = SearchStep<CapacityStepData>

export interface CapacityResult {
  kind: 'livedrop-capacity'
  version: 1
  scenario: {name: string; file: string | null}
  /** The busiest phase's rates at ×1: what a scale multiplies in the answer line. */
  base: {phase: string; total: number; read: number; order: number}
  /** Each step's length (--step-seconds), or null when steps ran the scenario's own length. */
  stepSeconds: number | null
  /** Highest passing scale; null when none passed. */
  capacity: number | null
  firstFail: number | null
  limit: CapacityLimit
  atLeast: boolean
  belowMin: boolean
  tolerance: number
  minScale: number
  maxScale: number | null
  /** --min-scale as a CI gate, or null. */
  gate: number | null
  hint: CapacitySearch['hint']
  /** The answer in rates: the capacity scale times `base`. */
  answer: {scale: number; total: number; read: number; order: number} | null
  /** One sentence: what ended the search and what ran out (see limitSentence). */
  limitedBy: string
  steps: CapacityStep[]
  /** 0; 99 when below the gate; 98 when an invariant broke; 100 when the generator's limit hides whether the gate holds. */
  exitCode: number
}

function percentiles(result: RunResult, metric: string): Percentiles | null {
  const h = mergedHistogram(result, null, metric, 'corrected', REQUEST_GROUPS)
  return h && h.count ? {p95: h.percentileMs(95), p99: h.percentileMs(99)} : null
}

const round1 = (v: number) => Math.round(v * 10) / 10

/** The step's figures from its judged RunResult (and CPU report, when sampled). */
export function summarizeStep(scale: number, result: RunResult, cpu: CpuReport | null = null): CapacityStepData {
  const totalS = result.phases.reduce((s, p) => s + p.durationMs, 0) / 1000
  let target = 0
  let achieved = 0
  let requests = 0
  let peak = {phase: '', target: -1, achieved: 0}
  let busiest: PhaseResult | undefined
  for (const p of result.phases) {
    const stats = Object.values(p.requests)
    const t = stats.reduce((s, r) => s + r.targetRate, 0)
    const a = stats.reduce((s, r) => s + r.achievedRate, 0)
    target += (t * p.durationMs) / 1000
    achieved += (a * p.durationMs) / 1000
    requests += stats.reduce((s, r) => s + r.completed, 0)
    if (t > peak.target) {
      peak = {phase: p.name, target: t, achieved: a}
      busiest = p
    }
  }
  // as errors.rate counts them: unsent requests failed too
  const all = result.phases.flatMap((p) => Object.values(p.requests))
  const attempts = all.reduce((n, r) => n + r.sent + r.unsent, 0)
  const failed = all.reduce((n, r) => n + r.errors + r.unsent, 0)
  const failures = [
    ...(result.void ? [`void: ${result.void.reason}`] : []),
    ...result.invariants.filter((i) => !i.pass).map((i) => `invariant ${i.name}${i.detail ? `: ${i.detail}` : ''}`),
    ...result.thresholds.filter((t) => !t.pass).map((t) => `${t.expression} [${t.scope}]${t.noData ? ` (${NO_SAMPLES})` : ''}`),
  ]
  const notify = result.metrics.notify?.summary
  // the phases' times are from the run's start, the sampler's from its own
  const offsetS = cpu ? runStartS(cpu, result.startedAt) : 0
  return {
    scale,
    peak: {phase: peak.phase, target: round1(peak.target), achieved: round1(peak.achieved)},
    rate: {target: totalS > 0 ? round1(target / totalS) : 0, achieved: totalS > 0 ? round1(achieved / totalS) : 0},
    orders: {target: round1(busiest?.requests.order?.targetRate ?? 0), achieved: round1(busiest?.requests.order?.achievedRate ?? 0)},
    requests,
    latency: {read: percentiles(result, 'read'), order: percentiles(result, 'order'), notify: notify && notify.count ? {p95: notify.p95, p99: notify.p99} : null},
    errors: {count: failed, share: attempts ? failed / attempts : 0},
    exitCode: result.verdict.exitCode,
    failures,
    durationMs: result.durationMs,
    cpu,
    peakCpu: cpu && busiest ? cpuWindow(cpu, offsetS + busiest.startMs / 1000, offsetS + (busiest.startMs + busiest.durationMs) / 1000) : null,
    cpuPer1000: cpu ? cpuPer1000Requests(cpu, requests) : null,
  }
}

/** The search's verdict of a judged step: void (100), invariant (98), fail (99), pass (0). */
export function stepVerdict(result: RunResult): StepVerdict {
  const v = result.verdict
  return v.void ? 'void' : v.invariantsFailed ? 'invariant' : v.pass ? 'pass' : 'fail'
}

/**
 * What the lead's judge returns for one step: `findCapacity(async (k) => judgeStep(k, await runStep(k), cpu))`.
 */
export function judgeStep(scale: number, result: RunResult, cpu: CpuReport | null = null): StepOutcome<CapacityStepData> {
  const data = summarizeStep(scale, result, cpu)
  return {verdict: stepVerdict(result), ...(data.failures.length ? {reason: data.failures.join('; ')} : {}), data}
}

export interface CapacityResultOptions {
  scenario: Scenario
  file?: string | null
  stepSeconds?: number | null
  /** --min-scale as a CI gate. Default none. */
  gate?: number | null
}

const fmtScale = (k: number) => `×${k}`

/** Why the search ended, in one sentence naming the step that decided it and what ran out there. */
export function limitSentence(search: CapacitySearch<CapacityStepData>): string {
  const last = search.steps.at(-1)
  const failStep = search.steps.find((s) => s.verdict === 'fail' && s.scale === search.firstFail)
  // the busiest phase's CPU: over the whole step a burst's saturation averages out
  const at = (s: CapacityStep | undefined) => {
    const peak = s?.data.peakCpu ? cpuSentence(s.data.peakCpu) : null
    if (peak) return ` (in ${s!.data.peak.phase}: ${peak})`
    const cpu = s && cpuSentence(s.data.cpu)
    return cpu ? ` (${cpu})` : ''
  }
  switch (search.limit) {
    case 'target':
      return `the target's thresholds: ${failStep?.data.failures.join('; ') || 'failed'} at ${fmtScale(search.firstFail!)}${at(failStep)}`
    case 'generator':
      return `the generator's limit, not the target's: the step at ${fmtScale(last!.scale)} was void (${(last!.reason ?? 'late sends').replace(/^void: /, '')})${at(last)}`
    case 'max-scale':
      return `--max-scale: ${fmtScale(search.maxScale)} passed and nothing higher was tried`
    case 'invariant':
      return `an invariant violated at ${fmtScale(last!.scale)}: ${last!.reason ?? ''} (a correctness failure, not a capacity)`
    case 'steps':
      return `the step limit: ${search.steps.length} steps ran before the bracket was within ${search.tolerance * 100}%`
    case 'aborted':
      return 'stopped before the search finished'
  }
}

/** The whole capacity result from the search and the scenario at ×1 (before scaling). */
export function buildCapacityResult(search: CapacitySearch<CapacityStepData>, opts: CapacityResultOptions): CapacityResult {
  const base = peakRates(opts.scenario)
  const k = search.capacity
  const gate = opts.gate ?? null
  let exitCode: number = ExitCode.ok
  if (search.limit === 'invariant') exitCode = ExitCode.invariantViolated
  else if (gate !== null && (k === null || k < gate)) {
    // a generator-bound search below the gate never saw the target fail there: it cannot say
    exitCode = search.limit === 'generator' || search.limit === 'aborted' ? ExitCode.voidRun : ExitCode.thresholdFailed
  }
  return {
    kind: 'livedrop-capacity',
    version: 1,
    scenario: {name: opts.scenario.name, file: opts.file ?? null},
    base,
    stepSeconds: opts.stepSeconds ?? null,
    capacity: k,
    firstFail: search.firstFail,
    limit: search.limit,
    atLeast: search.atLeast,
    belowMin: search.belowMin,
    tolerance: search.tolerance,
    minScale: search.minScale,
    // Infinity is not JSON
    maxScale: Number.isFinite(search.maxScale) ? search.maxScale : null,
    gate,
    hint: search.hint,
    answer: k === null ? null : {scale: k, total: round1(base.total * k), read: round1(base.read * k), order: round1(base.order * k)},
    limitedBy: limitSentence(search),
    steps: search.steps,
    exitCode,
  }
}

/** The error a capacity search exits with (see exitCode), or null when it passes its gate. */
export function capacityVerdictError(r: CapacityResult): LivedropError | null {
  const answer = capacityAnswerText(r)
  if (r.exitCode === ExitCode.invariantViolated) {
    const step = r.steps.find((s) => s.verdict === 'invariant')
    return new InvariantViolatedError(`an invariant was violated at ×${step?.scale}: ${step?.reason ?? 'see the steps'}`, {hint: 'This is a correctness bug in the engine under test; the steps in --out hold the details.'})
  }
  if (r.exitCode === ExitCode.thresholdFailed) {
    return new ThresholdFailedError(`capacity ${answer} is below --min-scale ×${r.gate}`, {hint: 'See the steps for what failed first; raise capacity, or lower --min-scale.'})
  }
  if (r.exitCode === ExitCode.voidRun) {
    return new VoidRunError(`the generator reached its own limit (${r.limitedBy}) below --min-scale ×${r.gate}: the gate cannot be judged`, {
      hint: 'Give the generator a core or machine of its own, or split the load over several generators.',
    })
  }
  return null
}

const capacityAnswerText = (r: CapacityResult) => (r.capacity === null ? 'none (even the lowest step failed)' : `${r.atLeast ? 'at least ' : ''}×${r.capacity}`)
