import {UsageError, redactUrl, throwUsageErrors} from '../../core/errors.js'
import {phaseTypes, type Segment} from '../load/arrivals.js'
import {runOpenModel, type OpenModelResult, type RequestBuilder} from '../executors/open-model/index.js'
import {reachable} from '../load/reachable.js'
import type {RunResult} from '../metrics/result.js'
import type {TrafficWorld} from '../traffic/builders.js'
import {prepareProfile} from '../traffic/fixture.js'
import type {Profile, ProfileTarget} from '../traffic/profile.js'
import {checkBlackBox} from '../invariants/black-box.js'
import type {RequestType, Scenario} from '../scenario/schema.js'
import {relayGenerator, startGenerator, type GeneratorOutput} from './generator.js'
import type {Emit} from './events.js'
import {checkStartAt, executorSignal, holdUntil, openModelPlan} from './plan.js'
import {buildRunResult, type RunFacts} from './result.js'
import {watchAborts, type AbortWatcher} from './abort.js'

export interface TrafficRunOptions {
  /** Validated and scaled. */
  scenario: Scenario
  target: string
  /** Request builders made by the caller: the run goes on this thread. */
  builders?: Partial<Record<RequestType, RequestBuilder>>
  /** Or the ids of the target's data: the scenario's own requests, sent from the generator thread. */
  world?: TrafficWorld
  /** Or another API's profile: its fixture is prepared first, the black-box invariants checked after. */
  profile?: {profile: Profile; fixture?: Record<string, string>; secret?: string}
  file: string | null
  scale: number
  signal: AbortSignal
  testStarve?: {everyMs: number; forMs: number}
  /** Send only this segment's share of the schedule (and, with a world or profile, its own keys and buyers). Default: all. */
  segment?: Segment
  /** Epoch ms: hold the schedule until then, so several generators' seconds line up. Default: at once. */
  startAt?: number
}

/**
 * The scenario's phases against a target, with no database. With a profile, its fixture (drop,
 * products, logins) is made through the API first and the black-box invariants are checked from
 * the order answers; otherwise no drop is created and no invariant is checked. Judged by the
 * scenario's thresholds like every run.
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
  if (o.startAt !== undefined) {
    try {
      checkStartAt(o.startAt)
    } catch (err) {
      errors.push(err as UsageError)
    }
  }
  throwUsageErrors(errors)
  await reachable(base!)

  let world = o.world
  let profile: ProfileTarget | undefined
  if (o.profile) {
    emit('stage', 'prepare', `fixture of ${o.profile.profile.name} on ${redactUrl(o.target)}`)
    ;({target: profile, world} = await prepareProfile(o.profile.profile, {scenario: s, target: o.target, given: o.profile.fixture, secret: o.profile.secret}))
  }

  // with --start-at the generators' schedules start at that instant, whenever each was ready
  const startedAt = new Date(o.startAt ?? Date.now()).toISOString()
  let load: OpenModelResult
  let extras: Pick<RunFacts, 'invariants' | 'stats'> = {}
  let watcher: AbortWatcher | null
  if (o.builders) {
    watcher = watchAborts(s)
    const stop = new AbortController()
    if (o.startAt !== undefined) await holdUntil(o.startAt, o.signal)
    load = await runOpenModel({
      ...openModelPlan(s, o.segment),
      baseUrl: o.target,
      builders: o.builders as Record<string, RequestBuilder>,
      signal: AbortSignal.any([executorSignal(o.signal), stop.signal]),
      testStarve: o.testStarve,
      onProgress: (p) => emit('progress', p),
      onPhase: (p) => emit('phase', p),
      onSecond: (p) => {
        emit('second', p)
        if (watcher?.second(p)) stop.abort()
      },
    })
  } else {
    const generator = startGenerator({scenario: s, target: o.target, world: world!, notifyUsers: [], testStarve: o.testStarve, profile, segment: o.segment, startAt: o.startAt})
    const relay = relayGenerator(generator, {scenario: s, signal: o.signal, emit})
    watcher = relay.watcher
    try {
      const out = await generator.done
      load = out.load
      if (profile) extras = profileResults(profile, out.ledger)
    } finally {
      relay.detach()
    }
  }
  const result = buildRunResult({scenario: s, file: o.file, scale: o.scale, target: o.target, startedAt, load, ...extras, abort: watcher?.fired})
  // what `report merge` checks the pieces of a split run by
  if (o.segment && o.segment.count > 1) result.scenario.segment = {index: o.segment.index, count: o.segment.count}
  if (o.startAt !== undefined) result.scenario.startAt = startedAt
  return result
}


/** A profile run's invariants (from the answers alone) and what the answers said, for the run file. */
function profileResults(p: ProfileTarget, ledger: GeneratorOutput['ledger']): Pick<RunFacts, 'invariants' | 'stats'> {
  const b = ledger.blackBox
  return {
    invariants: checkBlackBox(b),
    stats: {
      profile: p.profile.name,
      fixture: p.fixture.values,
      stock: b.stock,
      ordersConfirmed: b.orders,
      unitsAcknowledged: b.ackedUnits,
      soldOutAnswers: b.answers.soldOut,
      notLiveAnswers: b.answers.notLive,
      replays: b.answers.replay + b.replaysCompared,
    },
  }
}
