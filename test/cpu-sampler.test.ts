import {spawn, type ChildProcess} from 'node:child_process'
import {Worker} from 'node:worker_threads'
import {afterEach, describe, expect, it} from 'vitest'
import {cpuSource, startCpuSampler} from '../src/sim/metrics/cpu.js'

/**
 * Burns about `share` of one core for `seconds`: busy for share×50 ms of every 50 ms (by the wall
 * clock, so a machine busy with other work gives it less, never more).
 */
const burn = (share: number, seconds: number) =>
  `const end = Date.now() + ${seconds * 1000}; (function tick() { const t = Date.now(); while (Date.now() - t < ${share * 50}); if (Date.now() < end) setTimeout(tick, ${(1 - share) * 50}); })()`

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const children: ChildProcess[] = []

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
})

/** A node child that burns like burn() and answers every line on stdin with its own CPU-seconds so far (getrusage). */
function reportingChild(share: number, seconds: number) {
  const child = spawn(process.execPath, ['-e', `process.stdin.on('data', () => { const u = process.cpuUsage(); process.stdout.write((u.user + u.system) / 1e6 + '\\n') }); ${burn(share, seconds)}`], {
    stdio: ['pipe', 'pipe', 'ignore'],
  })
  children.push(child)
  const lines: string[] = []
  let buffer = ''
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString()
    const parts = buffer.split('\n')
    buffer = parts.pop()!
    lines.push(...parts)
  })
  const cpuSeconds = async () => {
    const n = lines.length
    child.stdin!.write('?\n')
    while (lines.length === n) await sleep(5)
    return Number(lines[n])
  }
  return {child, cpuSeconds}
}

/** CPU-seconds this whole process used so far (getrusage), the reference for its threads. */
const ownCpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/**
 * The machine is shared (other work may hold its cores), so a process asked to burn half a core
 * may get far less: each figure is checked against what the process itself says it used
 * (getrusage), and only from above against the half core it asked for.
 */
describe('CPU sampler on real processes', () => {
  it('sees a child burning half a core as what the child says it used, and the machine busy at least that much', async () => {
    const {child, cpuSeconds} = reportingChild(0.5, 5)
    await sleep(300)
    const before = await cpuSeconds()
    const sampler = startCpuSampler({busy: cpuSource.processTree(child.pid!)}, {intervalMs: 500})
    await sleep(2000)
    const r = sampler.stop()
    const used = (await cpuSeconds()) - before
    const busy = r.components.busy
    expect(used).toBeGreaterThan(0.05)
    expect(Math.abs(busy.cpuSeconds! - used)).toBeLessThanOrEqual(0.08)
    expect(busy.meanCores).toBeLessThanOrEqual(0.7)
    expect(busy.series!.length).toBe(r.t.length)
    expect(r.t.length).toBeGreaterThanOrEqual(4)
    expect(busy.cpuSeconds).toBeCloseTo(busy.meanCores! * r.durationS, 1)
    expect(r.machine!.cores).toBeGreaterThanOrEqual(1)
    expect(r.machine!.meanBusyCores).toBeGreaterThanOrEqual(busy.meanCores! - 0.05)
    expect(r.machine!.idleShare).toBeGreaterThanOrEqual(0)
    expect(r.machine!.idleShare).toBeLessThanOrEqual(1)
    // steal is part of busy, one figure per interval
    expect(r.machine!.meanStealCores).toBeGreaterThanOrEqual(0)
    expect(r.machine!.meanStealCores).toBeLessThanOrEqual(r.machine!.meanBusyCores)
    expect(r.machine!.stealSeries!.length).toBe(r.t.length)
  })

  it("counts a tree's children started during the run, including ones that ended and were reaped", async () => {
    // the parent idles, then runs two busy children one after the other (each reaped before the
    // next); each child prints its whole CPU (getrusage at exit), and the parent prints their sum
    const childCode = `${burn(1, 0.8)}; process.on('exit', () => { const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1e6)) })`
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const {spawnSync} = require('node:child_process')
        setTimeout(() => {
          let sum = 0
          for (let i = 0; i < 2; i++) sum += Number(spawnSync(process.execPath, ['-e', ${JSON.stringify(childCode)}], {encoding: 'utf8'}).stdout)
          process.stdout.write(sum + '\\n')
          setTimeout(() => {}, 5000)
        }, 300)`,
      ],
      {stdio: ['ignore', 'pipe', 'ignore']},
    )
    children.push(parent)
    let printed = ''
    parent.stdout!.on('data', (d: Buffer) => (printed += d.toString()))
    await sleep(200)
    const sampler = startCpuSampler({tree: cpuSource.processTree(parent.pid!), parentOnly: cpuSource.processTree(parent.pid!, false)}, {intervalMs: 250})
    while (!printed.includes('\n')) await sleep(20)
    await sleep(300)
    const r = sampler.stop()
    const childrenUsed = Number(printed.trim())
    expect(childrenUsed).toBeGreaterThan(0.1)
    // the children's CPU, plus the idle parent's own bit
    const tree = r.components.tree.cpuSeconds!
    expect(tree).toBeGreaterThanOrEqual(childrenUsed - 0.05)
    expect(tree).toBeLessThanOrEqual(childrenUsed + 0.15)
    // both children ended and were reaped: the parent's own figure (its cutime) now holds them, and nothing was counted twice
    expect(Math.abs(r.components.parentOnly.cpuSeconds! - tree)).toBeLessThanOrEqual(0.05)
    // while a child ran, only the tree saw it; the parent's own figure caught up when it reaped the child
    let gap = 0
    let treeSoFar = 0
    let parentSoFar = 0
    r.components.tree.series!.forEach((cores, i) => {
      const wallS = r.t[i] - (r.t[i - 1] ?? 0)
      treeSoFar += cores * wallS
      parentSoFar += r.components.parentOnly.series![i] * wallS
      gap = Math.max(gap, treeSoFar - parentSoFar)
    })
    expect(gap).toBeGreaterThanOrEqual(childrenUsed / 4)
  })

  it("tells a worker thread's CPU (tid found inside the thread) from the rest of the process", async () => {
    const cpuModule = new URL('../src/sim/metrics/cpu.ts', import.meta.url).href
    const worker = new Worker(
      `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(cpuModule)}) }).then((m) => {
        const {parentPort} = require('node:worker_threads')
        parentPort.postMessage(m.currentThreadId())
        ${burn(0.5, 3.5)}
      })`,
      {eval: true},
    )
    try {
      const tid = await new Promise<number>((resolve, reject) => worker.once('message', resolve).once('error', reject))
      expect(tid).toBeGreaterThan(0)
      expect(tid).not.toBe(process.pid)
      await sleep(300)
      const before = ownCpuSeconds()
      const sampler = startCpuSampler({generator: cpuSource.thread(tid), server: cpuSource.selfExcept([tid])}, {intervalMs: 500})
      await sleep(2000)
      const r = sampler.stop()
      const used = ownCpuSeconds() - before
      const {generator, server} = r.components
      // the two parts add up to the whole process
      expect(Math.abs(generator.cpuSeconds! + server.cpuSeconds! - used)).toBeLessThanOrEqual(0.08)
      expect(generator.cpuSeconds).toBeGreaterThan(0.05)
      expect(generator.meanCores).toBeLessThanOrEqual(0.7)
      // this test's main thread only waits: far below the worker's share
      expect(server.cpuSeconds!).toBeLessThan(generator.cpuSeconds! / 3)
    } finally {
      await worker.terminate()
    }
  })
})
