import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {cpuCounter, cpuPer1000Requests, cpuSentence, cpuWindow, stackCpuSources, parseMachineStat, parseProcStat, startCpuSampler, type CpuReport} from './cpu.js'

/** A /proc/<pid>/stat line: utime, stime, cutime, cstime in ticks. */
function statLine(pid: number, comm: string, ppid: number, t: {u: number; s?: number; cu?: number; cs?: number; start?: number}): string {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads itreal starttime …
  return `${pid} (${comm}) S ${ppid} 1 1 0 -1 4194560 10 0 0 0 ${t.u} ${t.s ?? 0} ${t.cu ?? 0} ${t.cs ?? 0} 20 0 1 0 ${t.start ?? 1000} 1000000 100 0\n`
}

describe('parseProcStat', () => {
  it('reads the fields after a command name holding spaces and parentheses', () => {
    const st = parseProcStat(statLine(42, 'postgres: (x) idle', 7, {u: 120, s: 30, cu: 5, cs: 1, start: 9999}))
    expect(st).toEqual({state: 'S', ppid: 7, ownTicks: 150, childTicks: 6, startTicks: 9999, threads: 1})
  })
  it('refuses text that is not a stat line', () => {
    expect(parseProcStat('garbage')).toBeNull()
    expect(parseProcStat('1 (x) S 0')).toBeNull()
  })
})

describe('parseMachineStat', () => {
  it('sums the first eight fields, counts idle with iowait and reads steal', () => {
    const m = parseMachineStat('cpu  100 5 50 800 20 1 2 3 40 0\ncpu0 50 2 25 400 10 0 1 1 20 0\ncpu1 50 3 25 400 10 1 1 2 20 0\nintr 1\n')
    expect(m).toEqual({total: 100 + 5 + 50 + 800 + 20 + 1 + 2 + 3, idle: 820, steal: 3, cores: 2})
  })
})

describe('process tree counter on a fake /proc', () => {
  let proc: string
  afterEach(() => rmSync(proc, {recursive: true, force: true}))

  const write = (pid: number, stat: string, children: number[] = []) => {
    mkdirSync(path.join(proc, String(pid), 'task', String(pid)), {recursive: true})
    writeFileSync(path.join(proc, String(pid), 'stat'), stat)
    writeFileSync(path.join(proc, String(pid), 'task', String(pid), 'stat'), stat)
    writeFileSync(path.join(proc, String(pid), 'task', String(pid), 'children'), children.join(' '))
  }
  const gone = (pid: number) => rmSync(path.join(proc, String(pid)), {recursive: true, force: true})

  it('counts children born later, and a reaped child once (its ticks move into the parent cutime)', () => {
    proc = mkdtempSync(path.join(tmpdir(), 'fakeproc-'))
    write(10, statLine(10, 'postgres', 1, {u: 100}))
    const c = cpuCounter({kind: 'processes', pids: [10]}, proc)
    expect(c.read()).toBe(100)
    // a backend appears with 30 ticks already (born after the last sample: all of them count)
    write(10, statLine(10, 'postgres', 1, {u: 110}), [11])
    write(11, statLine(11, 'postgres: backend', 10, {u: 30, start: 2000}))
    expect(c.read()).toBe(140)
    // the backend ran 20 more ticks and ended; the postmaster reaped it: cutime 50
    gone(11)
    write(10, statLine(10, 'postgres', 1, {u: 115, cu: 50}), [])
    expect(c.read()).toBe(165)
  })

  it('keeps the last ticks of a root that ended, and ignores a reused pid', () => {
    proc = mkdtempSync(path.join(tmpdir(), 'fakeproc-'))
    write(20, statLine(20, 'node', 1, {u: 40, start: 500}))
    const c = cpuCounter({kind: 'processes', pids: [20]}, proc)
    expect(c.read()).toBe(40)
    write(20, statLine(20, 'node', 1, {u: 60, start: 500}))
    expect(c.read()).toBe(60)
    gone(20)
    expect(c.read()).toBe(60)
    // another process takes pid 20: not ours
    write(20, statLine(20, 'bash', 1, {u: 900, start: 7000}))
    expect(c.read()).toBe(60)
    expect(c.note()).toMatch(/ended/)
  })

  it('follows a grandchild reparented away when its parent ended', () => {
    proc = mkdtempSync(path.join(tmpdir(), 'fakeproc-'))
    write(30, statLine(30, 'serve', 1, {u: 10}), [31])
    write(31, statLine(31, 'worker', 30, {u: 10, start: 2000}), [32])
    write(32, statLine(32, 'helper', 31, {u: 10, start: 2001}))
    const c = cpuCounter({kind: 'processes', pids: [30]}, proc)
    expect(c.read()).toBe(30)
    // 31 ends, reaped by 30 (cutime 15); 32 is reparented to init and goes on running
    gone(31)
    write(30, statLine(30, 'serve', 1, {u: 10, cu: 15}), [])
    write(32, statLine(32, 'helper', 1, {u: 25, start: 2001}))
    expect(c.read()).toBe(10 + 15 + 25)
  })

  it('leaves out excluded threads, also after they ended', () => {
    proc = mkdtempSync(path.join(tmpdir(), 'fakeproc-'))
    write(40, statLine(40, 'node', 1, {u: 100}))
    const thread = path.join(proc, '40', 'task', '41')
    mkdirSync(thread, {recursive: true})
    writeFileSync(path.join(thread, 'stat'), statLine(41, 'node', 1, {u: 70}))
    const c = cpuCounter({kind: 'processes', pids: [40], tree: false, excludeThreads: [41]}, proc)
    expect(c.read()).toBe(30)
    writeFileSync(path.join(proc, '40', 'stat'), statLine(40, 'node', 1, {u: 150}))
    writeFileSync(path.join(thread, 'stat'), statLine(41, 'node', 1, {u: 110}))
    expect(c.read()).toBe(40)
    rmSync(thread, {recursive: true})
    writeFileSync(path.join(proc, '40', 'stat'), statLine(40, 'node', 1, {u: 160}))
    expect(c.read()).toBe(50)
  })
})

describe('startCpuSampler', () => {
  it('reports what cannot be measured as null with the reason, never 0', () => {
    const report = startCpuSampler({database: {kind: 'unmeasured', reason: 'external database'}, gone: {kind: 'processes', pids: [2 ** 22 + 7]}}).stop()
    expect(report.components.database).toMatchObject({cpuSeconds: null, meanCores: null, series: null, note: 'external database'})
    expect(report.components.gone.cpuSeconds).toBeNull()
    expect(report.components.gone.note).toMatch(/not found/)
  })
  it('refuses a component named machine', () => {
    expect(() => startCpuSampler({machine: {kind: 'unmeasured', reason: 'x'}})).toThrow(/reserved/)
  })
})

describe('cpuPer1000Requests', () => {
  const report: CpuReport = {
    intervalMs: 1000,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationS: 10,
    t: [],
    components: {
      generator: {cpuSeconds: 2, meanCores: 0.2, peakCores: 0.3, series: []},
      database: {cpuSeconds: null, meanCores: null, peakCores: null, series: null, note: 'external'},
    },
    machine: {cores: 2, meanBusyCores: 1.5, idleShare: 0.25, busySeries: [], idleShareSeries: []},
  }
  it('divides CPU-seconds by thousands of requests; unmeasured stays null', () => {
    expect(cpuPer1000Requests(report, 4000)).toEqual({generator: 0.5, database: null, machine: 3.75})
  })
  it('has no figure without requests', () => {
    expect(cpuPer1000Requests(report, 0)).toEqual({generator: null, database: null, machine: null})
  })
})

describe('cpuSentence', () => {
  const report = (meanStealCores?: number): CpuReport => ({
    intervalMs: 1000,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationS: 10,
    t: [],
    components: {server: {cpuSeconds: 8, meanCores: 0.8, peakCores: 1, series: []}, generator: {cpuSeconds: 2, meanCores: 0.2, peakCores: 0.3, series: []}},
    machine: {cores: 2, meanBusyCores: 1.5, idleShare: 0.25, busySeries: [], idleShareSeries: [], ...(meanStealCores === undefined ? {} : {meanStealCores})},
  })
  it('names the components busiest first and the machine; what the host took only when it took something', () => {
    expect(cpuSentence(report())).toBe('server 0.80, generator 0.20 cores; machine idle 25% of 2 cores')
    expect(cpuSentence(report(0.004))).toBe('server 0.80, generator 0.20 cores; machine idle 25% of 2 cores')
    expect(cpuSentence(report(0.31))).toBe('server 0.80, generator 0.20 cores; machine idle 25% of 2 cores; the host took 0.31 cores (steal)')
  })
})

describe('stackCpuSources', () => {
  it('measures the in-process stack: the generator thread, this process without it, the postmaster tree', () => {
    expect(stackCpuSources({generatorTid: 77, server: 'self', postmasterPid: 55})).toEqual({
      generator: {kind: 'thread', tid: 77, pid: undefined},
      server: {kind: 'processes', pids: [process.pid], tree: false, excludeThreads: [77]},
      database: {kind: 'processes', pids: [55], tree: true},
    })
  })
  it('says what it cannot measure: a --target deployment, an external database', () => {
    const s = stackCpuSources({generatorTid: null, server: null, postmasterPid: null})
    expect(Object.values(s).map((x) => x.kind)).toEqual(['unmeasured', 'unmeasured', 'unmeasured'])
    expect(stackCpuSources({generatorTid: 1, server: [10, 11], postmasterPid: null}).server).toEqual({kind: 'processes', pids: [10, 11], tree: true})
  })
})

describe('cpuWindow', () => {
  // 6 one-second intervals: a quiet start, a 3 s burst (intervals ending at 3, 4, 5), a quiet end
  const report: CpuReport = {
    intervalMs: 1000,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationS: 6,
    t: [1, 2, 3, 4, 5, 6],
    components: {
      server: {cpuSeconds: 2.7, meanCores: 0.45, peakCores: 0.8, series: [0.2, 0.2, 0.8, 0.7, 0.6, 0.2]},
      database: {cpuSeconds: null, meanCores: null, peakCores: null, series: null, note: 'external'},
    },
    machine: {cores: 2, meanBusyCores: 1, idleShare: 0.5, busySeries: [0.5, 0.5, 1.8, 1.6, 1.6, 0.5], idleShareSeries: [0.75, 0.75, 0.1, 0.2, 0.2, 0.75], meanStealCores: 0, stealSeries: [0, 0, 0, 0, 0, 0]},
  }

  it("takes the intervals whose middle is inside the window and averages them: a burst's saturation the whole mean hides", () => {
    const w = cpuWindow(report, 2, 5)!
    expect(w.t).toEqual([3, 4, 5])
    expect(w.durationS).toBe(3)
    expect(w.components.server).toEqual({cpuSeconds: 2.1, meanCores: 0.7, peakCores: 0.8, series: [0.8, 0.7, 0.6]})
    expect(w.components.database).toMatchObject({meanCores: null, series: null, note: 'external'})
    expect(w.machine).toMatchObject({cores: 2, meanBusyCores: expect.closeTo(5 / 3, 3), idleShare: expect.closeTo(0.5 / 3, 3), meanStealCores: 0})
    expect(cpuSentence(w)).toBe('server 0.70 cores, database not measured; machine idle 17% of 2 cores')
    // half an interval is not in: its middle decides
    expect(cpuWindow(report, 2.4, 5.4)!.t).toEqual([3, 4, 5])
  })

  it('is null when no interval falls inside', () => {
    expect(cpuWindow(report, 7, 9)).toBeNull()
  })
})
