import {monitorEventLoopDelay, performance} from 'node:perf_hooks'
import {Client, type Dispatcher} from 'undici'
import {createRandom} from '../../core/random.js'
import {LatencyHistogram} from '../../core/histogram.js'
import type {FailureSample, PhaseResult, RequestStats, SeriesPoint, SeriesTypePoint} from '../metrics/result.js'
import {createSchedule, meanRate, phaseStarts, phaseTypes, type Arrival, type LoadPhase} from './arrivals.js'

/** One HTTP request, built per send by a request builder. */
export interface HttpRequestSpec {
  /** Default GET. */
  method?: string
  /** Path and query, starting with `/` (appended to the target's base path). */
  path: string
  headers?: Record<string, string>
  /** A string is sent as is; anything else as JSON with content-type application/json. */
  body?: unknown
  /** Which statuses count as success. Default 200–399; e.g. an order's 409 sold-out is an answer, not an error. */
  ok?: (status: number) => boolean
  /** Receives the status and body text; the body is only read when this is set. */
  onResponse?: (status: number, body: string) => void
}

/** What a request builder may use: a seeded random source and where in the run it is. */
export interface RequestContext {
  type: string
  /** The phase's name. */
  phase: string
  /** 0, 1, 2… over the whole run. */
  seq: number
  /** Intended send time, ms from the run's start. */
  intendedMs: number
  /** Seeded: the same scenario seed gives the same request sequence. */
  random: () => number
}

export type RequestBuilder = (ctx: RequestContext) => HttpRequestSpec

export interface OpenModelOptions {
  /** http://host:port[/base]: the target. */
  baseUrl: string
  phases: LoadPhase[]
  /** A builder per request type that appears in any phase's rates. */
  builders: Record<string, RequestBuilder>
  /** Seeds the arrival process and the builders' random source. Default 1. */
  seed?: number
  /** Keep-alive connections, which is also the most requests in flight. Default 256. */
  connections?: number
  /** A request the generator sends later than this after its intended time counts as late. Default 10 ms. */
  slackMs?: number
  /** Per-request timeout (headers and body). Default 10 s. */
  timeoutMs?: number
  /**
   * A hard stall: when requests were due and the generator sent none for longer than this, the
   * run stops and is void. Default 500 ms. (Late sends alone never stop a run: see judgeRun.)
   */
  maxLagMs?: number
  /** After the last phase, how long in-flight and queued requests may finish. Default timeoutMs + 1 s. */
  drainMs?: number
  /**
   * Before the clock starts, open this many connections with `HEAD /` (answers ignored), so
   * connection setup and the HTTP parser's first compile are not charged to the first
   * requests. Default min(connections, 16); 0 turns it off.
   */
  warmupConnections?: number
  /** Stops scheduling; what was recorded so far is returned (aborted: true). */
  signal?: AbortSignal
  /** Test-only: starves the generator's own thread with a real busy loop of forMs every everyMs. */
  testStarve?: {everyMs: number; forMs: number}
  onProgress?: (p: RunProgress) => void
  onPhase?: (p: PhaseEvent) => void
  /** Each second of the run as it closes (what the run file's series holds), for live streams. */
  onSecond?: (p: SeriesPoint) => void
}

export interface RunProgress {
  elapsedMs: number
  totalMs: number
  phase: string
  /** Target rate of the current phase, req/s. */
  targetRate: number
  /** Responses in the last second. */
  rate: number
  sent: number
  completed: number
  errors: number
  late: number
  inFlight: number
  /** Corrected p99 of everything so far, ms. */
  p99Ms: number
}

export interface PhaseEvent {
  index: number
  name: string
  startMs: number
  durationMs: number
  targetRate: number
}

export interface OpenModelResult {
  phases: PhaseResult[]
  series: SeriesPoint[]
  durationMs: number
  eventLoopLag: {p50: number; p99: number; max: number}
  /** Sends the generator made more than slackMs after their intended time. */
  late: number
  lateFraction: number
  /** The most any request waited for the generator to get to it, ms. */
  worstLagMs: number
  /** Share of the run the generator's thread was busy (event-loop utilization), 0–1. */
  cpu: number
  /** Set when the generator stalled (sent nothing while requests were due for longer than maxLagMs). */
  stall: {reason: string; detail: Record<string, unknown>} | null
  aborted: boolean
  /** The first failing answers of each request type, to show what the errors said. */
  failures: Record<string, FailureSample[]>
}

// enough to see what the errors said, few enough to keep a run file small
const FAILURES_KEPT_PER_TYPE = 5
const FAILURE_BODY_CHARS = 200

class Recorder {
  readonly corrected = new LatencyHistogram()
  readonly service = new LatencyHistogram()
  /** Corrected latency, except that a late send counts from when the generator got to it. */
  readonly excused = new LatencyHistogram()
  scheduled = 0
  sent = 0
  completed = 0
  ok = 0
  errors = 0
  late = 0
  queued = 0
  unsent = 0
  /** Sent before the phase ended (within the slack): what the achieved rate counts. */
  sentInPhase = 0
  readonly errorsByClass: Record<string, number> = {}
  readonly statuses: Record<string, number> = {}

  error(cls: string): void {
    this.errors++
    this.errorsByClass[cls] = (this.errorsByClass[cls] ?? 0) + 1
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
      errorsByClass: this.errorsByClass,
      statuses: this.statuses,
      corrected: this.corrected.summary(),
      service: this.service.summary(),
      histograms: {corrected: this.corrected.encode(), service: this.service.encode(), excused: this.excused.encode()},
    }
  }
}

/** One second of one request type, summarised when the second is over. */
class SecondBucket {
  sent = 0
  done = 0
  errors = 0
  readonly statuses: Record<string, number> = {}
  // coarse HDR histograms: summarising a second is O(buckets), not a sort of every latency
  readonly corrected = LatencyHistogram.coarse()
  readonly service = LatencyHistogram.coarse()
  readonly excused = LatencyHistogram.coarse()
  /** A response in this second was sent late: its excused histogram differs from the corrected one. */
  late = false

  add(other: SecondBucket): void {
    this.sent += other.sent
    this.done += other.done
    this.errors += other.errors
    for (const [k, n] of Object.entries(other.statuses)) this.statuses[k] = (this.statuses[k] ?? 0) + n
    this.corrected.add(other.corrected)
    this.service.add(other.service)
    this.excused.add(other.excused)
    this.late ||= other.late
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
      histograms: {corrected: this.corrected.encode(), service: this.service.encode(), ...(this.late ? {excused: this.excused.encode()} : {})},
    }
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

function errorClass(err: unknown): string {
  const code = (err as {code?: string} | null)?.code
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout'
  if (code === 'UND_ERR_DESTROYED' || code === 'UND_ERR_ABORTED') return 'unfinished'
  return `net_${code ?? (err as Error)?.name ?? 'error'}`
}

const defaultOk = (s: number) => s >= 200 && s < 400

/**
 * Drives the target with an open model: every request has an intended send time from the
 * arrival process and is sent then, whether or not earlier ones have answered. Latency is
 * recorded from the intended time (corrected) and from the actual send (service). When every
 * connection is busy a request waits for one (counted as queued; its corrected latency keeps
 * running). When the generator itself falls behind, requests are counted late and also recorded
 * without that lateness (the excused histogram), so the verdict can tell whether the lateness
 * could have changed it; only a hard stall (no send for longer than maxLagMs while requests were
 * due) stops the run.
 */
export async function runOpenModel(o: OpenModelOptions): Promise<OpenModelResult> {
  const connections = o.connections ?? 256
  const slackMs = o.slackMs ?? 10
  const timeoutMs = o.timeoutMs ?? 10_000
  const maxLagMs = o.maxLagMs ?? 500
  const drainMs = o.drainMs ?? timeoutMs + 1000
  const seed = o.seed ?? 1

  const base = new URL(o.baseUrl)
  const origin = base.origin
  const prefix = base.pathname.replace(/\/$/, '')
  // one keep-alive undici Client per connection, one request at a time on each: a free list
  // picks a connection in O(1) (a Pool scans its clients), and "all connections busy" is exact
  const clients: Client[] = []
  const free: Client[] = []
  const newClient = () => {
    const c = new Client(origin, {pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs})
    clients.push(c)
    return c
  }
  const takeClient = () => free.pop() ?? newClient()

  const starts = phaseStarts(o.phases)
  const ends = o.phases.map((p, i) => starts[i] + p.durationMs)
  const totalMs = o.phases.reduce((s, p) => s + p.durationMs, 0)
  // a ramping phase's target is its mean rate
  const targetOf = (p: LoadPhase) => phaseTypes(p).reduce((s, t) => s + meanRate(p, t), 0)
  const types = [...new Set(o.phases.flatMap(phaseTypes))]
  const recorders = o.phases.map(() => new Map(types.map((t) => [t, new Recorder()])))
  const allCorrected = new LatencyHistogram()
  const seconds = new Map<number, Map<string, SecondBucket>>()
  const series: SeriesPoint[] = []
  const failures: Record<string, FailureSample[]> = {}
  const random = createRandom(seed ^ 0x5bd1e995)
  const next = createSchedule(o.phases, seed)

  // the histogram records each 10 ms timer's whole interval: lag is what exceeds the resolution
  const LAG_RESOLUTION_MS = 10
  const lagMs = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS)
  const lag = monitorEventLoopDelay({resolution: LAG_RESOLUTION_MS})
  lag.enable()

  let t0 = 0
  let seq = 0
  let inFlight = 0
  let sentTotal = 0
  let lateTotal = 0
  let worstLagMs = 0
  // when the last tick ended: with requests due, the time since then is time the generator sent nothing
  let lastTickAbs = 0
  let completedTotal = 0
  let errorsTotal = 0
  let lastCompleted = 0
  let currentPhase = -1
  let pending: Arrival | null = next()
  // requests waiting for a free connection, oldest first
  const backlog: Array<Arrival & {lateMs: number}> = []
  let backlogHead = 0
  let stopped = false
  let stall: OpenModelResult['stall'] = null
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))

  const bucket = (now: number, type: string) => {
    const s = Math.floor((now - t0) / 1000)
    let m = seconds.get(s)
    if (!m) seconds.set(s, (m = new Map()))
    let b = m.get(type)
    if (!b) m.set(type, (b = new SecondBucket()))
    return b
  }

  const closeSeconds = (upTo: number) => {
    for (const s of [...seconds.keys()].sort((a, b) => a - b)) {
      if (s >= upTo) break
      const m = seconds.get(s)!
      seconds.delete(s)
      const typesPoint: Record<string, SeriesTypePoint> = {}
      const all = new SecondBucket()
      for (const [t, b] of m) {
        typesPoint[t] = b.point()
        all.add(b)
      }
      typesPoint.all = all.point()
      const pi = phaseAt(s * 1000)
      const point = {t: s, phase: o.phases[pi].name, target: targetOf(o.phases[pi]), types: typesPoint}
      series.push(point)
      o.onSecond?.(point)
    }
  }

  const phaseAt = (ms: number) => {
    let i = 0
    while (i + 1 < starts.length && ms >= starts[i + 1]) i++
    return i
  }

  /** lateMs: how long after its intended time the generator got to it (0 when on time). */
  const send = (a: Arrival, intendedAbs: number, lateMs: number) => {
    const rec = recorders[a.phase].get(a.type)!
    const phase = o.phases[a.phase]
    let spec: HttpRequestSpec
    try {
      spec = o.builders[a.type]({type: a.type, phase: phase.name, seq: seq++, intendedMs: a.t, random})
    } catch (err) {
      rec.sent++
      rec.error('builder')
      errorsTotal++
      return
    }
    inFlight++
    sentTotal++
    rec.sent++
    const sentAt = performance.now()
    // sends that slipped past the phase's end (queued behind busy connections) do not count
    // toward its achieved rate: the target did not get that rate during the phase
    if (sentAt - t0 <= ends[a.phase] + slackMs) rec.sentInPhase++
    bucket(sentAt, a.type).sent++
    let body: string | undefined
    let headers = spec.headers
    if (spec.body !== undefined) {
      body = typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body)
      if (typeof spec.body !== 'string') headers = {'content-type': 'application/json', ...headers}
    }
    let status = 0
    let chunks: Buffer[] | null = spec.onResponse ? [] : null
    const ok = spec.ok ?? defaultOk
    // a failing answer's body is kept (the first few per type) to show what the errors said
    const keepFailure = () => (failures[a.type] ??= []).length < FAILURES_KEPT_PER_TYPE
    const recordFailure = (what: number | string, text: string) => {
      if (keepFailure()) failures[a.type].push({t: round3((performance.now() - t0) / 1000), status: what, body: text.slice(0, FAILURE_BODY_CHARS)})
    }
    const done = (err: unknown) => {
      const end = performance.now()
      inFlight--
      free.push(client)
      const b = bucket(end, a.type)
      b.done++
      if (err === null) {
        rec.completed++
        completedTotal++
        rec.statuses[status] = (rec.statuses[status] ?? 0) + 1
        b.statuses[status] = (b.statuses[status] ?? 0) + 1
        const corrected = end - intendedAbs
        const service = end - sentAt
        rec.corrected.recordMs(corrected)
        rec.service.recordMs(service)
        rec.excused.recordMs(corrected - lateMs)
        allCorrected.recordMs(corrected)
        b.corrected.recordMs(corrected)
        b.service.recordMs(service)
        b.excused.recordMs(corrected - lateMs)
        if (lateMs > 0) b.late = true
        const body = chunks ? Buffer.concat(chunks).toString('utf8') : ''
        if (ok(status)) rec.ok++
        else {
          rec.error(`http_${status}`)
          b.errors++
          errorsTotal++
          recordFailure(status, body)
        }
        if (spec.onResponse) {
          try {
            spec.onResponse(status, body)
          } catch {
            // a builder's response hook must not stop the run
          }
        }
      } else {
        const cls = errorClass(err)
        rec.error(cls)
        b.errors++
        errorsTotal++
        recordFailure(cls, (err as Error)?.message ?? '')
      }
      pump()
    }
    const client = takeClient()
    // the callback-style handler: Client.dispatch takes it as is (no per-response header parsing)
    const handler: Dispatcher.DispatchHandler = {
      onConnect() {},
      onHeaders(statusCode) {
        status = statusCode
        if (!chunks && !ok(status) && keepFailure()) chunks = []
        return true
      },
      onData(chunk) {
        chunks?.push(chunk)
        return true
      },
      onComplete() {
        done(null)
      },
      onError(err) {
        done(err)
      },
    }
    client.dispatch({origin, method: (spec.method ?? 'GET') as Dispatcher.HttpMethod, path: prefix + spec.path, headers, body}, handler)
  }

  /** Sends queued requests while connections are free; ends the run when all is done. */
  const pump = () => {
    while (!stopped && backlogHead < backlog.length && inFlight < connections) {
      const a = backlog[backlogHead]
      backlog[backlogHead++] = undefined as unknown as Arrival & {lateMs: number}
      send(a, t0 + a.t, a.lateMs)
    }
    if (backlogHead > 4096 && backlogHead * 2 > backlog.length) {
      backlog.splice(0, backlogHead)
      backlogHead = 0
    }
    if (inFlight === 0 && (stopped || (pending === null && backlogHead >= backlog.length))) finish()
  }

  let timer: NodeJS.Timeout | undefined
  const tick = () => {
    timer = undefined
    if (stopped) return pump()
    const nowAbs = performance.now()
    const now = nowAbs - t0
    while (currentPhase + 1 < o.phases.length && now >= starts[currentPhase + 1]) {
      const p = o.phases[++currentPhase]
      o.onPhase?.({index: currentPhase, name: p.name, startMs: starts[currentPhase], durationMs: p.durationMs, targetRate: targetOf(p)})
    }
    if (pending !== null && pending.t <= now) {
      const idleMs = nowAbs - Math.max(t0 + pending.t, lastTickAbs)
      if (idleMs > maxLagMs) {
        worstLagMs = Math.max(worstLagMs, now - pending.t)
        stall = {reason: `the generator sent nothing for ${idleMs.toFixed(0)} ms while requests were due (budget ${maxLagMs} ms)`, detail: {stalledMs: idleMs, budgetMs: maxLagMs, atMs: now}}
        return stop('void')
      }
    }
    // a bounded batch, so responses get handled even when far behind
    let n = 0
    while (pending !== null && pending.t <= now && n++ < 2000) {
      const a = pending
      pending = next()
      const rec = recorders[a.phase].get(a.type)!
      rec.scheduled++
      const lagMs = now - a.t
      if (lagMs > worstLagMs) worstLagMs = lagMs
      const lateMs = lagMs > slackMs ? lagMs : 0
      if (lateMs) {
        rec.late++
        lateTotal++
      }
      if (inFlight < connections && backlogHead >= backlog.length) send(a, t0 + a.t, lateMs)
      else {
        rec.queued++
        backlog.push({...a, lateMs})
      }
    }
    lastTickAbs = performance.now()
    if (pending === null) return pump()
    // a timer rather than a setImmediate spin: ~1 ms of send jitter (it counts in the corrected
    // latency) costs far less than a core spinning against the requests' own I/O
    timer = setTimeout(tick, Math.max(0, Math.floor(pending.t - (performance.now() - t0))))
  }

  // the schedule's end plus time to drain; whatever is still queued then was never sent
  let endByMs = totalMs + drainMs
  const stop = (why: 'void' | 'abort') => {
    if (stopped) return
    stopped = true
    endByMs = Math.min(endByMs, performance.now() - t0 + Math.min(drainMs, 2000))
    if (why === 'abort') aborted = true
    if (timer) clearTimeout(timer)
    pump()
  }
  let aborted = false
  const onAbort = () => stop('abort')
  o.signal?.addEventListener('abort', onAbort, {once: true})

  await warmup(Array.from({length: o.warmupConnections ?? Math.min(connections, 16)}, newClient), prefix)
  free.push(...clients)
  t0 = performance.now()
  lastTickAbs = t0
  lag.reset()
  const elu = performance.eventLoopUtilization()
  const starve = o.testStarve ? setInterval(() => busyLoop(o.testStarve!.forMs), o.testStarve.everyMs) : undefined
  const progress = setInterval(() => {
    const now = performance.now()
    const elapsed = now - t0
    closeSeconds(Math.floor(elapsed / 1000))
    const pi = phaseAt(elapsed)
    o.onProgress?.({
      elapsedMs: Math.round(elapsed),
      totalMs,
      phase: o.phases[pi].name,
      targetRate: targetOf(o.phases[pi]),
      rate: completedTotal - lastCompleted,
      sent: sentTotal,
      completed: completedTotal,
      errors: errorsTotal,
      late: lateTotal,
      inFlight,
      p99Ms: allCorrected.percentileMs(99),
    })
    lastCompleted = completedTotal
  }, 1000)

  tick()
  const deadline = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (performance.now() - t0 > endByMs) {
        clearInterval(check)
        resolve()
      }
    }, 100)
    void finished.then(() => clearInterval(check))
  })
  await Promise.race([finished, deadline])
  stopped = true
  if (timer) clearTimeout(timer)
  clearInterval(progress)
  clearInterval(starve)
  o.signal?.removeEventListener('abort', onAbort)
  const durationMs = performance.now() - t0
  const cpu = performance.eventLoopUtilization(elu).utilization
  lag.disable()

  // requests never sent: still queued, or never reached because the run stopped early
  for (let i = backlogHead; i < backlog.length; i++) recorders[backlog[i].phase].get(backlog[i].type)!.unsent++
  if (aborted || stall) {
    for (let a = pending; a !== null; a = next()) {
      const rec = recorders[a.phase].get(a.type)!
      rec.scheduled++
      rec.unsent++
    }
  }
  await Promise.all(clients.map((c) => c.destroy().catch(() => {})))
  closeSeconds(Number.POSITIVE_INFINITY)

  const phases: PhaseResult[] = o.phases.map((p, i) => ({
    name: p.name,
    index: i,
    startMs: starts[i],
    durationMs: p.durationMs,
    arrival: p.arrival,
    requests: Object.fromEntries([...recorders[i]].filter(([t]) => phaseTypes(p).includes(t)).map(([t, r]) => [t, r.stats(meanRate(p, t), p.durationMs)])),
  }))
  const scheduledTotal = phases.reduce((s, p) => s + Object.values(p.requests).reduce((x, r) => x + r.scheduled, 0), 0)
  return {
    phases,
    series,
    durationMs,
    eventLoopLag: {p50: lagMs(lag.percentile(50)), p99: lagMs(lag.percentile(99)), max: lagMs(lag.max)},
    late: lateTotal,
    lateFraction: scheduledTotal > 0 ? lateTotal / scheduledTotal : 0,
    worstLagMs,
    cpu,
    stall,
    aborted,
    failures,
  }
}

function warmup(clients: Client[], prefix: string): Promise<unknown> {
  return Promise.all(
    clients.map((c) =>
      c
        // reset: false keeps the connection open after HEAD (undici closes it by default)
        .request({method: 'HEAD', path: prefix + '/', reset: false})
        .then((r) => r.body.dump())
        .catch(() => {}),
    ),
  )
}

/** Keeps the thread busy for ms: a real stall of the generator's own event loop (testStarve). */
function busyLoop(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // burn the thread on purpose
  }
}
