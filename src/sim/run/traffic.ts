import {EventEmitter} from 'node:events'
import {hostname} from 'node:os'
import {UsageError, redactUrl, throwUsageErrors} from '../core/errors.js'
import {phaseTypes} from './load/arrivals.js'
import {reachable} from './load/reachable.js'
import {judgeRun, type RunResult} from './metrics/result.js'
import {runOpenModel, type PhaseEvent, type RequestBuilder, type RunProgress} from './load/open-model.js'
import {REQUEST_GROUPS, thresholdSpec, type RequestType, type Scenario} from './scenario/schema.js'

export type {PhaseEvent, RequestBuilder, RequestContext, HttpRequestSpec, RunProgress} from './load/open-model.js'
export type {RunResult} from './metrics/result.js'

export interface RunScenarioOptions {
  /** A validated scenario (loadScenario / parseScenario), already scaled. */
  scenario: Scenario
  /** http://host:port[/base] of the target. */
  target: string
  /** How to build each request type's HTTP request; every type with a rate needs one. */
  builders: Partial<Record<RequestType, RequestBuilder>>
  /** Recorded in the result. Default null. */
  file?: string | null
  /** Recorded in the result (the scenario passed in is already scaled). Default 1. */
  scale?: number
  /** Overrides of the scenario's generator settings (e.g. from flags). */
  generator?: Partial<Scenario['generator']>
  /** Stops the run early; the result then has aborted: true. */
  signal?: AbortSignal
  /** Test-only: starves the generator's thread with a real busy loop of forMs every everyMs. */
  testStarve?: {everyMs: number; forMs: number}
}

export interface RunHandle extends EventEmitter {
  /** Resolves to the run's result (also for void runs: see result.void and verdictError); rejects on usage or unreachable target. */
  readonly result: Promise<RunResult>
  /** Stops scheduling; in-flight requests finish and the result is still produced. */
  abort(): void
  on(event: 'progress', listener: (p: RunProgress) => void): this
  on(event: 'phase', listener: (p: PhaseEvent) => void): this
}

/**
 * Runs a scenario's phases against a target as an open model and evaluates its thresholds.
 * The caller adds invariants, engine stats and extra metrics afterwards with finalizeRun.
 *
 * @example
 * const handle = runScenario({scenario, target: 'http://127.0.0.1:8080', builders})
 * handle.on('progress', (p) => render(p))
 * const result = await handle.result
 */
export function runScenario(opts: RunScenarioOptions): RunHandle {
  return startRun<RunHandle>(opts.signal, (emitter, signal) => execute(opts, emitter, signal))
}

/**
 * The handle shape of every run (library API = CLI): an emitter renderers listen to, `result`,
 * and abort(), which the caller's signal also triggers.
 */
export function startRun<H extends EventEmitter>(signal: AbortSignal | undefined, execute: (emitter: EventEmitter, signal: AbortSignal) => Promise<unknown>): H {
  const emitter = new EventEmitter()
  const controller = new AbortController()
  signal?.addEventListener('abort', () => controller.abort(), {once: true})
  const result = execute(emitter, controller.signal)
  return Object.assign(emitter, {result, abort: () => controller.abort()}) as unknown as H
}

async function execute(opts: RunScenarioOptions, emitter: EventEmitter, signal: AbortSignal): Promise<RunResult> {
  const s = opts.scenario
  const g = {...s.generator, ...opts.generator}
  const errors: UsageError[] = []
  let base: URL | undefined
  try {
    base = new URL(opts.target)
    if (!/^https?:$/.test(base.protocol)) throw new Error('not http')
  } catch {
    errors.push(new UsageError('--target', `expected http://host:port, got ${redactUrl(opts.target)}`))
  }
  const needed = [...new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))]
  for (const t of needed) {
    if (!opts.builders[t]) errors.push(new UsageError(t, `the scenario sends ${t} requests but no request builder was given for it`))
  }
  throwUsageErrors(errors)
  await reachable(base!)

  const startedAt = new Date().toISOString()
  const load = await runOpenModel({
    baseUrl: opts.target,
    phases: s.phases.map((p) => ({name: p.name, durationMs: p.duration, arrival: p.arrival ?? s.arrival, rates: p.rates, rampTo: p.rampTo})),
    builders: opts.builders as Record<string, RequestBuilder>,
    seed: s.dataset.seed,
    connections: g.connections,
    slackMs: g.slackMs,
    timeoutMs: g.timeout,
    maxLagMs: g.maxLagMs,
    signal,
    testStarve: opts.testStarve,
    onProgress: (p) => emitter.emit('progress', p),
    onPhase: (p) => emitter.emit('phase', p),
  })
  const result: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    scenario: {name: s.name, file: opts.file ?? null, scale: opts.scale ?? 1, seed: s.dataset.seed, thresholds: thresholdSpec(s)},
    target: opts.target.endsWith('/') ? redactUrl(opts.target) : redactUrl(opts.target).replace(/\/$/, ''),
    startedAt,
    durationMs: Math.round(load.durationMs),
    generator: {
      hostname: hostname(),
      connections: g.connections,
      slackMs: g.slackMs,
      timeoutMs: g.timeout,
      maxLateFraction: g.maxLateFraction,
      maxLagMs: g.maxLagMs,
      eventLoopLag: load.eventLoopLag,
      lateFraction: load.lateFraction,
      late: load.late,
      worstLagMs: load.worstLagMs,
      cpu: load.cpu,
      stall: load.stall,
      runs: 1,
    },
    phases: load.phases,
    series: load.series,
    metrics: {},
    thresholds: [],
    invariants: [],
    stats: {},
    void: null,
    aborted: load.aborted,
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
  return judgeRun(result, REQUEST_GROUPS)
}

export {finalizeRun, judgeRun, verdictError, computeVerdict, evaluateRunThresholds} from './metrics/result.js'
export {REQUEST_GROUPS} from './scenario/schema.js'
