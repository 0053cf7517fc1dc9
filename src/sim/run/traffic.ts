import {UsageError, redactUrl, throwUsageErrors} from '../../core/errors.js'
import {phaseTypes} from '../load/arrivals.js'
import {runOpenModel, type OpenModelResult, type RequestBuilder} from '../load/open-model.js'
import {reachable} from '../load/reachable.js'
import type {RunResult} from '../metrics/result.js'
import type {TrafficWorld} from '../traffic/builders.js'
import type {RequestType, Scenario} from '../scenario/schema.js'
import {startGenerator} from './generator.js'
import type {Emit} from './events.js'
import {openModelPlan} from './plan.js'
import {buildRunResult} from './result.js'

export interface TrafficRunOptions {
  /** Validated and scaled. */
  scenario: Scenario
  target: string
  /** Request builders made by the caller: the run goes on this thread. */
  builders?: Partial<Record<RequestType, RequestBuilder>>
  /** Or the ids of the target's data: the scenario's own requests, sent from the generator thread. */
  world?: TrafficWorld
  file: string | null
  scale: number
  signal: AbortSignal
  testStarve?: {everyMs: number; forMs: number}
}

/**
 * The scenario's phases against a target, with no database: no drop is created and no invariant
 * is checked. Judged by the scenario's thresholds like every run.
 */
export async function trafficRun(o: TrafficRunOptions, emit: Emit): Promise<RunResult> {
  const s = o.scenario
  const errors: UsageError[] = []
  let base: URL | undefined
  try {
    base = new URL(o.target)
    if (!/^https?:$/.test(base.protocol)) throw new Error('not http')
  } catch {
    errors.push(new UsageError('--target', `expected http://host:port, got ${redactUrl(o.target)}`))
  }
  if (o.builders) {
    const needed = [...new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))]
    for (const t of needed) {
      if (!o.builders[t]) errors.push(new UsageError(t, `the scenario sends ${t} requests but no request builder was given for it`))
    }
  }
  throwUsageErrors(errors)
  await reachable(base!)

  const startedAt = new Date().toISOString()
  let load: OpenModelResult
  if (o.builders) {
    load = await runOpenModel({
      ...openModelPlan(s),
      baseUrl: o.target,
      builders: o.builders as Record<string, RequestBuilder>,
      signal: o.signal,
      testStarve: o.testStarve,
      onProgress: (p) => emit('progress', p),
      onPhase: (p) => emit('phase', p),
      onSecond: (p) => emit('second', p),
    })
  } else {
    const generator = startGenerator({scenario: s, target: o.target, world: o.world!, notifyUsers: [], testStarve: o.testStarve})
    const abort = () => generator.abort()
    o.signal.addEventListener('abort', abort, {once: true})
    generator.on('progress', (p) => emit('progress', p))
    generator.on('phase', (p) => emit('phase', p))
    generator.on('second', (p) => emit('second', p))
    try {
      ;({load} = await generator.done)
    } finally {
      o.signal.removeEventListener('abort', abort)
    }
  }
  return buildRunResult({scenario: s, file: o.file, scale: o.scale, target: o.target, startedAt, load})
}
