import {execFile, execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {buildRun, generateRequests, type FixtureSpec} from '../../../test/report-runs.js'
import type {CpuReport} from '../metrics/cpu.js'
import {computeVerdict, type RunResult} from '../metrics/result.js'
import {capacityAnswerLine, capacityChartData, capacityHtmlSection, renderCapacityPage, renderCapacityTable} from '../report/capacity.js'
import {parseScenario} from '../scenario/loader.js'
import {buildCapacityResult, judgeStep, summarizeStep, type CapacityResult} from './result.js'
import {scaleRates} from './scale.js'
import {findCapacity} from './search.js'

const scenario = parseScenario(`
name: tiny-drop
dataset: {users: 100, creators: 2, celebrityFollowers: 50}
drop: {stock: 10, startOffset: 2s}
phases:
  - {name: warm, duration: 2s, rates: {browse_product: 50}}
  - {name: drop-opens, duration: 3s, rates: {browse_product: 150, list_followers: 50, order: 20}}
thresholds: [read.p95 < 200ms, order.p95 < 500ms]
`)

/** A fake target whose latency grows with the offered load: read p95 (10 ms × k^2.5 × up to 1.2) crosses 200 ms near ×3.1, before orders cross 500 ms. */
function stepRun(k: number): RunResult {
  const s = scaleRates(scenario, k)
  const spec: FixtureSpec = {
    name: s.name,
    phases: s.phases.map((p) => ({name: p.name, seconds: p.duration / 1000, rates: p.rates as Record<string, number>})),
    thresholds: s.thresholds,
  }
  return buildRun(spec, generateRequests(spec, 3, ({type, random}) => ({ms: (type === 'order' ? 15 : 10) * k ** 2.5 * (0.8 + random() * 0.4)})))
}

/** The step's CPU: steady in the warm phase's 2 s, half as much again in the drop-opens phase's 3 s. */
function cpuFor(k: number): CpuReport {
  const shape = [0.75, 0.75, 1.125, 1.125, 1.125]
  const c = (cores: number) => ({cpuSeconds: cores * 5, meanCores: cores, peakCores: cores * 1.125, series: shape.map((f) => cores * f)})
  const busy = shape.map((f) => Math.min(2, 0.45 * k * f))
  return {
    intervalMs: 1000,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationS: 5,
    t: [1, 2, 3, 4, 5],
    components: {generator: c(0.1 * k), server: c(0.3 * k), database: {cpuSeconds: null, meanCores: null, peakCores: null, series: null, note: 'external database: not measured'}},
    machine: {cores: 2, meanBusyCores: Math.min(2, 0.45 * k), idleShare: Math.max(0, 1 - 0.225 * k), busySeries: busy, idleShareSeries: busy.map((b) => 1 - b / 2)},
  }
}

async function search(opts: {gate?: number; voidAt?: number} = {}): Promise<CapacityResult> {
  const found = await findCapacity(
    async (k) => {
      const run = stepRun(k)
      if (opts.voidAt !== undefined && k >= opts.voidAt) {
        run.void = {kind: 'stall', reason: 'the generator sent nothing for 812 ms', detail: {}}
        run.verdict = computeVerdict(run)
      }
      return judgeStep(k, run, cpuFor(k))
    },
    {minScale: opts.gate},
  )
  return buildCapacityResult(found, {scenario, file: 'tiny.yaml', stepSeconds: 5, gate: opts.gate})
}

describe('summarizeStep', () => {
  it("takes the busiest phase's rates, read/order percentiles, errors and CPU per 1,000 requests", () => {
    const d = summarizeStep(2, stepRun(2), cpuFor(2))
    expect(d.peak).toEqual({phase: 'drop-opens', target: 440, achieved: 440})
    expect(d.orders).toEqual({target: 40, achieved: 40})
    // warm 100/s for 2 s, drop-opens 440/s for 3 s
    expect(d.rate.target).toBeCloseTo((100 * 2 + 440 * 3) / 5, 1)
    expect(d.requests).toBe(100 * 2 + 440 * 3)
    expect(d.latency.read!.p95).toBeGreaterThan(10 * 2 ** 2.5 * 0.8)
    expect(d.latency.read!.p99).toBeGreaterThanOrEqual(d.latency.read!.p95)
    expect(d.latency.order!.p95).toBeGreaterThan(d.latency.read!.p95)
    expect(d.latency.notify).toBeNull()
    expect(d.errors).toEqual({count: 0, share: 0})
    // server 0.6 cores × 5 s over 1,520 requests
    expect(d.cpuPer1000!.server).toBeCloseTo((3 / 1520) * 1000, 2)
    expect(d.cpuPer1000!.database).toBeNull()
    // the drop-opens phase's 3 s alone: the server at 1.125 × 0.6 cores
    expect(d.peakCpu!.t).toEqual([3, 4, 5])
    expect(d.peakCpu!.components.server.meanCores).toBeCloseTo(0.675, 3)
    expect(d.exitCode).toBe(0)
  })
})

describe('a capacity result', () => {
  it('brackets the fake target, names what failed, and says which component was busiest there', async () => {
    const r = await search()
    expect(r.limit).toBe('target')
    // 10 × k^2.5 × ~1.18 = 200 at k ≈ 3.1
    expect(r.capacity!).toBeGreaterThan(2.7)
    expect(r.capacity!).toBeLessThan(3.2)
    expect(r.firstFail!).toBeGreaterThan(3)
    expect(r.firstFail!).toBeLessThan(3.5)
    expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1.1)
    expect(r.answer).toEqual({scale: r.capacity, total: Math.round(220 * r.capacity! * 10) / 10, read: Math.round(200 * r.capacity! * 10) / 10, order: Math.round(20 * r.capacity! * 10) / 10})
    expect(r.limitedBy).toMatch(/^the target's thresholds: read\.p95 < 200ms \[run\]/)
    // the CPU of the busiest phase of the first failing step, not the step's mean
    const fail = r.steps.find((s) => s.scale === r.firstFail)!
    const server = (1.125 * 0.3 * fail.scale).toFixed(2)
    expect(r.limitedBy).toMatch(new RegExp(`\\(in drop-opens: server ${server}, generator \\d\\.\\d\\d cores, database not measured; machine idle \\d+% of 2 cores\\)$`))
    expect(r.exitCode).toBe(0)
    // what --json prints survives JSON unchanged
    expect(JSON.parse(JSON.stringify(r))).toEqual(r)
  })

  it('the terminal table: one row per step, failures under it, CPU per component, the answer line; within 100 columns', async () => {
    const r = await search()
    const text = renderCapacityTable(r)
    const lines = text.split('\n')
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100)
    const header = lines.findIndex((l) => /^#\s+scale\s+target\/s\s+achieved\/s\s+read p95\/p99\s+order p95\/p99\s+notify p95\/p99\s+errors\s+verdict$/.test(l))
    expect(header).toBeGreaterThan(0)
    const rows = lines.slice(header + 1, header + 1 + r.steps.length)
    expect(rows.map((l) => l.trim().split(/\s+/)[1])).toEqual(r.steps.map((s) => `×${s.scale}`))
    expect(rows[0]).toMatch(/^1\s+×1\s+220\s+220\s+\S+ms\s+\S+ms\s+-\s+0\.00%\s+PASS$/)
    expect(rows.some((l) => /FAIL$/.test(l))).toBe(true)
    expect(text).toMatch(/^\s+\d+ at ×[\d.]+: read\.p95 < 200ms \[run\]/m)
    expect(text).toMatch(/^#\s+scale\s+generator\s+server\s+database\s+machine\s+idle$/m)
    expect(text).toMatch(/^1\s+×1\s+0\.10 \(0\.\d\d\)\s+0\.30 \(\d\.\d\d\)\s+not measured\s+0\.45 \(\d\.\d\d\)\s+78%$/m)
    expect(text).toMatch(/database: external database: not measured/)
    expect(text).toContain(capacityAnswerLine(r).split(' ').slice(0, 6).join(' '))
    expect(capacityAnswerLine(r)).toMatch(/^capacity: ×[\d.]+ = [\d,]+ req\/s at drop-opens \([\d,]+ reads\/s, [\d,]+ order attempts\/s\); limited by the target's thresholds/)
    expect(renderCapacityTable(r, {color: true})).toMatch(/\x1b\[32mPASS\x1b\[0m/)
  })

  it("a void step ends the search as the generator's limit: at least the last pass", async () => {
    const r = await search({voidAt: 1.5})
    expect(r).toMatchObject({capacity: 1, limit: 'generator', atLeast: true, exitCode: 0})
    expect(capacityAnswerLine(r)).toMatch(/^capacity: at least ×1 = 220 req\/s .*limited by the generator's limit, not the target's: the step at ×1\.5 was void \(the generator sent nothing for 812 ms\) \(in drop-opens: server/)
    expect(renderCapacityTable(r)).toMatch(/VOID$/m)
  })

  it('--min-scale as a gate: below it exits 99 and starts at the gate', async () => {
    const r = await search({gate: 4})
    expect(r.steps.map((s) => s.scale)).toEqual([4])
    expect(r).toMatchObject({capacity: null, belowMin: true, exitCode: 99})
    expect(capacityAnswerLine(r)).toMatch(/^capacity: below ×4, the lowest scale tried; limited by .*; gate --min-scale 4: FAIL$/)
    const passing = await search({gate: 2})
    expect(passing.exitCode).toBe(0)
    expect(capacityAnswerLine(passing)).toMatch(/gate --min-scale 2: PASS$/)
  })

  it('a generator-bound search below the gate cannot say the gate failed: 100', async () => {
    const r = await search({gate: 1, voidAt: 1.5})
    expect(r.capacity).toBe(1)
    expect(r.exitCode).toBe(0)
    const none = await search({gate: 2, voidAt: 2})
    expect(none).toMatchObject({capacity: null, limit: 'generator', exitCode: 100})
  })
})

const chromium = execFileSync('sh', ['-c', 'command -v chromium'], {encoding: 'utf8'}).trim()
const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-capacity-html-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('the capacity chart', () => {
  it('plots p95/p99 of reads and orders against the offered rate, shading the passing region up to the capacity', async () => {
    const r = await search()
    const d = capacityChartData(r)
    expect(d.offered).toEqual([...d.offered].sort((a, b) => a - b))
    expect(d.offered[0]).toBe(220)
    expect(d.series['read p95']).toHaveLength(r.steps.length)
    expect(d.series['notify p95'].every((v) => v === null)).toBe(true)
    expect(d.passing).toEqual({from: 220, to: 220 * r.capacity!})
    expect(d.firstFail).toBe(220 * r.firstFail!)
    const section = capacityHtmlSection(r)
    expect(section).toMatch(/^<section id="capacity">/)
    expect(section).toContain('<table id="capacity-steps">')
    expect(section).not.toMatch(/\s(src|href)\s*=/i)
  })

  it('draws in headless Chromium with coloured series', async () => {
    const r = await search()
    const file = path.join(dir, 'capacity.html')
    writeFileSync(file, renderCapacityPage(r))
    const dom = await new Promise<string>((resolve, reject) =>
      execFile(
        chromium,
        ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`, '--dump-dom', `file://${file}`],
        {timeout: 30_000, maxBuffer: 64 * 1024 * 1024},
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    )
    const m = /<div class="chart" id="capacity-chart" data-painted="(\d+)" data-drawn="1"/.exec(dom)
    expect(m).not.toBeNull()
    expect(Number(m![1])).toBeGreaterThan(300)
  }, 40_000)
})
