import {buildCapacityResult, judgeStep, type CapacityResult, type CapacityStepData} from '../capacity/result.js'
import {compressPhases, peakRates, scaleRates} from '../capacity/scale.js'
import {findCapacity, type SearchStep} from '../capacity/search.js'
import type {CpuReport} from '../metrics/cpu.js'
import type {Scenario} from '../scenario/schema.js'
import type {Emit} from './events.js'
import {openRun} from './open.js'
import {saturateRun} from './saturate.js'
import type {Stack} from './stack.js'

export interface CapacityRunOptions {
  /** Validated and scaled (by --scale): the rates every step multiplies. */
  scenario: Scenario
  file: string | null
  scale: number
  signal: AbortSignal
  /** Each step's length: the phases are compressed to it (the drop still opens in each). Default 20. */
  stepSeconds?: number
  /** The CI gate and the lowest scale tried: a capacity below it exits 99. Default none. */
  minScale?: number
  /** The highest scale tried. Default unbounded. */
  maxScale?: number
  /** First measure autocannon's closed-model throughput ceiling, which bounds the search from above. Default true. */
  probe?: boolean
}

export const DEFAULT_CAPACITY_STEP_SECONDS = 20
// the closed-model probe: short steps, it only brackets the search
const PROBE_STEP_SECONDS = 1

/**
 * `--mode capacity`: the highest multiple of the scenario's arrival rates that still meets its
 * thresholds, invariants and the void rule. Each step is a fresh drop on the same seeded data,
 * run as an open model; a void step is the generator's limit, never the target's.
 */
export async function capacityRun(stack: Stack, o: CapacityRunOptions, emit: Emit): Promise<CapacityResult> {
  const base = o.scenario
  const stepSeconds = o.stepSeconds ?? DEFAULT_CAPACITY_STEP_SECONDS
  const upperHint = o.probe === false ? undefined : await closedModelHint(stack, base, emit)
  const search = await findCapacity<CapacityStepData>(
    async (k) => {
      const s = compressPhases(scaleRates(base, k), stepSeconds)
      emit('stage', 'run', `step ×${k}: ${Math.round(peakRates(s).total).toLocaleString('en-US')} req/s at the peak`)
      const run = await openRun(stack, {scenario: s, file: o.file, scale: o.scale, signal: o.signal}, (event, ...args) => {
        // a step's own stages would drown the steps' story; its progress is the live view
        if (event !== 'stage') emit(event, ...args)
      })
      return judgeStep(k, run, (run.stats.cpu as CpuReport | null) ?? null)
    },
    {minScale: o.minScale, maxScale: o.maxScale, upperHint, signal: o.signal, onStep: (step) => emit('capacityStep', step as SearchStep<CapacityStepData>)},
  )
  return buildCapacityResult(search, {scenario: base, file: o.file, stepSeconds, gate: o.minScale ?? null})
}

/** The read mix's closed-model ceiling as a multiple of the scenario's peak read rate (undefined when nothing passed). */
async function closedModelHint(stack: Stack, s: Scenario, emit: Emit): Promise<number | undefined> {
  emit('stage', 'run', `probing the closed-model throughput ceiling of ${stack.target}`)
  const probe = await saturateRun(stack, s, {stepSeconds: PROBE_STEP_SECONDS})
  const peakRead = peakRates(s).read
  return probe.best && peakRead > 0 ? probe.best.throughput / peakRead : undefined
}
