import {hostname} from 'node:os'
import {redactUrl} from '../../core/errors.js'
import type {OpenModelResult} from '../executors/open-model/index.js'
import type {LatencyHistogram} from '../../core/histogram.js'
import {finalizeRun, type InvariantResult, type RunAbort, type RunResult} from '../metrics/result.js'
import {REQUEST_GROUPS, thresholdSpec, type Scenario} from '../scenario/schema.js'

/** Everything a run's result is made of: the scenario, the executor's samples and what was checked after. */
export interface RunFacts {
  /** Validated and scaled. */
  scenario: Scenario
  file: string | null
  scale: number
  target: string
  startedAt: string
  load: OpenModelResult
  invariants?: InvariantResult[]
  stats?: Record<string, unknown>
  /** Extra latency metrics, e.g. notify (drop start → event seen by a follower). */
  metrics?: Record<string, LatencyHistogram>
  /** The threshold with abortOnFail that stopped the run (see run/abort.ts). */
  abort?: RunAbort | null
}

/** The one place a RunResult is made: assembled from the facts, then judged once (thresholds, void rule, verdict). */
export function buildRunResult(f: RunFacts): RunResult {
  const s = f.scenario
  const g = s.generator
  const {load} = f
  const shell: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    scenario: {name: s.name, file: f.file, scale: f.scale, seed: s.dataset.seed, thresholds: thresholdSpec(s)},
    // as the user wrote it: URL parsing adds a trailing slash to a bare origin
    target: f.target.endsWith('/') ? redactUrl(f.target) : redactUrl(f.target).replace(/\/$/, ''),
    startedAt: f.startedAt,
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
    failures: load.failures,
    metrics: {},
    thresholds: [],
    invariants: [],
    stats: {},
    void: null,
    aborted: load.aborted,
    ...(f.abort ? {abort: f.abort} : {}),
    verdict: {pass: true, void: false, thresholdsFailed: 0, invariantsFailed: 0, exitCode: 0},
  }
  return finalizeRun(shell, REQUEST_GROUPS, {invariants: f.invariants, stats: f.stats, metrics: f.metrics})
}
