import {monitorEventLoopDelay, performance} from 'node:perf_hooks'
import {createRandom} from '../../../core/random.js'
import type {PhaseResult} from '../../metrics/result.js'
import {createSchedule, meanRate, phaseStarts, phaseTypes, type Arrival, type LoadPhase} from '../../load/arrivals.js'
import {Failures, Recorder, Series, errorClass, type SecondBucket} from './recorder.js'
import {Fifo} from './fifo.js'
import {Connections, Exchange} from './sender.js'
import type {HttpRequestSpec, OpenModelOptions, OpenModelResult} from './types.js'

export type {HttpRequestSpec, OpenModelOptions, OpenModelResult, PhaseEvent, RequestBuilder, RequestContext, RunProgress} from './types.js'

const defaultOk = (s: number) => s >= 200 && s < 400

// the histogram records each 10 ms timer's whole interval: lag is what exceeds the resolution
const LAG_RESOLUTION_MS = 10
/** Arrivals handled per tick at most, so responses get handled even when the generator is far behind. */
const TICK_BATCH = 2000
/** Compact the backlog once this many sent entries lead it (and they are over half of it). */
const BACKLOG_COMPACT_AT = 4096
/** How often the stop deadline is checked, ms. */
const DEADLINE_CHECK_MS = 100
/** A stopped run (void or aborted) waits at most this long for requests in flight. */
const STOPPED_DRAIN_MS = 2000

/** A request waiting for a free connection, with how late the generator got to it. */
type Queued = Arrival & {lateMs: number}

/**
 * Drives the target with an open model: every request has an intended send time from the
 * arrival process and is sent then, whether or not earlier ones have answered. Latency is
 * recorded from the intended time (corrected) and from the actual send (service). When every
 * connection is busy a request waits for one (counted as queued; its corrected latency keeps
 * running). When the generator itself falls behind, requests are counted late and also recorded
 * without that lateness (the excused histogram), so the verdict can tell whether the lateness
 * could have changed it; only a hard stall (no send for longer than maxLagMs while requests were
 * due) stops the run.
 *
 * The parts: the schedule (load/arrivals.ts) says when; sender.ts holds the connections and puts
 * requests on the wire; recorder.ts counts and keeps the histograms and the per-second series;
 * this file is the loop between them (tick: send what is due; pump: send what waited for a connection).
 */
export async function runOpenModel(o: OpenModelOptions): Promise<OpenModelResult> {
  const connections = o.connections ?? 256
  const slackMs = o.slackMs ?? 10
  const timeoutMs = o.timeoutMs ?? 10_000
  const maxLagMs = o.maxLagMs ?? 500
  const drainMs = o.drainMs ?? timeoutMs + 1000
  const seed = o.seed ?? 1

  const wire = new Connections(o.baseUrl, {timeoutMs})
  const starts = phaseStarts(o.phases)
  const ends = o.phases.map((p, i) => starts[i] + p.durationMs)
  const totalMs = o.phases.reduce((s, p) => s + p.durationMs, 0)
  // a ramping phase's target is its mean rate
  const targetOf = (p: LoadPhase) => phaseTypes(p).reduce((s, t) => s + meanRate(p, t), 0)
  const phaseAt = (ms: number) => {
    let i = 0
    while (i + 1 < starts.length && ms >= starts[i + 1]) i++
    return i
  }
  const types = [...new Set(o.phases.flatMap(phaseTypes))]
  const typeIndex = new Map(types.map((t, i) => [t, i]))
  const builders = types.map((t) => o.builders[t])
  // recorders[phase][type index]
  const recorders = o.phases.map(() => types.map(() => new Recorder()))
  const recorderOf = (a: Arrival) => recorders[a.phase][typeIndex.get(a.type)!]
  const series = new Series(
    types,
    (ms) => {
      const p = o.phases[phaseAt(ms)]
      return {phase: p.name, target: targetOf(p)}
    },
    o.onSecond,
  )
  const failures = new Failures()
  const random = createRandom(seed ^ 0x5bd1e995)
  const next = createSchedule(o.phases, seed)

  const lagMs = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS)
  const lag = monitorEventLoopDelay({resolution: LAG_RESOLUTION_MS})
  lag.enable()

  let t0 = 0
  let seq = 0
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
  const backlog = new Fifo<Queued>(BACKLOG_COMPACT_AT)
  let stopped = false
  let aborted = false
  let stall: OpenModelResult['stall'] = null
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))

  /** One request in flight: what its answer is recorded against. */
  class InFlight extends Exchange {
    constructor(
      readonly type: string,
      readonly typeIdx: number,
      readonly rec: Recorder,
      readonly spec: HttpRequestSpec,
      readonly intendedAbs: number,
      readonly sentAt: number,
      /** How long after its intended time the generator got to it (0 when on time). */
      readonly lateMs: number,
    ) {
      super()
      if (spec.onResponse) this.chunks = []
    }

    protected wantsBody(status: number): boolean {
      // a failing answer's body is kept (the first few per type) to show what the errors said
      return !(this.spec.ok ?? defaultOk)(status) && failures.wanted(this.type)
    }

    finished(err: Error | null): void {
      const end = performance.now()
      const b: SecondBucket = series.bucket(end - t0, this.typeIdx)
      const rec = this.rec
      b.done++
      if (err === null) {
        const status = this.status
        completedTotal++
        const corrected = end - this.intendedAbs
        const service = end - this.sentAt
        rec.answer(status, corrected, service, this.lateMs)
        b.answer(status, corrected, service, this.lateMs)
        const spec = this.spec
        if ((spec.ok ?? defaultOk)(status)) rec.ok++
        else {
          rec.error(`http_${status}`)
          b.errors++
          errorsTotal++
          if (failures.wanted(this.type)) failures.add(this.type, (end - t0) / 1000, status, this.body())
        }
        if (spec.onResponse) {
          try {
            spec.onResponse(status, this.body())
          } catch {
            // a builder's response hook must not stop the run
          }
        }
      } else {
        const cls = errorClass(err)
        rec.error(cls)
        b.errors++
        errorsTotal++
        failures.add(this.type, (end - t0) / 1000, cls, err?.message ?? '')
      }
      pump()
    }
  }

  /** lateMs: how long after its intended time the generator got to it (0 when on time). */
  const send = (a: Arrival, lateMs: number) => {
    const typeIdx = typeIndex.get(a.type)!
    const rec = recorders[a.phase][typeIdx]
    let spec: HttpRequestSpec
    try {
      spec = builders[typeIdx]({type: a.type, phase: o.phases[a.phase].name, seq: seq++, intendedMs: a.t, random})
    } catch {
      rec.sent++
      rec.error('builder')
      errorsTotal++
      return
    }
    sentTotal++
    rec.sent++
    const sentAt = performance.now()
    // sends that slipped past the phase's end (queued behind busy connections) do not count
    // toward its achieved rate: the target did not get that rate during the phase
    if (sentAt - t0 <= ends[a.phase] + slackMs) rec.sentInPhase++
    series.bucket(sentAt - t0, typeIdx).sent++
    let body: string | undefined
    let headers = spec.headers
    if (spec.body !== undefined) {
      body = typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body)
      if (typeof spec.body !== 'string') headers = {'content-type': 'application/json', ...headers}
    }
    wire.dispatch(new InFlight(a.type, typeIdx, rec, spec, t0 + a.t, sentAt, lateMs), spec.method ?? 'GET', spec.path, headers, body)
  }

  /** Sends queued requests while connections are free; ends the run when all is done. */
  const pump = () => {
    while (!stopped && backlog.size > 0 && wire.inUse < connections) {
      const q = backlog.shift()!
      send(q, q.lateMs)
    }
    if (wire.inUse === 0 && (stopped || (pending === null && backlog.size === 0))) finish()
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
    let n = 0
    while (pending !== null && pending.t <= now && n++ < TICK_BATCH) {
      const a = pending
      pending = next()
      const rec = recorderOf(a)
      rec.scheduled++
      const lagMs = now - a.t
      if (lagMs > worstLagMs) worstLagMs = lagMs
      const lateMs = lagMs > slackMs ? lagMs : 0
      if (lateMs) {
        rec.late++
        lateTotal++
      }
      if (wire.inUse < connections && backlog.size === 0) send(a, lateMs)
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
  // when the schedule was cut short (a stall, an abort): ms from the run's start
  let stoppedAtMs: number | null = null
  const stop = (why: 'void' | 'abort') => {
    if (stopped) return
    stopped = true
    stoppedAtMs = performance.now() - t0
    endByMs = Math.min(endByMs, stoppedAtMs + Math.min(drainMs, STOPPED_DRAIN_MS))
    if (why === 'abort') aborted = true
    if (timer) clearTimeout(timer)
    pump()
  }
  const onAbort = () => stop('abort')
  o.signal?.addEventListener('abort', onAbort, {once: true})

  // a second of the peak rate: what a target answering within a second keeps in flight (more
  // open on demand, and small runs do not open hundreds)
  const peakRate = Math.max(0, ...o.phases.map(targetOf))
  await wire.warmup(o.warmupConnections ?? Math.min(connections, Math.ceil(peakRate)))
  t0 = performance.now()
  lastTickAbs = t0
  lag.reset()
  const elu = performance.eventLoopUtilization()
  const starve = o.testStarve ? setInterval(() => busyLoop(o.testStarve!.forMs), o.testStarve.everyMs) : undefined
  const progress = setInterval(() => {
    const elapsed = performance.now() - t0
    series.close(Math.floor(elapsed / 1000))
    const p = o.phases[phaseAt(elapsed)]
    o.onProgress?.({
      elapsedMs: Math.round(elapsed),
      totalMs,
      phase: p.name,
      targetRate: targetOf(p),
      rate: completedTotal - lastCompleted,
      sent: sentTotal,
      completed: completedTotal,
      errors: errorsTotal,
      late: lateTotal,
      inFlight: wire.inUse,
      p99Ms: series.closedCorrected.percentileMs(99),
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
    }, DEADLINE_CHECK_MS)
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

  // requests never sent: still queued when the run ended (failed: they were due), or not yet due
  // when it stopped early — failed after a stall, skipped when it was stopped on purpose
  for (const q of backlog) recorderOf(q).unsent++
  if (aborted || stall) {
    for (let a = pending; a !== null; a = next()) {
      const rec = recorderOf(a)
      rec.scheduled++
      if (stall) rec.unsent++
      else rec.skipped++
    }
  }
  await wire.close()
  series.close(Number.POSITIVE_INFINITY)

  const phases: PhaseResult[] = o.phases.map((p, i) => {
    const own = phaseTypes(p)
    // a run stopped early offered each phase only the part it ran: rates are over that
    const ranMs = stoppedAtMs === null || stoppedAtMs >= starts[i] + p.durationMs ? undefined : Math.max(0, stoppedAtMs - starts[i])
    return {
      name: p.name,
      index: i,
      startMs: starts[i],
      durationMs: p.durationMs,
      ...(ranMs !== undefined ? {ranMs} : {}),
      arrival: p.arrival,
      requests: Object.fromEntries(types.flatMap((t, ti) => (own.includes(t) ? [[t, recorders[i][ti].stats(meanRate(p, t), ranMs ?? p.durationMs)]] : []))),
    }
  })
  const scheduledTotal = phases.reduce((s, p) => s + Object.values(p.requests).reduce((x, r) => x + r.scheduled, 0), 0)
  return {
    phases,
    series: series.points,
    durationMs,
    eventLoopLag: {p50: lagMs(lag.percentile(50)), p99: lagMs(lag.percentile(99)), max: lagMs(lag.max)},
    late: lateTotal,
    lateFraction: scheduledTotal > 0 ? lateTotal / scheduledTotal : 0,
    worstLagMs,
    cpu,
    stall,
    aborted,
    failures: failures.byType,
  }
}

/** Keeps the thread busy for ms: a real stall of the generator's own event loop (testStarve). */
function busyLoop(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // burn the thread on purpose
  }
}
