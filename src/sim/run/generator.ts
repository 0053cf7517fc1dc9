import {EventEmitter} from 'node:events'
import {Worker} from 'node:worker_threads'
import {RelayedError} from '../../core/errors.js'
import type {AcknowledgedOrder} from '../invariants/index.js'
import type {RunResult} from '../metrics/result.js'
import type {OrderLedger} from '../scenario/builders.js'
import type {GeneratorInput, ToGenerator} from './generator-worker.js'
import type {PhaseEvent, RunProgress} from './open-model.js'

export interface GeneratorOutput {
  result: RunResult
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
    worker.on('message', (m: {type: string} & Record<string, unknown>) => {
      if (m.type === 'progress') emitter.emit('progress', m.p)
      else if (m.type === 'phase') emitter.emit('phase', m.p)
      else if (m.type === 'done') resolve(m as unknown as GeneratorOutput)
      else if (m.type === 'error') reject(new RelayedError(m.error as {code: string; message: string; hint?: string; exitCode: number}))
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
