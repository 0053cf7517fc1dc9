import {LatencyHistogram} from '../../../core/histogram.js'
import type {FailureSample, RequestStats, SeriesPoint, SeriesTypePoint} from '../../metrics/result.js'

// enough to see what the errors said, few enough to keep a run file small
const FAILURES_KEPT_PER_TYPE = 5
const FAILURE_BODY_CHARS = 200

const round3 = (x: number) => Math.round(x * 1000) / 1000

/**
 * The excused histogram (corrected latency, except that a late send counts from when the
 * generator got to it) equals the corrected one until the first late send. So it is only made
 * then, as a copy of the corrected one, and recorded from there on: a run on schedule records
 * each response into two histograms here, not three.
 */
function excusedFrom(corrected: LatencyHistogram, coarse: boolean): LatencyHistogram {
  const h = coarse ? LatencyHistogram.coarse() : new LatencyHistogram()
  h.add(corrected)
  return h
}

/** One request type in one phase: counts and full-precision histograms for the run file. */
export class Recorder {
  readonly corrected = new LatencyHistogram()
  readonly service = new LatencyHistogram()
  /** Null while no response was late: then it equals `corrected`. */
  private excused: LatencyHistogram | null = null
  scheduled = 0
  sent = 0
  completed = 0
  ok = 0
  errors = 0
  late = 0
  queued = 0
  unsent = 0
  /** Not yet due when the run was stopped on purpose (abortOnFail, the user): never attempted, not failed. */
  skipped = 0
  /** Sent before the phase ended (within the slack): what the achieved rate counts. */
  sentInPhase = 0
  readonly errorsByClass: Record<string, number> = {}
  readonly statuses: Record<string, number> = {}

  error(cls: string): void {
    this.errors++
    this.errorsByClass[cls] = (this.errorsByClass[cls] ?? 0) + 1
  }

  /** A response: latency from the intended send time, from the actual send, and how late the send was (0: on time). */
  answer(status: number, correctedMs: number, serviceMs: number, lateMs: number): void {
    this.completed++
    this.statuses[status] = (this.statuses[status] ?? 0) + 1
    if (lateMs > 0 && this.excused === null) this.excused = excusedFrom(this.corrected, false)
    this.corrected.recordMs(correctedMs)
    this.service.recordMs(serviceMs)
    this.excused?.recordMs(correctedMs - lateMs)
  }

  stats(targetRate: number, durationMs: number): RequestStats {
    return {
      targetRate,
      achievedRate: durationMs > 0 ? this.sentInPhase / (durationMs / 1000) : 0,
      scheduled: this.scheduled,
      sent: this.sent,
      completed: this.completed,
      ok: this.ok,
      errors: this.errors,
      late: this.late,
      queued: this.queued,
      unsent: this.unsent,
      ...(this.skipped ? {skipped: this.skipped} : {}),
      errorsByClass: this.errorsByClass,
      statuses: this.statuses,
      corrected: this.corrected.summary(),
      service: this.service.summary(),
      histograms: {corrected: this.corrected.encode(), service: this.service.encode(), excused: (this.excused ?? this.corrected).encode()},
    }
  }
}

/** One second of one request type, summarised when the second is over. */
export class SecondBucket {
  sent = 0
  done = 0
  errors = 0
  readonly statuses: Record<string, number> = {}
  // coarse HDR histograms: summarising a second is O(buckets), not a sort of every latency
  readonly corrected = LatencyHistogram.coarse()
  readonly service = LatencyHistogram.coarse()
  /** Set once a response in this second was sent late (before that it equals `corrected`). */
  private excused: LatencyHistogram | null = null

  answer(status: number, correctedMs: number, serviceMs: number, lateMs: number): void {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1
    if (lateMs > 0 && this.excused === null) this.excused = excusedFrom(this.corrected, true)
    this.corrected.recordMs(correctedMs)
    this.service.recordMs(serviceMs)
    this.excused?.recordMs(correctedMs - lateMs)
  }

  add(other: SecondBucket): void {
    this.sent += other.sent
    this.done += other.done
    this.errors += other.errors
    for (const [k, n] of Object.entries(other.statuses)) this.statuses[k] = (this.statuses[k] ?? 0) + n
    // the excused copy first, while `corrected` does not hold the other's counts yet
    if (other.excused !== null && this.excused === null) this.excused = excusedFrom(this.corrected, true)
    this.excused?.add(other.excused ?? other.corrected)
    this.corrected.add(other.corrected)
    this.service.add(other.service)
  }

  point(): SeriesTypePoint {
    return {
      sent: this.sent,
      done: this.done,
      errors: this.errors,
      statuses: this.statuses,
      p50: round3(this.corrected.percentileMs(50)),
      p99: round3(this.corrected.percentileMs(99)),
      serviceP99: round3(this.service.percentileMs(99)),
      // kept so window thresholds ("read.p99 < 300ms over 5s") merge seconds exactly
      histograms: {corrected: this.corrected.encode(), service: this.service.encode(), ...(this.excused ? {excused: this.excused.encode()} : {})},
    }
  }
}

/**
 * The run's per-second series: a bucket per second and request type, found by array index
 * (seconds from the start, types by their index), closed into SeriesPoints once the second is over.
 */
export class Series {
  readonly points: SeriesPoint[] = []
  /** Corrected latency of every closed second, all types: the progress line's p99. */
  readonly closedCorrected = LatencyHistogram.coarse()
  private readonly open: Array<Array<SecondBucket | undefined> | undefined> = []
  private closedUpTo = 0

  constructor(
    private readonly types: readonly string[],
    /** The phase and target rate at a second of the run. */
    private readonly at: (second: number) => {phase: string; target: number},
    private readonly onSecond?: (p: SeriesPoint) => void,
  ) {}

  /** The bucket of request type `type` (its index) for the second that `elapsedMs` falls in. */
  bucket(elapsedMs: number, type: number): SecondBucket {
    // a response after its second was closed (only at the very end) counts in the oldest open one
    const s = Math.max(this.closedUpTo, Math.floor(elapsedMs / 1000))
    const second = (this.open[s] ??= [])
    return (second[type] ??= new SecondBucket())
  }

  /** Closes every second before `upTo` (Infinity: all) into points, in order. */
  close(upTo: number): void {
    const end = Math.min(upTo, this.open.length)
    for (let s = this.closedUpTo; s < end; s++) {
      const buckets = this.open[s]
      if (!buckets) continue
      this.open[s] = undefined
      const typesPoint: Record<string, SeriesTypePoint> = {}
      const all = new SecondBucket()
      buckets.forEach((b, i) => {
        if (!b) return
        typesPoint[this.types[i]] = b.point()
        all.add(b)
      })
      typesPoint.all = all.point()
      this.closedCorrected.add(all.corrected)
      const point = {t: s, ...this.at(s * 1000), types: typesPoint}
      this.points.push(point)
      this.onSecond?.(point)
    }
    this.closedUpTo = Math.max(this.closedUpTo, end)
  }
}

/** The first failing answers of each request type (a few, their bodies cut), to show what the errors said. */
export class Failures {
  readonly byType: Record<string, FailureSample[]> = {}

  /** Is another failure of this type still kept? (A body is only read when it is.) */
  wanted(type: string): boolean {
    return (this.byType[type]?.length ?? 0) < FAILURES_KEPT_PER_TYPE
  }

  add(type: string, atSeconds: number, what: number | string, text: string): void {
    if (this.wanted(type)) (this.byType[type] ??= []).push({t: round3(atSeconds), status: what, body: text.slice(0, FAILURE_BODY_CHARS)})
  }
}

/** What a transport error is called in errorsByClass: timeout, unfinished (the run ended first), or net_<code>. */
export function errorClass(err: unknown): string {
  const code = (err as {code?: string} | null)?.code
  if (code === 'TIMEOUT') return 'timeout'
  if (code === 'UNFINISHED') return 'unfinished'
  return `net_${code ?? (err as Error)?.name ?? 'error'}`
}
