import {describe, expect, it} from 'vitest'
import {UsageError} from '../src/core/errors.js'
import {createRandom} from '../src/core/random.js'
import {verifyToken} from '../src/core/tokens.js'
import type {RunResult} from '../src/sim/metrics/result.js'
import {mergeRuns} from '../src/sim/report/merge.js'
import {MAX_START_AHEAD_MS, parseSegment, parseStartAt} from '../src/sim/run/plan.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {REQUEST_GROUPS} from '../src/sim/scenario/schema.js'
import {createBuilders} from '../src/sim/traffic/builders.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'

describe('parseSegment / parseStartAt', () => {
  it('reads i/n and refuses what is not one of n parts, naming --segment', () => {
    expect(parseSegment('1/2')).toEqual({index: 1, count: 2})
    expect(parseSegment(' 3 / 3 ')).toEqual({index: 3, count: 3})
    expect(parseSegment('1/1')).toEqual({index: 1, count: 1})
    for (const bad of ['0/2', '3/2', '1/0', '2', 'a/b', '1/2/3', '-1/2', '1.5/2', '']) {
      expect(() => parseSegment(bad), bad).toThrow(UsageError)
      expect(() => parseSegment(bad), bad).toThrow(/^--segment: /)
    }
  })

  it('reads an ISO time or epoch ms in the next 24 h; the past and further ahead are usage errors naming --start-at', () => {
    const now = Date.parse('2025-06-01T12:00:00Z')
    expect(parseStartAt('2025-06-01T12:00:30Z', now)).toBe(now + 30_000)
    expect(parseStartAt(String(now + 5000), now)).toBe(now + 5000)
    expect(() => parseStartAt('2025-06-01T11:59:59Z', now)).toThrow(/^--start-at: .*in the past/)
    expect(() => parseStartAt(String(now + MAX_START_AHEAD_MS + 1000), now)).toThrow(/^--start-at: .*24 h ahead/)
    for (const bad of ['soon', '12:00', '2025-13-45T99:00:00Z', '']) expect(() => parseStartAt(bad, now), bad).toThrow(/^--start-at: expected/)
  })
})

describe('the buyers and idempotency keys of segments', () => {
  const scenario = parseScenario(`
name: keys
dataset: {users: 997, creators: 10, productsPerCreator: 2}
drop: {stock: 10}
order: {retryRate: 0.25}
phases: [{name: p, duration: 1s, rates: {order: 1}}]
`)
  const world = {users: 997, creators: 10, products: 20, dropId: 3, secret: 'segment-secret-0123456789'}
  const N = 3000
  /** The orders one segment's builders send: [key, buyer] from the same seed every generator has. */
  const orders = (segment?: {index: number; count: number}) => {
    const {builders} = createBuilders(scenario, world, {segment})
    const random = createRandom(9)
    return Array.from({length: N}, (_, seq) => {
      const spec = builders.order({type: 'order', phase: 'p', seq, intendedMs: seq, random})
      return [spec.headers!['Idempotency-Key'], verifyToken(spec.headers!.Authorization.replace('Bearer ', ''), world.secret)!] as const
    })
  }

  it('unsplit keeps the keys it always had: d3-o1, d3-o2…', () => {
    const keys = [...new Set(orders().map(([k]) => k))]
    expect(keys.slice(0, 3)).toEqual(['d3-o1', 'd3-o2', 'd3-o3'])
  })

  it('three segments never share a key nor a buyer; a retried key keeps its buyer; together they reach every fan', () => {
    const parts = [1, 2, 3].map((index) => orders({index, count: 3}))
    const ownerOfKey = new Map<string, number>()
    const segmentOfBuyer = new Map<number, number>()
    parts.forEach((part, s) => {
      for (const [key, buyer] of part) {
        // a key means one buyer, in one segment only
        if (ownerOfKey.has(key)) expect(ownerOfKey.get(key), key).toBe(buyer)
        ownerOfKey.set(key, buyer)
        expect(Number(key.split('-o')[1]) % 3, key).toBe((s + 1) % 3)
        if (segmentOfBuyer.has(buyer)) expect(segmentOfBuyer.get(buyer), `buyer ${buyer}`).toBe(s)
        segmentOfBuyer.set(buyer, s)
      }
    })
    // every segment retried some keys, and the buyers of all segments span the fans (users 11..997)
    for (const part of parts) expect(new Set(part.map(([k]) => k)).size).toBeLessThan(N)
    const buyers = [...segmentOfBuyer.keys()]
    expect(Math.min(...buyers)).toBeLessThanOrEqual(13)
    expect(Math.max(...buyers)).toBeGreaterThanOrEqual(995)
    expect(buyers.every((b) => b >= 11 && b <= 997)).toBe(true)
  })
})

describe('report merge of a split run: the pieces must fit together', () => {
  const spec: FixtureSpec = {
    name: 'split',
    phases: [{name: 'only', seconds: 4, rates: {browse_product: 100, order: 20}}],
    thresholds: ['read.p95 < 50ms', 'order.count >= 10'],
  }
  const requests = generateRequests(spec, 3, ({random}) => ({ms: 5 + random() * 30}))
  const piece = (index: number, count: number, patch: Partial<RunResult['scenario']> = {}): RunResult => {
    const r = buildRun(spec, requests.filter((_, i) => i % count === index - 1), {rateShare: 1 / count})
    // a segment runs the scenario at its scale (buildRun's rateShare writes the share as the scale)
    return {...r, scenario: {...r.scenario, scale: 1, segment: {index, count}, startAt: '2025-06-01T12:00:00.000Z', ...patch}}
  }
  const files = (n: number) => Array.from({length: n}, (_, i) => `gen-${i + 1}.json`)

  it('merges 1/3, 2/3, 3/3 in any order into the whole scenario at its scale', () => {
    const whole = buildRun(spec, requests)
    const merged = mergeRuns([piece(3, 3), piece(1, 3), piece(2, 3)], REQUEST_GROUPS, files(3))
    expect(merged.scenario.segment).toBeUndefined()
    expect(merged.scenario.scale).toBe(1)
    expect(merged.scenario.startAt).toBe('2025-06-01T12:00:00.000Z')
    expect(merged.thresholds.map((t) => [t.expression, t.actual])).toEqual(whole.thresholds.map((t) => [t.expression, t.actual]))
    expect(merged.phases[0].requests.order.completed).toBe(whole.phases[0].requests.order.completed)
  })

  it('refuses a segment twice, a missing one, other splits, scales, seeds, start times, scenarios and whole runs, naming the files', () => {
    const refuse = (runs: RunResult[], message: RegExp) => {
      expect(() => mergeRuns(runs, REQUEST_GROUPS, files(runs.length))).toThrow(UsageError)
      expect(() => mergeRuns(runs, REQUEST_GROUPS, files(runs.length))).toThrow(message)
    }
    refuse([piece(1, 2), piece(1, 2)], /gen-1\.json and gen-2\.json are both segment 1\/2/)
    refuse([piece(1, 3), piece(3, 3)], /segment 2\/3 of the split run is missing/)
    refuse([piece(1, 2), piece(2, 3), piece(3, 3)], /gen-1\.json is segment 1\/2, gen-2\.json segment 2\/3/)
    refuse([piece(1, 2), piece(2, 2, {scale: 2})], /gen-2\.json ran with scale 2, gen-1\.json with 1/)
    refuse([piece(1, 2), piece(2, 2, {seed: 99})], /gen-2\.json ran with seed 99/)
    refuse([piece(1, 2), piece(2, 2, {startAt: '2025-06-01T12:00:05.000Z'})], /gen-2\.json ran with --start-at/)
    refuse([piece(1, 2), piece(2, 2, {name: 'other'})], /gen-2\.json is a run of scenario "other", gen-1\.json of "split"/)
    refuse([piece(1, 2), buildRun(spec, requests)], /gen-2\.json drove the whole scenario, gen-1\.json a segment of it/)
  })

  it('acked_units_le_stock holds for the union: two segments each under the stock can oversell together', () => {
    const withStock = (r: RunResult, ackedUnits: number): RunResult => ({...r, invariants: [{name: 'acked_units_le_stock', pass: true, data: {source: 'answers', stock: 100, ackedUnits, orders: ackedUnits}}]})
    const ok = mergeRuns([withStock(piece(1, 2), 50), withStock(piece(2, 2), 50)], REQUEST_GROUPS, files(2))
    expect(ok.invariants[0]).toMatchObject({pass: true, data: {ackedUnits: 100, stock: 100}})
    const over = mergeRuns([withStock(piece(1, 2), 60), withStock(piece(2, 2), 50)], REQUEST_GROUPS, files(2))
    expect(over.invariants[0]).toMatchObject({pass: false, data: {ackedUnits: 110, stock: 100}})
    expect(over.invariants[0].detail).toMatch(/110 units acknowledged in 110 orders across 2 segments, stock 100/)
    expect(over.verdict.exitCode).toBe(98)
  })
})
