import type {RunResult, SeriesPoint} from '../metrics/result.js'

/** What a fault cost: errors and non-2xx answers in the seconds after it, and when latency came back. */
export interface FaultImpact {
  kind: string
  atMs: number
  action: string
  /** Errors (non-OK answers and network failures) in the IMPACT_WINDOW_S seconds from the fault. */
  errors: number
  /** Answers by status other than 2xx in that window, e.g. {"503": 4}. */
  statuses: Record<string, number>
  /** Seconds from the fault to the first second with no error and p99 within the run's latency limit; null if never. */
  recoveredAfterS: number | null
  error?: string
}

/** How long after a fault its errors are counted. */
export const IMPACT_WINDOW_S = 5

/**
 * The largest latency limit among the run's thresholds (ms): a second is "back" when its p99 is
 * within it. Without latency thresholds only errors decide.
 */
function latencyLimitMs(result: RunResult): number {
  const limits = result.thresholds.filter((t) => t.kind === 'latency').map((t) => t.limit)
  return limits.length ? Math.max(...limits) : Infinity
}

export function faultImpacts(result: RunResult): FaultImpact[] {
  const limit = latencyLimitMs(result)
  const bySecond = new Map<number, SeriesPoint>(result.series.map((p) => [p.t, p]))
  const lastSecond = result.series.at(-1)?.t ?? 0
  return (result.faults ?? []).map((f) => {
    const from = Math.floor(f.atMs / 1000)
    let errors = 0
    const statuses: Record<string, number> = {}
    for (let t = from; t < from + IMPACT_WINDOW_S; t++) {
      const all = bySecond.get(t)?.types.all
      if (!all) continue
      errors += all.errors
      for (const [status, n] of Object.entries(all.statuses ?? {})) if (!status.startsWith('2')) statuses[status] = (statuses[status] ?? 0) + n
    }
    let recoveredAfterS: number | null = null
    for (let t = from; t <= lastSecond; t++) {
      const all = bySecond.get(t)?.types.all
      if (all && all.done > 0 && all.errors === 0 && all.p99 <= limit) {
        recoveredAfterS = t - from
        break
      }
    }
    return {kind: f.kind, atMs: f.atMs, action: f.action ?? '', errors, statuses, recoveredAfterS, ...(f.error ? {error: f.error} : {})}
  })
}

/** "kill-worker at 25.0 s: SIGKILL worker 2 (pid 4242); restarted as pid 4300 — 12 errors in 5 s (503 ×8), back after 2 s" */
export function faultLines(result: RunResult): string[] {
  return faultImpacts(result).map((f) => {
    const statuses = Object.entries(f.statuses).map(([s, n]) => `${s} ×${n}`).join(', ')
    const cost = `${f.errors} error(s) in ${IMPACT_WINDOW_S} s${statuses ? ` (${statuses})` : ''}`
    const back = f.recoveredAfterS === null ? 'not back by the end of the run' : `back after ${f.recoveredAfterS} s`
    return `${f.kind} at ${(f.atMs / 1000).toFixed(1)} s: ${f.action}${f.error ? ` (${f.error})` : ''}; ${cost}, ${back}`
  })
}
