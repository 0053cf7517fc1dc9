import {EventEmitter} from 'node:events'
import {UsageError} from '../../core/errors.js'
import type {Db, DbTarget} from '../../core/db/types.js'
import {reachable} from '../load/reachable.js'
import type {PhaseEvent, RequestBuilder, RunProgress} from '../executors/open-model/index.js'
import type {Segment} from '../load/arrivals.js'
import type {CapacityResult, CapacityStep} from '../capacity/result.js'
import type {SaturateResult, SaturateStep} from '../load/saturate.js'
import type {RunResult, SeriesPoint} from '../metrics/result.js'
import {createBuilders, type TrafficWorld} from '../traffic/builders.js'
import type {Profile} from '../traffic/profile.js'
import {REQUEST_GROUPS, type RequestType, type Scenario} from '../scenario/schema.js'
import type {Emit} from './events.js'
import {openRun} from './open.js'
import {capacityRun} from './capacity.js'
import {saturateRun} from './saturate.js'
import {openStack, type Stage} from './stack.js'
import {trafficRun} from './traffic.js'

export type {RunResult} from '../metrics/result.js'
export {verdictError} from '../metrics/result.js'
export type {PhaseEvent, RequestBuilder, RequestContext, HttpRequestSpec, RunProgress} from '../executors/open-model/index.js'
export type {SaturateResult} from '../load/saturate.js'
export type {CapacityResult} from '../capacity/result.js'
export type {Stage} from './stack.js'

/**
 * The one options object of every run: the CLI builds it from flags, library users write it.
 * Without `builders` or `world` the run has a stack: a database (seeded or reused), the engine
 * in-process (or `target`, a running deployment), a drop, and the invariants checked after.
 */
export interface RunOptions {
  /** A validated scenario (loadScenario / parseScenario), already scaled. */
  scenario: Scenario
  /** Recorded in the result. Default null. */
  file?: string | null
  /** Recorded in the result (the scenario passed in is already scaled). Default 1. */
  scale?: number
  /**
   * open (default): the scenario's arrival rates. capacity: the highest multiple of them that meets
   * the thresholds (open model, step by step). saturate: autocannon's closed-model throughput ceiling of the read mix.
   */
  mode?: 'open' | 'capacity' | 'saturate'
  /** Drive this running deployment (http://host:port[/base]); otherwise the stack serves in-process. */
  target?: string | null
  /** Traffic only, on this thread: builders for every request type the scenario sends (no database, no drop). */
  builders?: Partial<Record<RequestType, RequestBuilder>>
  /** Traffic only, from the generator thread: the scenario's own requests for these ids (no database, no drop). */
  world?: TrafficWorld
  /**
   * Drive `target` as this profile describes it (another API's shape), with no database: the
   * fixture is made through the API, and the black-box invariants are checked from the answers.
   */
  profile?: Profile
  /** With profile: fixture values given instead of made (name → value, e.g. {drop: '9f1c…'}). Default none. */
  fixture?: Record<string, string>
  /** The database: the in-process stack's, or the deployment's (for the drop and the invariants). */
  db?: DbTarget
  redisUrl?: string | null
  /** Cache nodes of the in-process stack. Default: the scenario's engine.cache. */
  cache?: string
  /** Token secret: the deployment's with a target. */
  secret?: string
  /** Wipe a non-empty database and seed afresh; otherwise an already seeded one is reused. */
  reset?: boolean
  /** The database is the scenario's own (the embedded default): data a dead seed left is replaced. */
  ownDatabase?: boolean
  /** saturate: seconds per connection step (default 5); capacity: seconds per rate step (default 20). */
  stepSeconds?: number
  /** capacity: the CI gate and the lowest scale tried (a capacity below it exits 99). Default none. */
  minScale?: number
  /** capacity: the highest scale tried. Default unbounded. */
  maxScale?: number
  /** capacity: bound the search from above with autocannon's closed-model ceiling first. Default true. */
  probe?: boolean
  /** Stops the run early; the result then has aborted: true. */
  signal?: AbortSignal
  /** Runs right after the drop goes live. Tests use it to sabotage the engine and see the run catch it. */
  onDropLive?: (ctx: {db: Db; dropId: number}) => Promise<void>
  /** Test-only: starves the generator's thread with a real busy loop of forMs every everyMs. */
  testStarve?: {everyMs: number; forMs: number}
  /**
   * This generator's part of a split run (`--segment i/n`, see parseSegment): its share of every
   * phase's arrivals, and of the buyers and idempotency keys. Runs that drive a target with no stack
   * (builders, world, profile) only. Recorded as scenario.segment. Default: the whole scenario.
   */
  segment?: Segment
  /** Epoch ms (see parseStartAt): hold the schedule until then so several generators' seconds line up. Same runs as segment. Default: at once. */
  startAt?: number
}

export interface RunHandle<R = RunResult> extends EventEmitter {
  /** Resolves to the run's result (also when its verdict fails: see verdictError); rejects on usage errors and unreachable services. */
  readonly result: Promise<R>
  /** Stops scheduling; in-flight requests finish and the result is still produced. */
  abort(): void
  on(event: 'stage', listener: (stage: Stage, detail: string) => void): this
  on(event: 'progress', listener: (p: RunProgress) => void): this
  on(event: 'phase', listener: (p: PhaseEvent) => void): this
  /** Each second of the run as it closes, with the stock left when the run has a drop. */
  on(event: 'second', listener: (p: SeriesPoint) => void): this
  /** A fault of the scenario's, once it is over. */
  on(event: 'fault', listener: (f: NonNullable<RunResult['faults']>[number]) => void): this
  /** saturate: each connection step as it ends. */
  on(event: 'step', listener: (s: SaturateStep) => void): this
  /** capacity: each rate step as it is judged. */
  on(event: 'capacityStep', listener: (s: CapacityStep) => void): this
}

/**
 * Runs a scenario: the one entry for every mode, in-process or against a target. Renderers only
 * listen to the handle; the result is judged once (thresholds, void rule, invariants, verdict).
 *
 * @example
 * const handle = runScenario({scenario, db: {kind: 'embedded', dir: null}, secret})
 * handle.on('progress', (p) => render(p))
 * const result = await handle.result
 */
export function runScenario(opts: RunOptions & {mode: 'saturate'}): RunHandle<SaturateResult>
export function runScenario(opts: RunOptions & {mode: 'capacity'}): RunHandle<CapacityResult>
export function runScenario(opts: RunOptions): RunHandle<RunResult>
export function runScenario(opts: RunOptions): RunHandle<RunResult | SaturateResult | CapacityResult> {
  const emitter = new EventEmitter()
  const controller = new AbortController()
  opts.signal?.addEventListener('abort', () => controller.abort(), {once: true})
  const emit: Emit = (event, ...args) => void emitter.emit(event, ...args)
  const result = execute(opts, controller.signal, emit)
  return Object.assign(emitter, {result, abort: () => controller.abort()}) as RunHandle<RunResult | SaturateResult | CapacityResult>
}

async function execute(o: RunOptions, signal: AbortSignal, emit: Emit): Promise<RunResult | SaturateResult | CapacityResult> {
  const common = {file: o.file ?? null, scale: o.scale ?? 1, signal}
  if (o.builders || o.world || o.profile) {
    if (!o.target) throw new UsageError('target', 'a run with request builders, a world or a profile needs a target to send them to')
    return trafficRun({...common, scenario: o.scenario, target: o.target, builders: o.builders, world: o.world, profile: o.profile && {profile: o.profile, fixture: o.fixture, secret: o.secret}, testStarve: o.testStarve, segment: o.segment, startAt: o.startAt}, emit)
  }
  // a split run shares one target and one drop: the stack's run makes a drop of its own per generator
  if (o.segment || o.startAt !== undefined) {
    throw new UsageError(o.segment ? '--segment' : '--start-at', 'splits a run that drives a target through a profile (or a world / builders), not a run with a stack', {
      hint: 'Run every generator with --target URL --profile profiles/livedrop.yaml --fixture drop=ID --secret … (one drop for all), then `livedrop report merge`.',
    })
  }
  if (!o.db) throw new UsageError('db', 'a run with a stack needs a database (db)', {hint: "Pass db: {kind: 'embedded', dir: null} for a throwaway embedded one."})
  if (o.secret === undefined) throw new UsageError('secret', 'a run with a stack needs the token secret')
  // a target with nothing listening is exit 3 before anything is opened or seeded
  if (o.target) await reachable(new URL(o.target))
  const stack = await openStack({...o, db: o.db, secret: o.secret}, (stage, detail) => emit('stage', stage, detail))
  try {
    if (o.mode === 'saturate') {
      emit('stage', 'run', `saturating ${stack.target}`)
      return await saturateRun(stack, o.scenario, {stepSeconds: o.stepSeconds, onStep: (step) => emit('step', step)})
    }
    if (o.mode === 'capacity') return await capacityRun(stack, {...common, scenario: o.scenario, stepSeconds: o.stepSeconds, minScale: o.minScale, maxScale: o.maxScale, probe: o.probe}, emit)
    return await openRun(stack, {...common, scenario: o.scenario, onDropLive: o.onDropLive}, emit)
  } finally {
    await stack.close()
  }
}
