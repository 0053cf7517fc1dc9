/**
 * `livedrop plan --check`: the plan's calibration. From the CPU costs of a measured run it predicts
 * this machine's capacity for another traffic mix (a scenario file), then measures that capacity
 * (`scenario run --mode capacity`) and compares.
 *
 * The model. At a rate scale k of a mix, component c spends k × D_c cores, where
 * D_c = Σ_g cost_c,g × rate_g ÷ 1000 over the request groups at ×1 of the scenario's busiest phase
 * (the burst: it is the phase whose latency fails first). Two things run out:
 *
 *   machine  every component (generator, serve, Postgres) shares the machine's cores:
 *            k × Σ_c D_c ≤ ceiling × cores
 *   serve    one Node.js process runs its JavaScript on one thread:
 *            k × D_serve ≤ ceiling × serve processes
 *
 * The ceiling is the utilisation at which the latency thresholds start to fail: an open-model queue
 * waits about u ÷ (1 − u) service times, so p95 latency fails before the CPU is 100% busy.
 */
import {availableParallelism, loadavg} from 'node:os'
import type {DbTarget} from '../../core/db/types.js'
import {UsageError} from '../../core/errors.js'
import type {CapacityResult, CapacityStep} from '../capacity/result.js'
import {peakRates} from '../capacity/scale.js'
import type {RunResult} from '../metrics/result.js'
import {runScenario} from '../run/index.js'
import {REQUEST_GROUPS, type Scenario} from '../scenario/schema.js'
import {predictCapacity, type ComponentCosts, type GroupRates} from './formulas.js'
import {completeGroupCosts, measuredInputs, type CpuCosts, type GroupCosts, type Measured} from './inputs.js'

/**
 * The documented default ceiling (used without --calibrate): 80% busy. An open-model queue waits
 * about u ÷ (1 − u) service times: 4 at 80%, 9 at 90%, so with service times of a few ms and
 * bursty (Poisson) arrivals p95 stays within 200 ms up to about 80% and climbs steeply after.
 */
export const DEFAULT_CEILING = 0.8
/** Cores one serve process can use for requests: Node.js runs its JavaScript on one thread. */
export const SERVE_PROCESS_CORES = 1
/** The goal of the calibration (issue 19): predicted within 25% of measured. */
export const CHECK_GOAL_PCT = 25

/** The request groups' rates of a scenario's busiest phase at ×1 (what a capacity scale multiplies). */
export interface CheckMix extends GroupRates {
  phase: string
  /** All request types of that phase: read + order + write. */
  total: number
}

/** The busiest phase's rates per request group (ramps at their higher end), the phase peakRates picks. */
export function peakMix(s: Scenario): CheckMix {
  const peak = peakRates(s)
  const phase = s.phases.find((p) => p.name === peak.phase) ?? s.phases[0]
  const rates: Record<string, number | undefined> = phase.rates
  const ramp: Record<string, number | undefined> = phase.rampTo ?? {}
  const at = (type: string) => Math.max(rates[type] ?? 0, ramp[type] ?? 0)
  const sum = (types: readonly string[]) => types.reduce((a, t) => a + at(t), 0)
  const read = sum(REQUEST_GROUPS.read)
  const write = sum(REQUEST_GROUPS.write)
  const order = at('order')
  return {phase: phase.name, read, order, write, total: read + order + write}
}

/** What the machine offers: its cores, and the serve processes (each one thread of JavaScript). */
export interface CheckLimits {
  cores: number
  serveProcesses: number
}

export interface CeilingPrediction {
  /** × the mix's rates at which the first limit reaches the ceiling. */
  scale: number
  /** scale × the busiest phase's total rate. */
  reqPerSec: number
  limitedBy: 'machine' | 'serve'
  /** The scale each limit allows. */
  limits: {machine: number; serve: number | null}
  /** Cores each component spends at ×1 of the mix. */
  demand: Record<string, number>
}

/**
 * The highest scale of `mix` that keeps both limits at or below `ceiling`: the least of
 * ceiling × cores ÷ Σ demand and ceiling × serve processes ÷ serve demand.
 * @example predictAtCeiling({serve: {read: 1, order: 4, write: null}, postgres: {read: 0.5, order: 2, write: null}}, {read: 100, order: 50, write: 0}, 0.8, {cores: 2, serveProcesses: 1})
 *   → machine 0.8 × 2 ÷ 0.45 = 3.56, serve 0.8 × 1 ÷ 0.3 = 2.67: scale 2.67, limited by serve
 */
export function predictAtCeiling(costs: ComponentCosts, mix: GroupRates, ceiling: number, limits: CheckLimits): CeilingPrediction {
  const rates: GroupRates = {read: mix.read, order: mix.order, write: mix.write}
  const machine = predictCapacity(costs, rates, ceiling * limits.cores)
  const serve = costs.serve ? predictCapacity({serve: costs.serve}, rates, {serve: ceiling * limits.serveProcesses * SERVE_PROCESS_CORES}).scale : null
  const servesFirst = serve !== null && serve < machine.scale
  const scale = servesFirst ? serve : machine.scale
  return {scale, reqPerSec: scale * (rates.read + rates.order + rates.write), limitedBy: servesFirst ? 'serve' : 'machine', limits: {machine: machine.scale, serve}, demand: machine.demand}
}

/**
 * The ceiling a measured capacity implies: the utilisation of the binding limit at that scale,
 * k × max(Σ demand ÷ cores, serve demand ÷ serve processes). predictAtCeiling with it gives k back.
 * @example calibrateCeiling({serve: {read: 1, order: 4, write: null}, postgres: {read: 0.5, order: 2, write: null}}, {read: 100, order: 50, write: 0}, 2, {cores: 2, serveProcesses: 1})
 *   → 2 × max(0.45 ÷ 2, 0.3 ÷ 1) = 0.6
 */
export function calibrateCeiling(costs: ComponentCosts, mix: GroupRates, capacityScale: number, limits: CheckLimits): number {
  if (!(capacityScale > 0) || !Number.isFinite(capacityScale)) throw new RangeError(`a measured capacity must be a finite scale > 0, got ${capacityScale}`)
  const at1 = predictAtCeiling(costs, mix, 1, limits)
  // the scale at 100% of the binding limit; the measured capacity is that share of it
  const full = Math.min(at1.limits.machine, at1.limits.serve ?? Infinity)
  if (!(full > 0) || !Number.isFinite(full)) throw new RangeError('the costs put no CPU demand on the mix: nothing to calibrate')
  return capacityScale / full
}

/** The ceiling a check used and where it came from. */
export interface Ceiling {
  value: number
  source: 'default' | 'calibrated'
  /** The default's reason, or the capacity run it was calibrated from. */
  from: string
  /** With source calibrated: the measured capacity and mix it came from, and whether that capacity was only a lower bound. */
  calibration?: {file: string; scale: number; mix: GroupRates; atLeast: boolean}
}

/** A capacity run's answer and busiest mix, as --calibrate reads it (a capacity result, or an earlier check's JSON). */
export interface CalibrationSource {
  file: string
  scale: number
  mix: GroupRates
  atLeast: boolean
  serveProcesses: number
  /** The cores of the machine the capacity was measured on; null when the file does not say (this machine's are used). */
  cores: number | null
}

/**
 * Reads what --calibrate needs from parsed JSON: `scenario run --mode capacity --out` (its busiest
 * phase's rates: write = total − read − order) or `plan --check --json`. A run without a capacity is refused.
 */
export function calibrationFrom(data: unknown, file: string): CalibrationSource {
  const d = data as {kind?: string} | null
  const hint = 'Pass the JSON of `livedrop scenario run FILE --mode capacity --out cap.json` or of `livedrop plan --check run.json --json`.'
  if (d?.kind === 'livedrop-capacity') {
    const c = d as CapacityResult
    if (c.capacity === null) throw new UsageError('--calibrate', `${file}: the capacity run found no passing scale, so it implies no ceiling`, {hint})
    const cores = c.steps?.find((s) => s.data.cpu?.machine)?.data.cpu?.machine?.cores ?? null
    return {file, scale: c.capacity, mix: {read: c.base.read, order: c.base.order, write: Math.max(0, c.base.total - c.base.read - c.base.order)}, atLeast: c.atLeast, serveProcesses: 1, cores}
  }
  if (d?.kind === 'livedrop-plan-check') {
    const c = d as PlanCheck
    if (c.measured.scale === null) throw new UsageError('--calibrate', `${file}: that check measured no passing scale, so it implies no ceiling`, {hint})
    return {file, scale: c.measured.scale, mix: {read: c.mix.read, order: c.mix.order, write: c.mix.write}, atLeast: c.measured.atLeast, serveProcesses: c.limits.serveProcesses, cores: c.limits.cores}
  }
  throw new UsageError('--calibrate', `${file} is neither a capacity result nor a plan check (kind ${JSON.stringify(d?.kind ?? null)})`, {hint})
}

/** The ceiling a measured capacity implies with these costs, on the cores its file names (else `cores`) and its serve processes. */
function impliedCeiling(costs: ComponentCosts, calibration: CalibrationSource, cores: number): number {
  return calibrateCeiling(costs, calibration.mix, calibration.scale, {cores: calibration.cores ?? cores, serveProcesses: calibration.serveProcesses})
}

/** The ceiling for a check: calibrated from a measured capacity with this run's costs, else the default. */
export function chooseCeiling(costs: ComponentCosts, limits: CheckLimits, calibration: CalibrationSource | null): Ceiling {
  if (!calibration) {
    return {value: DEFAULT_CEILING, source: 'default', from: `the documented default ${DEFAULT_CEILING * 100}%: an open-model queue waits u ÷ (1 − u) service times (4 at 80%, 9 at 90%), so p95 latency fails before 100% CPU`}
  }
  return {
    value: impliedCeiling(costs, calibration, limits.cores),
    source: 'calibrated',
    from: `the measured capacity ×${calibration.scale}${calibration.atLeast ? ' (a lower bound)' : ''} of ${calibration.file}: the binding limit's utilisation there by this run's costs`,
    calibration: {file: calibration.file, scale: calibration.scale, mix: calibration.mix, atLeast: calibration.atLeast},
  }
}

/** A plan's costs scaled by a measured capacity (calibratedCosts). */
export interface CostCalibration {
  file: string
  /** The measured capacity (× its mix's rates) and whether it was only a lower bound. */
  scale: number
  atLeast: boolean
  /** The ceiling that capacity implies with the run's own costs (impliedCeiling). */
  ceiling: number
  /** What every cost is multiplied by: DEFAULT_CEILING ÷ ceiling. */
  factor: number
}

/**
 * The run's costs as they are at capacity. CPU per request falls as the load rises (fixed costs
 * spread over more requests, more work per wakeup), so costs from a light run overstate it; a
 * measured capacity says by how much. Every cost is multiplied by DEFAULT_CEILING ÷ the ceiling that
 * capacity implies, so that at the measured capacity the binding limit sits at the default ceiling:
 * a check at the default with these costs predicts what the calibrated check predicts.
 * @example a capacity implying a 240% ceiling → factor 0.8 ÷ 2.4 = 1/3: every cost a third
 */
export function calibratedCosts(costs: CpuCosts, calibration: CalibrationSource, cores: number): {costs: CpuCosts; calibration: CostCalibration} {
  const ceiling = impliedCeiling(completeCosts(costs, calibration.mix, []), calibration, cores)
  const factor = DEFAULT_CEILING / ceiling
  const components: CpuCosts['components'] = {}
  for (const [part, c] of Object.entries(costs.components) as Array<[keyof CpuCosts['components'], GroupCosts | null]>) {
    components[part] = c && {read: scaled(c.read, factor), order: scaled(c.order, factor), write: scaled(c.write, factor)}
  }
  return {costs: {...costs, components}, calibration: {file: calibration.file, scale: calibration.scale, atLeast: calibration.atLeast, ceiling: round3(ceiling), factor: round3(factor)}}
}

const scaled = (cost: number | null, factor: number) => (cost === null ? null : Number((cost * factor).toPrecision(4)))

/** (predicted − measured) ÷ measured, in %; null when measured is not a positive number. */
export function errorPct(predicted: number, measured: number | null): number | null {
  return measured !== null && measured > 0 && Number.isFinite(predicted) ? ((predicted - measured) / measured) * 100 : null
}

/**
 * Other processes' cores during the capacity steps: the machine's busy cores minus what the stack's
 * measured components used, weighted by each step's length (null when no step measured the machine).
 */
export function otherCores(steps: CapacityStep[]): number | null {
  let cores = 0
  let seconds = 0
  for (const s of steps) {
    const cpu = s.data.cpu
    if (!cpu?.machine) continue
    const stack = Object.values(cpu.components).reduce((a, c) => a + (c.meanCores ?? 0), 0)
    cores += Math.max(0, cpu.machine.meanBusyCores - stack) * cpu.durationS
    seconds += cpu.durationS
  }
  return seconds > 0 ? round3(cores / seconds) : null
}

/** Every measured component's costs, completed for `mix` (completeGroupCosts). */
export function completeCosts(costs: CpuCosts, mix: GroupRates, assumed: string[]): ComponentCosts {
  const out: ComponentCosts = {}
  for (const [part, c] of Object.entries(costs.components)) if (c) out[part] = completeGroupCosts(part, c, mix, assumed)
  return out
}

export interface PlanCheck {
  kind: 'livedrop-plan-check'
  version: 1
  /** The measured run the costs came from. */
  run: Measured['run']
  costs: CpuCosts
  /** The scenario whose mix was predicted and measured. */
  scenario: {name: string; file: string | null; scale: number}
  mix: CheckMix
  limits: CheckLimits
  ceiling: Ceiling
  predicted: CeilingPrediction & {
    /** The prediction at the default ceiling, for comparison when the ceiling was calibrated. */
    atDefaultCeiling: {scale: number; reqPerSec: number}
  }
  measured: {
    /** The highest scale that passed (capacity); null when none did. */
    scale: number | null
    reqPerSec: number | null
    firstFail: number | null
    atLeast: boolean
    limit: CapacityResult['limit']
    limitedBy: string
  }
  /** (predicted − measured) ÷ measured scale, %. */
  errorPct: number | null
  /** |error| ≤ CHECK_GOAL_PCT; null when nothing was measured. */
  withinGoal: boolean | null
  /** What else ran on the machine: load averages before and after, and other processes' cores during the steps. */
  machine: {loadBefore: number[]; loadAfter: number[]; otherCores: number | null}
  assumed: string[]
  capacity: CapacityResult
}

export interface CheckOptions {
  /** The measured run (with stats.cpu): the costs. */
  run: RunResult
  /** The mix to predict and measure: validated and scaled. */
  scenario: Scenario
  file: string | null
  /** The --scale the scenario was loaded at. */
  scale: number
  /** An earlier capacity run to calibrate the ceiling from (calibrationFrom); null: DEFAULT_CEILING. */
  calibration: CalibrationSource | null
  db: DbTarget
  /** The database is the scenario's own (the embedded default). */
  ownDatabase?: boolean
  secret: string
  redisUrl?: string | null
  cache?: string
  /** Seconds per capacity step. Default the capacity mode's (20). */
  stepSeconds?: number
  /** The highest scale the measurement tries. Default unbounded. */
  maxScale?: number
  /** This machine's cores. Default os.availableParallelism(). */
  cores?: number
  signal?: AbortSignal
  onStage?: (stage: string, detail: string) => void
  onStep?: (step: CapacityStep) => void
}

/** Predicts, then measures the capacity of `scenario` on this machine, and compares. */
export async function runCheck(o: CheckOptions): Promise<PlanCheck> {
  const m = measuredInputs(o.run)
  if (!m.cpu) {
    throw new UsageError('--check', `${m.cpuMissing}: the prediction needs the CPU each component spent per request`, {
      hint: 'Record a run with CPU accounting (`livedrop scenario run FILE --out run.json`, embedded database) and pass that file.',
    })
  }
  const limits: CheckLimits = {cores: o.cores ?? availableParallelism(), serveProcesses: o.scenario.engine.workers ?? 1}
  const mix = peakMix(o.scenario)
  const assumed: string[] = []
  const costs = completeCosts(m.cpu, mix, assumed)
  const ceiling = chooseCeiling(costs, limits, o.calibration)
  const predicted = predictAtCeiling(costs, mix, ceiling.value, limits)
  const atDefault = predictAtCeiling(costs, mix, DEFAULT_CEILING, limits)
  o.onStage?.('predict', `×${predicted.scale.toFixed(2)} (${Math.round(predicted.reqPerSec).toLocaleString('en-US')} req/s at the peak), limited by ${predicted.limitedBy} at a ${(ceiling.value * 100).toFixed(0)}% ceiling (${ceiling.source})`)

  const loadBefore = loadavg().map(round2)
  const handle = runScenario({
    scenario: o.scenario,
    file: o.file,
    scale: o.scale,
    mode: 'capacity',
    db: o.db,
    ownDatabase: o.ownDatabase,
    secret: o.secret,
    redisUrl: o.redisUrl,
    cache: o.cache,
    stepSeconds: o.stepSeconds,
    maxScale: o.maxScale,
    // the prediction is the estimate; the closed-model probe would only spend time bracketing
    probe: false,
    signal: o.signal,
  })
  if (o.onStage) handle.on('stage', (stage, detail) => o.onStage!(stage, detail))
  if (o.onStep) handle.on('capacityStep', o.onStep)
  const cap = await handle.result
  const measuredScale = cap.capacity
  const err = errorPct(predicted.scale, measuredScale)
  return {
    kind: 'livedrop-plan-check',
    version: 1,
    run: m.run,
    costs: m.cpu,
    scenario: {name: o.scenario.name, file: o.file, scale: o.scale},
    mix,
    limits,
    ceiling,
    predicted: {...predicted, atDefaultCeiling: {scale: atDefault.scale, reqPerSec: atDefault.reqPerSec}},
    measured: {
      scale: measuredScale,
      reqPerSec: measuredScale === null ? null : measuredScale * mix.total,
      firstFail: cap.firstFail,
      atLeast: cap.atLeast,
      limit: cap.limit,
      limitedBy: cap.limitedBy,
    },
    errorPct: err === null ? null : Math.round(err * 10) / 10,
    withinGoal: err === null ? null : Math.abs(err) <= CHECK_GOAL_PCT,
    machine: {loadBefore, loadAfter: loadavg().map(round2), otherCores: otherCores(cap.steps)},
    assumed,
    capacity: cap,
  }
}

/** Lines for the terminal: predicted vs measured, the error, and what the prediction stood on. */
export function checkLines(c: PlanCheck): string[] {
  const rps = (v: number | null) => (v === null ? '-' : `${Math.round(v).toLocaleString('en-US')} req/s`)
  const sc = (v: number | null) => (v === null ? 'none passed' : `×${Number(v.toPrecision(3))}`)
  const lines = [
    `Check: "${c.scenario.name}" ×${c.scenario.scale} (busiest phase ${c.mix.phase}: ${fmtRate(c.mix.read)} reads/s, ${fmtRate(c.mix.order)} orders/s, ${fmtRate(c.mix.write)} writes/s at ×1) with the costs of run "${c.run.name}" ×${c.run.scale} (${c.costs.method === 'fit' ? `fitted per group over ${c.costs.intervals} intervals` : 'its mix average'}).`,
    `Predicted  ${sc(c.predicted.scale).padEnd(12)} ${rps(c.predicted.reqPerSec).padEnd(14)} limited by ${c.predicted.limitedBy} at a ${(c.ceiling.value * 100).toFixed(0)}% ceiling (${c.ceiling.source}; ${c.limits.cores} cores, ${c.limits.serveProcesses} serve process${c.limits.serveProcesses === 1 ? '' : 'es'})`,
    `Measured   ${`${c.measured.atLeast ? '≥ ' : ''}${sc(c.measured.scale)}`.padEnd(12)} ${rps(c.measured.reqPerSec).padEnd(14)} ${c.measured.limitedBy}`,
    `Error      ${c.errorPct === null ? '-' : `${c.errorPct > 0 ? '+' : ''}${c.errorPct.toFixed(1)}%`} (goal within ${CHECK_GOAL_PCT}%: ${c.withinGoal === null ? 'nothing measured' : c.withinGoal ? 'met' : 'missed'})${c.measured.atLeast ? '; the measured capacity is a lower bound' : ''}`,
    `Ceiling: ${c.ceiling.from}.`,
  ]
  if (c.ceiling.source === 'calibrated') lines.push(`At the default ${DEFAULT_CEILING * 100}% ceiling it would have predicted ${sc(c.predicted.atDefaultCeiling.scale)}.`)
  else lines.push(`Not calibrated: CPU per request falls as the load rises, so costs from a light run under-predict the capacity; --calibrate CAP.json (a capacity run of another mix on this machine) corrects it.`)
  lines.push(`Machine: load average ${c.machine.loadBefore.join(' ')} before, ${c.machine.loadAfter.join(' ')} after; other processes used ${c.machine.otherCores ?? '?'} cores during the steps.`)
  for (const a of c.assumed) lines.push(`Assumed: ${a}.`)
  return lines
}

const fmtRate = (v: number) => (Math.round(v * 10) / 10).toLocaleString('en-US')
const round2 = (v: number) => Math.round(v * 100) / 100
const round3 = (v: number) => Math.round(v * 1000) / 1000
const round4 = (v: number) => Math.round(v * 10_000) / 10_000
