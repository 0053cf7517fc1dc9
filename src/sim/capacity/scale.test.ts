import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {UsageError} from '../../core/errors.js'
import {DEFAULT_SCENARIO, parseScenario} from '../scenario/loader.js'
import {ScenarioSchema} from '../scenario/schema.js'
import {compressPhases, offeredRates, peakRates, scaleRates} from './scale.js'
import {scenarioDurationMs} from '../scenario/schema.js'

const celebrity = parseScenario(readFileSync(DEFAULT_SCENARIO, 'utf8'), DEFAULT_SCENARIO)

const ramp = parseScenario(`
name: ramp
dataset: {users: 100, creators: 2, celebrityFollowers: 50}
drop: {stock: 10, startOffset: 6s, duration: 4s}
phases:
  - name: warm
    duration: 10s
    rates: {browse_product: 100}
    rampTo: {browse_product: 300}
  - name: race
    duration: 30s
    rates: {browse_product: 200, order: 40}
    thresholds: [order.p95 < 500ms, order.count >= 600]
thresholds: [read.p95 < 200ms, browse_product.rate > 95/s, "errors.rate < 1%", "read.p99 < 300ms over 5s"]
`)

/** A transformed scenario must still be one the schema accepts (what a run file stores and reloads). */
const valid = (s: typeof ramp) => expect(ScenarioSchema.safeParse({...s, drop: {...s.drop, startOffset: s.drop.startOffset / 1000, duration: s.drop.duration && s.drop.duration / 1000}, phases: s.phases.map((p) => ({...p, duration: p.duration / 1000})), generator: {...s.generator, timeout: s.generator.timeout / 1000}}).success).toBe(true)

describe('scaleRates', () => {
  it('multiplies every phase rate and ramp end, and nothing of the dataset, drop or timing', () => {
    const s = scaleRates(ramp, 2.5)
    expect(s.phases[0].rates).toEqual({browse_product: 250})
    expect(s.phases[0].rampTo).toEqual({browse_product: 750})
    expect(s.phases[1].rates).toEqual({browse_product: 500, order: 100})
    expect(s.dataset).toEqual(ramp.dataset)
    expect(s.drop).toEqual(ramp.drop)
    expect(s.phases.map((p) => p.duration)).toEqual(ramp.phases.map((p) => p.duration))
    expect(s.generator).toEqual(ramp.generator)
    valid(s)
  })

  it('scales thresholds on achieved rates and counts with the offered load; latency and error shares stay', () => {
    const s = scaleRates(ramp, 2.5)
    expect(s.thresholds).toEqual(['read.p95 < 200ms', 'browse_product.rate > 237.5/s', 'errors.rate < 1%', 'read.p99 < 300ms over 5s'])
    expect(s.phases[1].thresholds).toEqual(['order.p95 < 500ms', 'order.count >= 1500'])
  })

  it('leaves the input untouched and returns it as is at ×1', () => {
    const before = JSON.stringify(ramp)
    scaleRates(ramp, 3)
    expect(JSON.stringify(ramp)).toBe(before)
    expect(scaleRates(ramp, 1)).toBe(ramp)
  })

  it('refuses a scale that is not a positive finite number', () => {
    for (const k of [0, -1, Number.NaN, Infinity]) expect(() => scaleRates(ramp, k)).toThrow(RangeError)
  })

  it('keeps the shipped scenario valid at ×3 (4,500 reads/s at the drop opening)', () => {
    const s = scaleRates(celebrity, 3)
    expect(peakRates(s)).toEqual({phase: 'drop-opens', total: 3 * 1685, read: 4500, order: 450})
    valid(s)
  })
})

describe('compressPhases', () => {
  it('shortens every phase and the drop timing by the same factor, so the drop opens at the same share of the step', () => {
    const s = compressPhases(celebrity, 10)
    expect(scenarioDurationMs(s)).toBe(10_000)
    expect(s.phases.map((p) => p.duration)).toEqual([4000, 3000, 3000])
    // 20 s into 50 s → 4 s into 10 s: the drop opens as its phase starts, inside the step
    expect(s.drop.startOffset).toBe(4000)
    expect(s.drop.startOffset).toBeLessThan(scenarioDurationMs(s))
    expect(s.phases.map((p) => p.rates)).toEqual(celebrity.phases.map((p) => p.rates))
    valid(s)
  })

  it("scales the drop's duration and count thresholds; rate thresholds stay", () => {
    const s = compressPhases(ramp, 8)
    expect(s.phases.map((p) => p.duration)).toEqual([2000, 6000])
    expect(s.drop).toMatchObject({startOffset: 1200, duration: 800})
    expect(s.phases[1].thresholds).toEqual(['order.p95 < 500ms', 'order.count >= 120'])
    expect(s.thresholds).toEqual(ramp.thresholds)
  })

  it('also stretches a scenario shorter than the step', () => {
    const s = compressPhases(ramp, 80)
    expect(scenarioDurationMs(s)).toBe(80_000)
    expect(s.drop.startOffset).toBe(12_000)
  })

  it('refuses --step-seconds that is not > 0 as a usage error', () => {
    expect(() => compressPhases(ramp, 0)).toThrow(UsageError)
    expect(() => compressPhases(ramp, -5)).toThrow(/--step-seconds/)
  })
})

describe('offered rates', () => {
  it('averages the phases over the run, ramps at their mean', () => {
    const r = offeredRates(ramp)
    // warm: mean 200/s for 10 s; race: 200 + 40 for 30 s; over 40 s
    expect(r.byType.browse_product).toBeCloseTo((200 * 10 + 200 * 30) / 40)
    expect(r.order).toBeCloseTo((40 * 30) / 40)
    expect(r.total).toBeCloseTo(r.byType.browse_product + r.order)
  })
  it("takes a ramp's higher end as the peak", () => {
    expect(peakRates(ramp)).toEqual({phase: 'warm', total: 300, read: 300, order: 0})
  })
})
