/**
 * abortOnFail: thresholds judged while the run goes, one closed second at a time, so a run that
 * has already failed stops instead of running its course (k6's abortOnFail / delayAbortEval).
 *
 * After its delay (from the run's start, or its phase's start for a phase threshold), each closed
 * second a threshold is judged on the data so far: latency on every response so far (a window
 * threshold on every whole window so far), the error share on the requests done so far; a phase
 * threshold on that phase's seconds. Counts and rates are totals, judged only when they can no
 * longer pass (below). It stops the run when it fails.
 *
 * Lateness cannot cause an abort: a latency threshold stops the run only when it fails also with
 * every late send counted from when the generator got to it (the void rule's excused figures),
 * so a failure the generator's own lateness could explain never stops a run (the end-of-run
 * void rule judges it as usual).
 *
 * A run threshold on an error share, a count or a rate stops the run at once, delay or not, when
 * it can no longer pass whatever the rest of the run does: errors only add up and the run
 * schedules a known number of requests at most (see scheduledAtMost), so `errors.rate < 1%` with
 * 130 errors out of at most 12,001 requests has failed already.
 */
import {LatencyHistogram} from '../../core/histogram.js'
import {phaseTypes, rampOf} from '../load/arrivals.js'
import type {Groups, RunAbort, SeriesPoint, SeriesTypePoint} from '../metrics/result.js'
import {cannotPass, evaluateThreshold, formatThresholdActual, formatThresholdValue, parseThreshold, type Threshold, type WindowValue} from '../metrics/thresholds.js'
import {REQUEST_GROUPS, type Scenario} from '../scenario/schema.js'

export interface AbortWatcher {
  /** Judges one closed second; returns the abort the first time a threshold fails, else null. */
  second(p: SeriesPoint): RunAbort | null
  /** The abort, once one fired. */
  readonly fired: RunAbort | null
}

/** The watcher of a scenario's thresholds with abortOnFail; null when it has none. */
export function watchAborts(s: Scenario, groups: Groups = REQUEST_GROUPS): AbortWatcher | null {
  const rules = s.abortRules ?? []
  if (!rules.length) return null
  const starts = s.phases.map((_, i) => s.phases.slice(0, i).reduce((ms, p) => ms + p.duration, 0))
  const totalMs = s.phases.reduce((ms, p) => ms + p.duration, 0)
  const watches = rules.map((r) => {
    if (r.scope === 'run') return new ThresholdWatch(parseThreshold(s.thresholds[r.index]), r.scope, 0, r.delayMs, totalMs, s, groups)
    const i = s.phases.findIndex((p) => p.name === r.scope)
    return new ThresholdWatch(parseThreshold(s.phases[i].thresholds![r.index]), r.scope, starts[i], r.delayMs, s.phases[i].duration, s, groups)
  })
  let fired: RunAbort | null = null
  return {
    second(p) {
      // a second past the schedule is the drain: nothing is left to stop
      if (fired || p.t * 1000 >= totalMs) return null
      for (const w of watches) {
        w.add(p)
        const why = w.judge(p)
        if (why !== null) {
          fired = {threshold: w.t.expression, scope: w.scope, atMs: (p.t + 1) * 1000, reason: why}
          return fired
        }
      }
      return null
    },
    get fired() {
      return fired
    },
  }
}

/** Latency so far as measured, and with each late send counted from when the generator got to it. */
interface Pair {
  measured: LatencyHistogram
  excused: LatencyHistogram
}

const newPair = (): Pair => ({measured: LatencyHistogram.coarse(), excused: LatencyHistogram.coarse()})

/** One threshold with abortOnFail and what it has seen of its scope so far. */
class ThresholdWatch {
  private done = 0
  private errors = 0
  private completed = 0
  private readonly sofar = newPair()
  /** Window thresholds: the seconds a window still to judge needs, and the worst whole window so far. */
  private readonly recent = new Map<number, Pair>()
  private nextStart: number | null = null
  private readonly worst: {measured?: WindowValue; excused?: WindowValue} = {}
  /** Run scope only: the most requests of this metric the run can send (count, rate and error share bounds). */
  private readonly most: number | null

  constructor(
    readonly t: Threshold,
    readonly scope: string,
    private readonly startMs: number,
    private readonly delayMs: number,
    private readonly durationMs: number,
    s: Scenario,
    private readonly groups: Groups,
  ) {
    this.most = scope === 'run' && t.kind !== 'latency' ? scheduledAtMost(s, t.metric, groups) : null
  }

  /** This second's points of the metric: the `all` point, or the members of a group, or the type. */
  private pointsOf(p: SeriesPoint): SeriesTypePoint[] {
    if (this.t.metric === 'all') return p.types.all ? [p.types.all] : []
    const types = (this.groups[this.t.metric] as readonly string[] | undefined) ?? [this.t.metric]
    return types.flatMap((type) => (p.types[type] ? [p.types[type]] : []))
  }

  add(p: SeriesPoint): void {
    if (this.scope !== 'run' && p.phase !== this.scope) return
    const points = this.pointsOf(p)
    if (!points.length) return
    const second = newPair()
    for (const x of points) {
      this.done += x.done
      this.errors += x.errors
      this.completed += Object.values(x.statuses ?? {}).reduce((a, n) => a + n, 0)
      if (this.t.kind !== 'latency' || !x.histograms) continue
      const service = this.t.timing === 'service'
      const measured = LatencyHistogram.decode(service ? x.histograms.service : x.histograms.corrected)
      second.measured.add(measured)
      // service time starts at the actual send, so lateness is not in it; a second with no late send keeps no excused histogram
      const excused = service ? undefined : x.histograms.excused
      second.excused.add(excused ? LatencyHistogram.decode(excused) : measured)
    }
    if (this.t.kind !== 'latency') return
    if (this.t.windowS === null) {
      this.sofar.measured.add(second.measured)
      this.sofar.excused.add(second.excused)
      return
    }
    this.addWindowSecond(p.t, second, this.t.windowS)
  }

  /** Judges every window that this second makes whole, as windowLookup does at the end: starts from the first second with samples, empty windows left out. */
  private addWindowSecond(t: number, second: Pair, n: number): void {
    this.recent.set(t, second)
    this.nextStart ??= t
    for (; this.nextStart <= t - n + 1; this.nextStart++) {
      const w = newPair()
      for (let s = this.nextStart; s < this.nextStart + n; s++) {
        const h = this.recent.get(s)
        if (h) {
          w.measured.add(h.measured)
          w.excused.add(h.excused)
        }
      }
      if (w.measured.count === 0) continue
      for (const which of ['measured', 'excused'] as const) {
        const value = {startS: this.nextStart, value: statOf(w[which], this.t)}
        const was = this.worst[which]
        this.worst[which] = was ? worse(this.t, was, value) : value
      }
    }
    for (const s of this.recent.keys()) if (s < this.nextStart) this.recent.delete(s)
  }

  /** Why the run must stop now, or null. */
  judge(p: SeriesPoint): string | null {
    const bound = this.bound()
    if (bound !== null) return bound
    if ((p.t + 1) * 1000 < this.startMs + this.delayMs) return null
    // counts and rates are totals of the whole scope: the data so far says nothing about them
    if (this.t.kind === 'count' || this.t.kind === 'rate') return null
    const where = this.scope === 'run' ? 'the run' : `phase ${this.scope}`
    if (this.t.kind === 'fraction') {
      const r = this.judged('measured', this.done === 0 ? undefined : this.errors / this.done)
      return r.pass ? null : `${formatThresholdActual(r)} of the ${this.done.toLocaleString('en-US')} requests done in ${where} so far`
    }
    const measured = this.judged('measured', this.latency('measured'))
    const excused = this.judged('excused', this.latency('excused'))
    if (measured.pass || excused.pass) return null
    return `${formatThresholdActual(measured)} over ${where} so far`
  }

  private latency(which: 'measured' | 'excused'): number | undefined {
    if (this.t.windowS !== null) return this.worst[which]?.value
    const h = this.sofar[which]
    return h.count === 0 ? undefined : statOf(h, this.t)
  }

  /** The threshold judged on a value so far (a window threshold on its worst window so far), as a ThresholdResult the reports format. */
  private judged(which: 'measured' | 'excused', value: number | undefined) {
    const worst = this.worst[which]
    const r = evaluateThreshold(this.t, this.scope, () => value, () => (worst ? [worst] : []))
    // no data so far is no failure yet: the traffic it guards may still come
    return {...r, pass: r.pass || r.noData}
  }

  /** A run threshold on an error share, a count or a rate that can no longer pass, and why; else null. */
  private bound(): string | null {
    const most = this.most
    if (most === null) return null
    const t = this.t
    const n = (x: number) => Math.round(x).toLocaleString('en-US')
    if (t.kind === 'fraction' && t.stat === 'errors') {
      // unsent requests count as failed at the end, so the final share is at least errors / most
      const lo = this.errors / most
      return cannotPass(t.op, t.limit, lo, 1) ? `can no longer pass: ${n(this.errors)} errors are already ${formatThresholdValue('fraction', lo)} of the at most ${n(most)} requests the run schedules` : null
    }
    if (t.kind !== 'count' && t.kind !== 'rate') return null
    const hi = this.completed + Math.max(0, most - this.done)
    const per = t.kind === 'rate' ? this.durationMs / 1000 : 1
    if (!cannotPass(t.op, t.limit, this.completed / per, hi / per)) return null
    const value = (x: number) => formatThresholdValue(t.kind, x / per)
    return t.op.startsWith('<')
      ? `can no longer pass: ${n(this.completed)} requests completed already (${value(this.completed)})`
      : `can no longer pass: at most ${n(hi)} requests can complete (${value(hi)}): ${n(this.done)} of at most ${n(most)} are done`
  }
}

function statOf(h: LatencyHistogram, t: Threshold): number {
  return t.stat === 'max' ? h.maxMs : t.stat === 'mean' ? h.meanMs : h.percentileMs(Number(t.stat.slice(1)))
}

/** The window that decides the threshold of two, as worstWindow picks: higher for < and <=, lower for > and >=, the first unequal for ==. */
function worse(t: Threshold, a: WindowValue, b: WindowValue): WindowValue {
  if (t.op === '==') return a.value !== t.limit ? a : b
  const higherIsWorse = t.op === '<' || t.op === '<='
  return (higherIsWorse ? b.value > a.value : b.value < a.value) ? b : a
}

// a Poisson count exceeds its mean by more than 8 standard deviations with a chance below 1e-12
const POISSON_SIGMAS = 8
const POISSON_SLACK = 10

/**
 * The most requests of a metric (a type, a group or `all`) the run can schedule. A constant
 * stream sends ⌈Λ⌉ requests in a phase whose expected count is Λ (one more for rounding); a
 * Poisson stream's count is random, so its bound is Λ + 8√Λ + 10, which it exceeds with a chance
 * below 1e-12. A split run (--segment) sends a share of these: the bound still holds.
 */
export function scheduledAtMost(s: Scenario, metric: string, groups: Groups = REQUEST_GROUPS): number {
  const members = metric === 'all' ? null : new Set((groups[metric] as readonly string[] | undefined) ?? [metric])
  let most = 0
  for (const p of s.phases) {
    for (const type of phaseTypes(p)) {
      if (members && !members.has(type)) continue
      const [from, to] = rampOf(p, type)
      const expected = ((from + to) / 2) * (p.duration / 1000)
      most += (p.arrival ?? s.arrival) === 'poisson' ? Math.ceil(expected + POISSON_SIGMAS * Math.sqrt(expected) + POISSON_SLACK) : Math.ceil(expected) + 1
    }
  }
  return most
}
