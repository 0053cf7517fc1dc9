import {EventEmitter} from 'node:events'
import {Worker} from 'node:worker_threads'
import {RelayedError} from '../../core/errors.js'
import type {AcknowledgedOrder} from '../../core/audit/drop.js'
import type {Segment} from '../load/arrivals.js'
import type {OpenModelResult, PhaseEvent, RunProgress} from '../executors/open-model/index.js'
import type {SeriesPoint} from '../metrics/result.js'
import type {OrderLedger, TrafficWorld} from '../traffic/builders.js'
import type {ProfileTarget} from '../traffic/profile.js'
import type {Scenario} from '../scenario/schema.js'
import {watchAborts, type AbortWatcher} from './abort.js'
import type {Emit} from './events.js'

/** What the generator thread needs, as plain data (builders are made on the thread). */
export interface GeneratorInput {
  /** Validated and scaled; its generator section sets connections, slack, timeout and stall budget. */
  scenario: Scenario
  target: string
  world: TrafficWorld
  /** Followers whose SSE streams time drop start → drop_started. */
  notifyUsers: number[]
  /** Test-only: starves the thread with a real busy loop of forMs every everyMs during the run. */
  testStarve?: {everyMs: number; forMs: number}
  /** Another API's shape and its prepared fixture (plain data); default livedrop's own. */
  profile?: ProfileTarget
  /** Send only this segment's share of the schedule, with its own keys and buyers. Default: all of it. */
  segment?: Segment
  /** Epoch ms: hold the schedule until this wall-clock instant (so several generators' seconds line up). Default: start at once. */
  startAt?: number
}

export type ToGenerator = {type: 'mark'; at: number} | {type: 'abort'}

/** The generator's samples: the open model's recording, what the answers said, the notify latencies. */
export interface GeneratorOutput {
  load: OpenModelResult
  ledger: Omit<OrderLedger, 'acknowledged'> & {acknowledged: AcknowledgedOrder[]}
  notify: {sampled: number; missed: number; histogram: string}
}

export interface GeneratorHandle extends EventEmitter {
  readonly done: Promise<GeneratorOutput>
  /** Tells the generator the drop is being started now (latencies of drop_started count from here). */
  mark(): void
  abort(): void
  on(event: 'progress', listener: (p: RunProgress) => void): this
  on(event: 'phase', listener: (p: PhaseEvent) => void): this
  on(event: 'second', listener: (p: SeriesPoint) => void): this
  /** The generator thread's OS thread id (null without /proc), sent before anything else. */
  on(event: 'thread', listener: (tid: number | null) => void): this
}

/** Starts the load generator on a worker thread of its own (see generator-worker.ts). */
export function startGenerator(input: GeneratorInput): GeneratorHandle {
  // built code runs the .js file; under the test runner (TypeScript sources) tsx loads the .ts one
  const fromSource = import.meta.url.endsWith('.ts')
  const file = new URL(`./generator-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url)
  const worker = fromSource
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}) })`, {eval: true, workerData: input})
    : new Worker(file, {workerData: input})
  const emitter = new EventEmitter() as GeneratorHandle
  const send = (m: ToGenerator) => worker.postMessage(m)
  const done = new Promise<GeneratorOutput>((resolve, reject) => {
    worker.on('message', (m: {type: string; p?: unknown} & Record<string, unknown>) => {
      if (m.type === 'done') resolve(m as unknown as GeneratorOutput)
      else if (m.type === 'error') reject(new RelayedError(m.error as {code: string; message: string; hint?: string; exitCode: number}))
      else emitter.emit(m.type, m.p)
    })
    worker.on('error', reject)
    worker.on('exit', (code) => reject(new Error(`the load generator thread exited (${code}) before finishing`)))
  }).finally(() => void worker.terminate())
  Object.assign(emitter, {
    done,
    mark: () => send({type: 'mark', at: performance.timeOrigin + performance.now()}),
    abort: () => send({type: 'abort'}),
  })
  return emitter
}

/**
 * Relays a generator to a run's listeners (progress, phases, each closed second through
 * `decorate`, e.g. to add the stock left) and stops it with the run's signal, or when a threshold
 * with abortOnFail fails (`watcher.fired` then says which). `detach` drops the signal's listener.
 */
export function relayGenerator(
  generator: GeneratorHandle,
  o: {scenario: Scenario; signal: AbortSignal; emit: Emit; decorate?: (p: SeriesPoint) => SeriesPoint},
): {watcher: AbortWatcher | null; detach(): void} {
  const abort = () => generator.abort()
  o.signal.addEventListener('abort', abort, {once: true})
  const watcher = watchAborts(o.scenario)
  generator.on('progress', (p) => o.emit('progress', p))
  generator.on('phase', (p) => o.emit('phase', p))
  generator.on('second', (p) => {
    o.emit('second', o.decorate ? o.decorate(p) : p)
    if (watcher?.second(p)) generator.abort()
  })
  return {watcher, detach: () => o.signal.removeEventListener('abort', abort)}
}
