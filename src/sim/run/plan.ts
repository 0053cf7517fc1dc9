import {UsageError} from '../../core/errors.js'
import type {Segment} from '../load/arrivals.js'
import type {OpenModelOptions} from '../executors/open-model/index.js'
import type {Scenario} from '../scenario/schema.js'

/**
 * The open-model executor's plan from a scenario: its phases (with the scenario's arrival where a
 * phase has none) and generator settings. With a segment, every phase sends only that segment's
 * share of the one seeded schedule (see segmentOf in load/arrivals.ts).
 */
export function openModelPlan(s: Scenario, segment?: Segment): Pick<OpenModelOptions, 'phases' | 'seed' | 'connections' | 'slackMs' | 'timeoutMs' | 'maxLagMs'> {
  const g = s.generator
  return {
    phases: s.phases.map((p) => ({name: p.name, durationMs: p.duration, arrival: p.arrival ?? s.arrival, rates: p.rates, rampTo: p.rampTo, ...(segment && segment.count > 1 ? {segment} : {})})),
    seed: s.dataset.seed,
    connections: g.connections,
    slackMs: g.slackMs,
    timeoutMs: g.timeout,
    maxLagMs: g.maxLagMs,
  }
}

/** More generators than this is a typo rather than a fleet. */
const MAX_SEGMENTS = 10_000

/** `--segment 2/3` → {index: 2, count: 3}: this generator's part of n (1 ≤ i ≤ n). */
export function parseSegment(text: string, field = '--segment'): Segment {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text)
  const index = m ? Number(m[1]) : NaN
  const count = m ? Number(m[2]) : NaN
  if (!m || count < 1 || count > MAX_SEGMENTS || index < 1 || index > count) {
    throw new UsageError(field, `expected i/n with 1 ≤ i ≤ n (this generator's part of n), got "${text}"`, {
      hint: 'Two generators: --segment 1/2 on one and --segment 2/2 on the other, with the same --start-at.',
    })
  }
  return {index, count}
}

/** The furthest ahead --start-at may be: further is a mistyped date, not a plan. */
export const MAX_START_AHEAD_MS = 24 * 3_600_000

/**
 * `--start-at` as epoch ms: an ISO time (2025-06-01T12:00:00Z) or epoch milliseconds. It must lie
 * in the future, at most 24 h ahead of `now`.
 */
export function parseStartAt(text: string, now = Date.now(), field = '--start-at'): number {
  const at = /^\d{10,}$/.test(text.trim()) ? Number(text.trim()) : /^\d{4}-\d{2}-\d{2}T/.test(text.trim()) ? Date.parse(text.trim()) : NaN
  if (!Number.isFinite(at)) {
    throw new UsageError(field, `expected an ISO time or epoch milliseconds, got "${text}"`, {
      hint: 'For example --start-at "$(date -u -d "+30 seconds" +%FT%TZ)" or --start-at $(($(date +%s%3N) + 30000)).',
    })
  }
  checkStartAt(at, now, field)
  return at
}

/** A start time in the past, or more than 24 h ahead, is a usage error (the generators could not line up). */
export function checkStartAt(at: number, now = Date.now(), field = '--start-at'): void {
  if (at <= now) {
    throw new UsageError(field, `${new Date(at).toISOString()} is ${((now - at) / 1000).toFixed(1)} s in the past`, {
      hint: 'Give every generator the same time a little ahead, long enough for the last one to start (e.g. 30 s).',
    })
  }
  if (at - now > MAX_START_AHEAD_MS) {
    throw new UsageError(field, `${new Date(at).toISOString()} is more than 24 h ahead`, {hint: 'Check the date: the generators wait for it before sending anything.'})
  }
}

/** How late a generator may be ready for its start time and still start (its seconds then lag the others' by this much at most). */
const START_LATE_MS = 250

/**
 * Waits for the wall-clock instant `at` (epoch ms), or until aborted. Date.now is the clock other
 * machines agree on (NTP); the executor's connection warmup follows the wait (a few ms on a LAN).
 * Ready more than 250 ms after `at` is a usage error: the generators' seconds would not line up.
 */
export async function holdUntil(at: number, signal: AbortSignal, field = '--start-at'): Promise<void> {
  const wait = at - Date.now()
  if (wait < -START_LATE_MS) {
    throw new UsageError(field, `${new Date(at).toISOString()} passed ${(-wait / 1000).toFixed(1)} s before this generator was ready to send`, {
      hint: 'Give a time further ahead, so every generator is ready before it.',
    })
  }
  if (wait <= 0 || signal.aborted) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, wait)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), {once: true})
  })
}

/**
 * The signal to give the executor after a hold: it only hears an abort that comes after it started
 * listening, so one that came during the hold is passed on once it runs (the result then says
 * aborted, with next to nothing sent).
 */
export function executorSignal(signal: AbortSignal): AbortSignal {
  const c = new AbortController()
  if (signal.aborted) setTimeout(() => c.abort(), 0)
  else signal.addEventListener('abort', () => c.abort(), {once: true})
  return c.signal
}
