import type {CapacityStep} from '../capacity/result.js'
import type {PhaseEvent, RunProgress} from '../executors/open-model/index.js'
import type {SaturateStep} from '../load/saturate.js'
import type {RunResult, SeriesPoint} from '../metrics/result.js'
import type {Stage} from './stack.js'

/** What a run tells its listeners (renderers, streams, dashboards); the handle re-emits these. */
export interface RunEvents {
  stage(stage: Stage, detail: string): void
  progress(p: RunProgress): void
  phase(p: PhaseEvent): void
  /** Each second of the run as it closes, with the stock left when the run has a drop. */
  second(p: SeriesPoint): void
  /** A fault of the scenario's, once it is over (when it was caused and over, what was done). */
  fault(f: NonNullable<RunResult['faults']>[number]): void
  /** saturate: each connection step as it ends. */
  step(s: SaturateStep): void
  /** capacity: each rate step as it is judged. */
  capacityStep(s: CapacityStep): void
}

export type Emit = <K extends keyof RunEvents>(event: K, ...args: Parameters<RunEvents[K]>) => void
