/**
 * CPU accounting per component of a run, read from Linux /proc once per interval:
 *
 *   generator   a worker thread of this process: /proc/<pid>/task/<tid>/stat, the tid found inside
 *               the thread with currentThreadId() (Node 20 names every thread "node", so a thread
 *               cannot be found by name, and process.cpuUsage() in a worker counts the whole process)
 *   server      this process except the generator's thread(s), or `serve` pids and their children
 *   database    the embedded postmaster and all its descendants (backends started during the run too)
 *   machine     /proc/stat: busy cores and the idle share
 *
 * A component that cannot be measured (a database on another host, a platform without /proc) is
 * reported as not measured (null), never as 0.
 *
 * Figures are "cores": CPU-seconds used per second of wall time (1.0 = one core fully busy).
 * Resolution is one clock tick (10 ms of CPU), so 0.01 core per one-second interval.
 */
import {existsSync, readdirSync, readFileSync, readlinkSync} from 'node:fs'

/** What to measure as one component. */
export type CpuSource =
  /** Processes, by default with every descendant (children started during the run included). */
  | {kind: 'processes'; pids: number[]; tree?: boolean; excludeThreads?: number[]}
  /** One thread (of this process unless pid is given). */
  | {kind: 'thread'; tid: number; pid?: number}
  /** Cannot be measured from here; `reason` is shown instead of a figure. */
  | {kind: 'unmeasured'; reason: string}

/** The component name the machine's own figures use; no source may take it. */
export const MACHINE = 'machine'

export interface ComponentCpu {
  /** null when not measured. */
  cpuSeconds: number | null
  /** cpuSeconds over the sampled wall time. */
  meanCores: number | null
  /** The busiest interval's cores. */
  peakCores: number | null
  /** Cores used in each interval (same length as CpuReport.t); null when not measured. */
  series: number[] | null
  /** Why it is not measured (or was only partly, e.g. the process ended), else absent. */
  note?: string
}

export interface MachineCpu {
  /** Logical CPUs in /proc/stat. */
  cores: number
  /** Cores busy (not idle, not iowait) over the whole sampling. */
  meanBusyCores: number
  /** Share of the machine's CPU time spent idle (idle + iowait), 0–1. */
  idleShare: number
  busySeries: number[]
  idleShareSeries: number[]
  /**
   * Cores the hypervisor gave to something else while this machine wanted them (/proc/stat's
   * steal), counted in busy. On a shared virtual machine this is the host's load showing through:
   * a run with steal measured a slower machine. Absent in older run files.
   */
  meanStealCores?: number
  stealSeries?: number[]
}

export interface CpuReport {
  intervalMs: number
  startedAt: string
  /** Wall time sampled, s. */
  durationS: number
  /** End of each interval, seconds since the sampler started. */
  t: number[]
  components: Record<string, ComponentCpu>
  /** null when /proc/stat cannot be read (not Linux). */
  machine: MachineCpu | null
}

export interface CpuSampler {
  /** Takes a last sample, stops, and returns the report. Calling it again returns the same report. */
  stop(): CpuReport
}

export interface CpuSamplerOptions {
  /** Sampling interval in ms. Default 1000. */
  intervalMs?: number
  /** Where /proc is; tests point it elsewhere. Default "/proc". */
  proc?: string
}

const DEFAULT_INTERVAL_MS = 1000
/**
 * USER_HZ: the unit of utime/stime in /proc, fixed at 100 in the kernel's ABI on every
 * architecture Node runs on (sysconf(_SC_CLK_TCK) reports it; Node has no binding for it).
 */
const TICKS_PER_SECOND = 100

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces and parentheses. */
export interface ProcStat {
  state: string
  ppid: number
  /** utime + stime of this task (a process: of all its threads, ended ones included), ticks. */
  ownTicks: number
  /** cutime + cstime: children that ended and were waited for, ticks. */
  childTicks: number
  /** Start time after boot, ticks: tells a reused pid from the process seen before. */
  startTicks: number
  threads: number
}

export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')')
  if (close < 0) return null
  // after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime … starttime(22nd field overall)
  const f = text.slice(close + 2).trim().split(/\s+/)
  const n = (i: number) => Number(f[i])
  if (f.length < 20) return null
  return {state: f[0], ppid: n(1), ownTicks: n(11) + n(12), childTicks: n(13) + n(14), startTicks: n(19), threads: n(17)}
}

/** /proc/stat's first line → total, idle and steal ticks of the whole machine. */
export function parseMachineStat(text: string): {total: number; idle: number; steal: number; cores: number} | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (!line) return null
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in user/nice
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0)
  const cores = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length
  return {total, idle: (v[3] || 0) + (v[4] || 0), steal: v[7] || 0, cores}
}

/**
 * The OS thread id of the calling thread, or null without /proc. Call it inside a worker thread and
 * post the answer to the main thread: a synchronous fs call runs on the calling thread, so
 * /proc/thread-self names that thread (an asynchronous one would name a libuv pool thread).
 */
export function currentThreadId(proc = '/proc'): number | null {
  try {
    // "<pid>/task/<tid>"
    const tid = Number(readlinkSync(`${proc}/thread-self`).split('/').pop())
    return Number.isInteger(tid) && tid > 0 ? tid : null
  } catch {
    return null
  }
}

/** Source constructors, so callers need not spell the union. */
export const cpuSource = {
  /** A process and, unless tree is false, all its descendants. */
  processTree: (pid: number, tree = true): CpuSource => ({kind: 'processes', pids: [pid], tree}),
  /** Several processes (e.g. `serve` workers) with their descendants. */
  processes: (pids: number[]): CpuSource => ({kind: 'processes', pids, tree: true}),
  /** This process without the given threads (the in-process server without the generator's thread). */
  selfExcept: (tids: number[]): CpuSource => ({kind: 'processes', pids: [process.pid], tree: false, excludeThreads: tids}),
  thread: (tid: number, pid?: number): CpuSource => ({kind: 'thread', tid, pid}),
  unmeasured: (reason: string): CpuSource => ({kind: 'unmeasured', reason}),
}

export interface StackCpuOptions {
  /** The generator thread's tid (currentThreadId() posted from inside it); null: not measured. */
  generatorTid: number | null
  /** `self`: the in-process server is this process without the generator's thread; pids: `serve` processes (with their children); null: a --target deployment, not measured. */
  server: 'self' | number[] | null
  /** The embedded cluster's postmasterPid(); null: an external database, not measured. */
  postmasterPid: number | null
}

/** The three components of a run (generator, server, database), each measured where it can be. */
export function stackCpuSources(o: StackCpuOptions): Record<string, CpuSource> {
  return {
    generator: o.generatorTid === null ? cpuSource.unmeasured('the generator thread did not report its thread id') : cpuSource.thread(o.generatorTid),
    server:
      o.server === null
        ? cpuSource.unmeasured('a --target deployment: not measured from here')
        : o.server === 'self'
          ? cpuSource.selfExcept(o.generatorTid === null ? [] : [o.generatorTid])
          : cpuSource.processes(o.server),
    database: o.postmasterPid === null ? cpuSource.unmeasured('an external database: not measured') : cpuSource.processTree(o.postmasterPid),
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/** A cumulative CPU counter of one component, in ticks (1/100 s); read() is null when nothing of it can be read. */
export interface Counter {
  read(): number | null
  note(): string | undefined
}

/**
 * A process tree's CPU as one monotonic counter. Each tracked process counts its own ticks and
 * those of children it reaped (cutime); a child that ends moves its ticks into its parent's
 * cutime, so the sum stays whole. A tracked process that ends without a tracked parent to reap it
 * (the root itself, or one reparented away) keeps its last-seen ticks in `departed`.
 */
function treeCounter(proc: string, roots: number[], tree: boolean, excludeThreads: number[]): Counter {
  /** Tracked processes by pid, with the start time that tells a reused pid from the one seen. */
  let seen = new Map<number, {startTicks: number; ppid: number; ticks: number}>()
  const rootStarts = new Map<number, number>()
  const excluded = new Map<number, number>()
  let departed = 0
  let missingThread = false

  const children = (pid: number, threads: number): number[] => {
    const out: number[] = []
    // a single-threaded process (a Postgres backend) has one task, its own: no directory listing
    let tasks: string[] = [String(pid)]
    if (threads > 1) {
      try {
        tasks = readdirSync(`${proc}/${pid}/task`)
      } catch {
        return out
      }
    }
    // fork() records the child under the thread that forked: read every thread's list
    for (const tid of tasks) {
      const text = readText(`${proc}/${pid}/task/${tid}/children`)
      if (text) for (const c of text.trim().split(/\s+/)) if (c) out.push(Number(c))
    }
    return out
  }

  return {
    read() {
      const first = rootStarts.size === 0 && seen.size === 0
      const now = new Map<number, {startTicks: number; ppid: number; ticks: number}>()
      // roots and every process seen before (one reparented out of the tree is still followed);
      // a child found under a tracked process is new and taken as it is
      const queue: Array<{pid: number; start?: number}> = [
        ...roots.map((pid) => ({pid, start: rootStarts.get(pid)})),
        ...[...seen].map(([pid, s]) => ({pid, start: s.startTicks})),
      ]
      while (queue.length) {
        const {pid, start} = queue.pop()!
        if (now.has(pid)) continue
        const text = readText(`${proc}/${pid}/stat`)
        const st = text && parseProcStat(text)
        // gone, or the pid now belongs to an unrelated process
        if (!st || (start !== undefined && st.startTicks !== start)) continue
        if (first && roots.includes(pid)) rootStarts.set(pid, st.startTicks)
        now.set(pid, {startTicks: st.startTicks, ppid: st.ppid, ticks: st.ownTicks + st.childTicks})
        if (tree) for (const c of children(pid, st.threads)) if (!now.has(c)) queue.push({pid: c})
      }
      for (const [pid, last] of seen) {
        if (now.get(pid)?.startTicks === last.startTicks) continue
        // reaped by a tracked parent still alive: its ticks moved into that parent's cutime
        if (!now.has(last.ppid)) departed += last.ticks
      }
      seen = now
      if (now.size === 0 && first) return null
      let ticks = departed
      for (const v of now.values()) ticks += v.ticks
      for (const tid of excludeThreads) {
        const text = readText(`${proc}/${roots[0]}/task/${tid}/stat`)
        const st = text && parseProcStat(text)
        // an ended thread's ticks stay in its process's total: keep subtracting its last reading
        if (st) excluded.set(tid, st.ownTicks)
        else if (!excluded.has(tid)) missingThread = true
      }
      for (const v of excluded.values()) ticks -= v
      return ticks
    },
    note() {
      if (missingThread) return 'a thread to leave out could not be read; its CPU may be counted here'
      if (roots.every((pid) => !seen.has(pid))) return 'the process ended during the run; its CPU is counted up to its last sample'
      return undefined
    },
  }
}

function threadCounter(proc: string, pid: number, tid: number): Counter {
  let last: number | null = null
  let ended = false
  return {
    read() {
      const text = readText(`${proc}/${pid}/task/${tid}/stat`)
      const st = text && parseProcStat(text)
      if (st) last = st.ownTicks
      else if (last !== null) ended = true
      return last
    },
    note: () => (ended ? 'the thread ended during the run; its CPU is counted up to its last sample' : undefined),
  }
}

/** The counter startCpuSampler reads for a measurable source (exported for tests on a fake /proc). */
export function cpuCounter(source: Exclude<CpuSource, {kind: 'unmeasured'}>, proc = '/proc'): Counter {
  return source.kind === 'thread' ? threadCounter(proc, source.pid ?? process.pid, source.tid) : treeCounter(proc, source.pids, source.tree ?? true, source.excludeThreads ?? [])
}

interface Track {
  counter: Counter | null
  reason?: string
  base: number | null
  prev: number | null
  series: number[]
}

/**
 * Starts sampling now; `stop()` returns the report. Sources that cannot be read at the start
 * (no /proc, a pid that does not exist) are reported as not measured with the reason.
 */
export function startCpuSampler(components: Record<string, CpuSource>, opts: CpuSamplerOptions = {}): CpuSampler {
  if (MACHINE in components) throw new RangeError(`"${MACHINE}" is reserved for the machine's own figures`)
  const proc = opts.proc ?? '/proc'
  const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS
  const onLinux = process.platform === 'linux' && existsSync(`${proc}/stat`)
  const startedAt = new Date().toISOString()
  const t0 = performance.now()

  const tracks = new Map<string, Track>()
  for (const [name, src] of Object.entries(components)) {
    let counter: Counter | null = null
    let reason: string | undefined
    if (src.kind === 'unmeasured') reason = src.reason
    else if (!onLinux) reason = `not measured on ${process.platform} (needs Linux /proc)`
    else counter = cpuCounter(src, proc)
    const base = counter?.read() ?? null
    if (counter && base === null) {
      reason = src.kind === 'thread' ? `thread ${src.tid} not found in ${proc}` : src.kind === 'processes' ? `process ${src.pids.join(', ')} not found in ${proc}` : undefined
      counter = null
    }
    tracks.set(name, {counter, reason, base, prev: base, series: []})
  }

  const readMachine = () => (onLinux ? parseMachineStat(readText(`${proc}/stat`) ?? '') : null)
  const machineBase = readMachine()
  let machinePrev = machineBase
  const busySeries: number[] = []
  const idleSeries: number[] = []
  const stealSeries: number[] = []
  const t: number[] = []
  let prevAt = t0

  const sample = () => {
    const at = performance.now()
    const wallS = (at - prevAt) / 1000
    // two samples in the same millisecond (stop right after a tick) add nothing worth a point
    if (wallS < 0.001) return
    prevAt = at
    t.push(Number(((at - t0) / 1000).toFixed(3)))
    for (const track of tracks.values()) {
      if (!track.counter) continue
      const now = track.counter.read() ?? track.prev!
      // a counter can only go back through a race between reading a child and its parent: clamp
      const delta = Math.max(0, now - track.prev!)
      track.series.push(round(delta / TICKS_PER_SECOND / wallS))
      track.prev = Math.max(now, track.prev!)
    }
    const m = readMachine()
    if (m && machinePrev) {
      const total = m.total - machinePrev.total
      const idle = m.idle - machinePrev.idle
      idleSeries.push(total > 0 ? round(idle / total) : 1)
      busySeries.push(round((total - idle) / TICKS_PER_SECOND / wallS))
      stealSeries.push(round((m.steal - machinePrev.steal) / TICKS_PER_SECOND / wallS))
      machinePrev = m
    }
  }

  const timer = setInterval(sample, intervalMs)
  // sampling must never keep a finished command alive
  timer.unref()
  let report: CpuReport | null = null

  return {
    stop() {
      if (report) return report
      clearInterval(timer)
      sample()
      const durationS = (prevAt - t0) / 1000
      const out: Record<string, ComponentCpu> = {}
      for (const [name, track] of tracks) {
        if (!track.counter) {
          out[name] = {cpuSeconds: null, meanCores: null, peakCores: null, series: null, note: track.reason}
          continue
        }
        const cpuSeconds = round((track.prev! - track.base!) / TICKS_PER_SECOND)
        const note = track.counter.note()
        out[name] = {
          cpuSeconds,
          meanCores: durationS > 0 ? round(cpuSeconds / durationS) : 0,
          peakCores: track.series.length ? Math.max(...track.series) : 0,
          series: track.series,
          ...(note ? {note} : {}),
        }
      }
      let machine: MachineCpu | null = null
      if (machineBase && machinePrev) {
        const total = machinePrev.total - machineBase.total
        const idle = machinePrev.idle - machineBase.idle
        machine = {
          cores: machineBase.cores,
          meanBusyCores: durationS > 0 ? round((total - idle) / TICKS_PER_SECOND / durationS) : 0,
          idleShare: total > 0 ? round(idle / total) : 1,
          busySeries,
          idleShareSeries: idleSeries,
          meanStealCores: durationS > 0 ? round((machinePrev.steal - machineBase.steal) / TICKS_PER_SECOND / durationS) : 0,
          stealSeries,
        }
      }
      report = {intervalMs, startedAt, durationS: round(durationS), t, components: out, machine}
      return report
    },
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000

/**
 * CPU-seconds each component spent per 1,000 requests of the mix (null: not measured, or no
 * requests), plus `machine`: the whole machine's busy CPU-seconds per 1,000 requests.
 */
export function cpuPer1000Requests(report: CpuReport, requests: number): Record<string, number | null> {
  const per = (cpuSeconds: number | null) => (cpuSeconds === null || !(requests > 0) ? null : round((cpuSeconds / requests) * 1000))
  const out: Record<string, number | null> = {}
  for (const [name, c] of Object.entries(report.components)) out[name] = per(c.cpuSeconds)
  out[MACHINE] = report.machine ? per(report.machine.meanBusyCores * report.durationS) : null
  return out
}

/** A process's parent pid from /proc (the postmaster of a Postgres backend), or null when it is not on this machine. */
export function parentPid(pid: number, proc = '/proc'): number | null {
  const text = readText(`${proc}/${pid}/stat`)
  const stat = text === null ? null : parseProcStat(text)
  return stat ? stat.ppid : null
}

/** Where a run that started at `startedAt` (ISO time) starts on the report's clock: seconds since the sampler started. */
export function runStartS(cpu: CpuReport, startedAt: string): number {
  return (Date.parse(startedAt) - Date.parse(cpu.startedAt)) / 1000
}

/** Where interval i of the report starts, seconds since the sampler started (it ends at cpu.t[i]). */
export function intervalStartS(cpu: CpuReport, i: number): number {
  return i === 0 ? Math.max(0, cpu.t[0] - cpu.intervalMs / 1000) : cpu.t[i - 1]
}

/**
 * The report cut to the intervals whose middle falls within [fromS, toS) seconds of the sampler's
 * start (one phase of a run, say): every series sliced, every mean taken over the slice. A burst of
 * a few seconds can have the machine saturated while the whole run's mean shows cores to spare.
 * null when no interval falls inside.
 */
export function cpuWindow(cpu: CpuReport, fromS: number, toS: number): CpuReport | null {
  const seconds = cpu.t.map((end, i) => end - intervalStartS(cpu, i))
  const inside = cpu.t.map((end, i) => end - seconds[i] / 2).map((mid) => mid >= fromS && mid < toS)
  const pick = <T>(series: T[]) => series.filter((_, i) => inside[i])
  const spans = pick(seconds)
  const durationS = spans.reduce((a, b) => a + b, 0)
  if (durationS <= 0) return null
  const weighted = (series: number[]) => round(pick(series).reduce((a, v, i) => a + v * spans[i], 0) / durationS)
  const components: Record<string, ComponentCpu> = {}
  for (const [name, c] of Object.entries(cpu.components)) {
    if (c.series === null) {
      components[name] = {...c, cpuSeconds: null, meanCores: null, peakCores: null}
      continue
    }
    const series = pick(c.series)
    const meanCores = weighted(c.series)
    components[name] = {cpuSeconds: round(meanCores * durationS), meanCores, peakCores: Math.max(...series), series, ...(c.note ? {note: c.note} : {})}
  }
  const m = cpu.machine
  const machine: MachineCpu | null = m && {
    cores: m.cores,
    meanBusyCores: weighted(m.busySeries),
    idleShare: weighted(m.idleShareSeries),
    busySeries: pick(m.busySeries),
    idleShareSeries: pick(m.idleShareSeries),
    ...(m.stealSeries ? {meanStealCores: weighted(m.stealSeries), stealSeries: pick(m.stealSeries)} : {}),
  }
  return {intervalMs: cpu.intervalMs, startedAt: cpu.startedAt, durationS: round(durationS), t: pick(cpu.t), components, machine}
}

/**
 * The components of a step's CPU report, busiest first: "database 0.95, server 0.80 cores, generator
 * not measured; machine idle 2% of 2 cores", and what the host took when it took anything: "…; the
 * host took 0.31 cores (steal)".
 */
export function cpuSentence(cpu: CpuReport | null): string | null {
  if (!cpu) return null
  const entries = Object.entries(cpu.components)
  const measured = entries.filter(([, c]) => c.meanCores !== null).sort((a, b) => b[1].meanCores! - a[1].meanCores!)
  const parts = measured.map(([name, c], i) => `${name} ${c.meanCores!.toFixed(2)}${i === measured.length - 1 ? ' cores' : ''}`)
  parts.push(...entries.filter(([, c]) => c.meanCores === null).map(([name]) => `${name} not measured`))
  const machine = cpu.machine ? `machine idle ${(cpu.machine.idleShare * 100).toFixed(0)}% of ${cpu.machine.cores} cores` : ''
  // steal below one tick a second is rounding, not the host
  const steal = (cpu.machine?.meanStealCores ?? 0) >= 0.01 ? `the host took ${cpu.machine!.meanStealCores!.toFixed(2)} cores (steal)` : ''
  return [parts.join(', '), machine, steal].filter(Boolean).join('; ') || null
}
