/**
 * Two generator processes (`scenario run --segment 1/2` and `2/2` with one --start-at) against one
 * target send what one generator with the same seed sends, and `report merge` judges their union.
 * The path: a profile run (--target --profile profiles/livedrop.yaml --fixture drop=1), which needs
 * no database, against a plain HTTP target in this process (orders answered 201).
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {LatencyHistogram} from '../src/core/histogram.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import type {RunResult} from '../src/sim/metrics/result.js'
import {runCli} from './helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-segments-'))
const SECRET = 'segments-secret-0123456789'
const SCENARIO = path.join(dir, 'split.yaml')
// Poisson arrivals, a ramp, a type only in the second phase; no retries (the plain target answers every key anew)
writeFileSync(
  SCENARIO,
  `name: split
dataset: {users: 2000, creators: 10, productsPerCreator: 5, seed: 7}
drop: {stock: 1000000}
order: {retryRate: 0}
arrival: poisson
phases:
  - name: warm
    duration: 3s
    rates: {browse_product: 30, browse_drop: 10, order: 5}
    rampTo: {order: 25}
  - name: peak
    duration: 3s
    rates: {browse_product: 60, order: 40, follow: 10}
thresholds: ['all.p95 < 1s', 'errors.rate < 1%', 'all.count > 10']
`,
)
const file = (name: string) => path.join(dir, name)
const read = (name: string) => JSON.parse(readFileSync(file(name), 'utf8')) as RunResult
const run = (out: string, extra: string[], target: string) =>
  runCli(['scenario', 'run', SCENARIO, '--target', target, '--profile', 'profiles/livedrop.yaml', '--fixture', 'drop=1', '--secret', SECRET, '--out', file(out), ...extra], {
    env: {DATABASE_URL: undefined},
    timeoutMs: 90_000,
  })

/** Requests sent per "second/type" from the run's own per-second series. */
function perSecond(runs: RunResult[]): Map<string, number> {
  const m = new Map<string, number>()
  for (const r of runs) for (const pt of r.series) for (const [type, v] of Object.entries(pt.types)) if (type !== 'all') m.set(`${pt.t}/${type}`, (m.get(`${pt.t}/${type}`) ?? 0) + v.sent)
  return m
}
/** Arrivals scheduled per "phase/type": what the schedule held, before any timing. */
function scheduled(runs: RunResult[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of runs) for (const p of r.phases) for (const [type, q] of Object.entries(p.requests)) out[`${p.name}/${type}`] = (out[`${p.name}/${type}`] ?? 0) + q.scheduled
  return out
}
const sentAll = (runs: RunResult[]) => runs.reduce((n, r) => n + r.phases.reduce((x, p) => x + Object.values(p.requests).reduce((y, q) => y + q.sent, 0), 0), 0)

describe('several generators, one scenario: --segment i/n, --start-at, report merge', () => {
  let target: TestTarget
  beforeAll(async () => {
    target = await startTestTarget({status: (req) => (req.method === 'POST' && req.url === '/orders' ? 201 : 200)})
  })
  afterAll(async () => {
    await target.close()
    rmSync(dir, {recursive: true, force: true})
  })
  /** Requests the target got, without the executor's warmup (HEAD /). */
  const received = () => [...target.received].filter(([p]) => p !== '/').reduce((n, [, c]) => n + c, 0)

  it('two segments send per type and second what one generator sends (±1); the merged report is judged on the union', async () => {
    const single = await run('single.json', [], target.url)
    expect(single.code, single.stderr + single.stdout).toBe(0)
    const before = received()
    expect(before).toBe(sentAll([read('single.json')]))

    // far enough ahead for both processes to be ready; both wait for the same instant
    const startAt = new Date(Date.now() + 15_000).toISOString()
    const [a, b] = await Promise.all([run('seg-1.json', ['--segment', '1/2', '--start-at', startAt], target.url), run('seg-2.json', ['--segment', '2/2', '--start-at', startAt], target.url)])
    expect(a.code, a.stderr + a.stdout).toBe(0)
    expect(b.code, b.stderr + b.stdout).toBe(0)
    const whole = read('single.json')
    const parts = [read('seg-1.json'), read('seg-2.json')]
    expect(parts.map((p) => p.scenario.segment)).toEqual([{index: 1, count: 2}, {index: 2, count: 2}])
    expect(parts.map((p) => p.scenario.startAt)).toEqual([startAt, startAt])
    expect(parts.map((p) => p.startedAt)).toEqual([startAt, startAt])
    // one target got both segments' requests, as many as the single generator sent
    expect(received() - before).toBe(sentAll(parts))

    // the schedule: exactly the single generator's, per phase and type, split about evenly
    expect(scheduled(parts)).toEqual(scheduled([whole]))
    for (const [k, n] of Object.entries(scheduled([whole]))) {
      const [one, two] = parts.map((p) => scheduled([p])[k] ?? 0)
      expect(Math.abs(one - two), k).toBeLessThanOrEqual(1)
      expect(one + two, k).toBe(n)
    }
    // what was sent, second by second and type by type (a send may slip past a second's end: ±1)
    const mine = perSecond(parts)
    const theirs = perSecond([whole])
    for (const k of new Set([...mine.keys(), ...theirs.keys()])) expect(Math.abs((mine.get(k) ?? 0) - (theirs.get(k) ?? 0)), k).toBeLessThanOrEqual(1)
    expect(sentAll(parts)).toBe(sentAll([whole]))

    // merged: the whole scenario, its thresholds measured over the union of both files' requests
    const merge = await runCli(['report', 'merge', file('seg-1.json'), file('seg-2.json'), '--out', file('merged.json')])
    expect(merge.code, merge.stderr + merge.stdout).toBe(0)
    const merged = read('merged.json')
    expect(merged.scenario).toMatchObject({name: 'split', scale: 1, startAt})
    expect(merged.scenario.segment).toBeUndefined()
    const requests = parts.flatMap((p) => p.phases.flatMap((ph) => Object.values(ph.requests)))
    const union = new LatencyHistogram()
    for (const q of requests) union.add(LatencyHistogram.decode(q.histograms.corrected))
    const sum = (f: 'completed' | 'errors' | 'sent' | 'unsent') => requests.reduce((n, q) => n + q[f], 0)
    const expected: Record<string, number> = {
      'all.p95 < 1s': union.percentileMs(95),
      'errors.rate < 1%': (sum('errors') + sum('unsent')) / (sum('sent') + sum('unsent')),
      'all.count > 10': sum('completed'),
    }
    expect(Object.fromEntries(merged.thresholds.map((t) => [t.expression, t.actual]))).toEqual(expected)
    expect(union.count).toBe(sum('completed'))
    expect(merged.verdict.exitCode).toBe(0)
    // the black-box counts add up: every order the two segments sent was acknowledged once
    expect(merged.stats.ordersConfirmed).toBe(parts.reduce((n, p) => n + (p.stats.ordersConfirmed as number), 0))
    expect(merged.invariants.find((i) => i.name === 'acked_units_le_stock')?.data).toMatchObject({ackedUnits: merged.stats.unitsAcknowledged, stock: 1000000})
  }, 180_000)

  it('report merge refuses pieces that do not fit: a segment twice, a whole run with a segment, exit 2 naming the files', async () => {
    const twice = await runCli(['report', 'merge', file('seg-1.json'), file('seg-1.json'), '--out', file('bad.json')])
    expect(twice.code).toBe(2)
    expect(twice.stderr).toContain(`${file('seg-1.json')} and ${file('seg-1.json')} are both segment 1/2`)
    const mixed = await runCli(['report', 'merge', file('seg-1.json'), file('single.json'), '--out', file('bad.json')])
    expect(mixed.code).toBe(2)
    expect(mixed.stderr).toContain(`${file('single.json')} drove the whole scenario, ${file('seg-1.json')} a segment of it`)
    const other = read('seg-2.json')
    writeFileSync(file('other.json'), JSON.stringify({...other, scenario: {...other.scenario, name: 'other'}}))
    const scenarios = await runCli(['report', 'merge', file('seg-1.json'), file('other.json'), '--out', file('bad.json')])
    expect(scenarios.code).toBe(2)
    expect(scenarios.stderr).toContain(`${file('other.json')} is a run of scenario "other", ${file('seg-1.json')} of "split"`)
  }, 60_000)

  it('usage errors before anything is sent: --segment 0/2, 3/2, junk; --start-at in the past or days ahead; a split of a stack run', async () => {
    const before = received()
    for (const bad of ['0/2', '3/2', 'half']) {
      const r = await run('never.json', ['--segment', bad], target.url)
      expect(r.code, bad).toBe(2)
      expect(r.stderr, bad).toContain(`--segment: expected i/n with 1 ≤ i ≤ n (this generator's part of n), got "${bad}"`)
    }
    const past = await run('never.json', ['--segment', '1/2', '--start-at', new Date(Date.now() - 60_000).toISOString()], target.url)
    expect(past.code).toBe(2)
    expect(past.stderr).toMatch(/--start-at: .* s in the past/)
    const far = await run('never.json', ['--start-at', String(Date.now() + 3 * 86_400_000)], target.url)
    expect(far.code).toBe(2)
    expect(far.stderr).toMatch(/--start-at: .* is more than 24 h ahead/)
    // the in-process stack makes a drop of its own per generator: its pieces would not add up
    const stack = await runCli(['scenario', 'run', SCENARIO, '--segment', '1/2', '--db', 'postgres://root@127.0.0.1:1/none'], {timeoutMs: 60_000})
    expect(stack.code).toBe(2)
    expect(stack.stderr).toContain('--segment: splits a run that drives a target through a profile')
    expect(received()).toBe(before)
  }, 120_000)
})
