import {describe, expect, it} from 'vitest'
import {UsageError} from '../../core/errors.js'
import type {CapacityStep} from '../capacity/result.js'
import type {CpuReport} from '../metrics/cpu.js'
import {parseScenario} from '../scenario/loader.js'
import {calibrateCeiling, calibratedCosts, calibrationFrom, checkLines, chooseCeiling, completeCosts, DEFAULT_CEILING, errorPct, otherCores, peakMix, predictAtCeiling, type PlanCheck} from './check.js'

const COSTS = {serve: {read: 1, order: 4, write: null}, postgres: {read: 0.5, order: 2, write: null}}
const MIX = {read: 100, order: 50, write: 0}
const TWO_CORES = {cores: 2, serveProcesses: 1}

describe('plan --check: the prediction at a ceiling (hand-computed)', () => {
  it('the machine limits when serve is cheap: ceiling × cores ÷ Σ demand', () => {
    // serve 0.1 × 100/1000 + 0.4 × 50/1000 = 0.03 cores; postgres (1 × 100 + 4 × 50) ÷ 1000 = 0.3; Σ 0.33
    const p = predictAtCeiling({serve: {read: 0.1, order: 0.4, write: null}, postgres: {read: 1, order: 4, write: null}}, MIX, 0.8, TWO_CORES)
    expect(p.limitedBy).toBe('machine')
    expect(p.scale).toBeCloseTo((0.8 * 2) / 0.33, 10)
    expect(p.limits.serve).toBeCloseTo(0.8 / 0.03, 10)
    expect(p.reqPerSec).toBeCloseTo(((0.8 * 2) / 0.33) * 150, 8)
  })

  it('one serve process limits when it carries most of the demand: ceiling × processes ÷ serve demand', () => {
    // serve 0.3 cores, Σ 0.45: machine 0.8 × 2 ÷ 0.45 = 3.56, serve 0.8 × 1 ÷ 0.3 = 2.67
    const p = predictAtCeiling(COSTS, MIX, 0.8, TWO_CORES)
    expect(p.limitedBy).toBe('serve')
    expect(p.scale).toBeCloseTo(0.8 / 0.3, 10)
    expect(p.limits.machine).toBeCloseTo(1.6 / 0.45, 10)
    // two serve processes lift it to the machine's limit
    expect(predictAtCeiling(COSTS, MIX, 0.8, {cores: 2, serveProcesses: 2})).toMatchObject({limitedBy: 'machine', scale: expect.closeTo(1.6 / 0.45, 10)})
  })

  it('a component with no costs is not a limit (serve unmeasured: only the machine)', () => {
    const p = predictAtCeiling({postgres: COSTS.postgres}, MIX, 0.5, TWO_CORES)
    expect(p).toMatchObject({limitedBy: 'machine', limits: {serve: null}})
    expect(p.scale).toBeCloseTo(1 / 0.15, 10)
  })
})

describe('plan --check: the ceiling calibration', () => {
  it('the utilisation of the binding limit at the measured capacity', () => {
    // serve binds: at ×2 it spends 2 × 0.3 = 0.6 of its one core
    expect(calibrateCeiling(COSTS, MIX, 2, TWO_CORES)).toBeCloseTo(0.6, 10)
    // machine binds (4 serve processes): at ×3, 3 × 0.45 = 1.35 of 2 cores
    expect(calibrateCeiling(COSTS, MIX, 3, {cores: 2, serveProcesses: 4})).toBeCloseTo(0.675, 10)
  })

  it('predicting the calibration mix at its own ceiling gives its measured capacity back', () => {
    for (const k of [0.37, 1, 2.5]) {
      const u = calibrateCeiling(COSTS, MIX, k, TWO_CORES)
      expect(predictAtCeiling(COSTS, MIX, u, TWO_CORES).scale).toBeCloseTo(k, 10)
    }
  })

  it('carries over to another mix by the costs: an order-heavier mix is predicted lower', () => {
    const u = calibrateCeiling(COSTS, MIX, 2, TWO_CORES)
    // serve demand of 100 reads + 150 orders = 0.1 + 0.6 = 0.7 cores: 0.6 ÷ 0.7
    expect(predictAtCeiling(COSTS, {read: 100, order: 150, write: 0}, u, TWO_CORES).scale).toBeCloseTo(0.6 / 0.7, 10)
  })

  it('refuses a capacity that is not a positive finite scale, and costs with no demand', () => {
    expect(() => calibrateCeiling(COSTS, MIX, 0, TWO_CORES)).toThrow(RangeError)
    expect(() => calibrateCeiling(COSTS, MIX, Infinity, TWO_CORES)).toThrow(RangeError)
    expect(() => calibrateCeiling(COSTS, {read: 0, order: 0, write: 0}, 1, TWO_CORES)).toThrow(/no CPU demand/)
  })

  it('chooseCeiling: the documented default without a calibration, else the calibrated one with its source', () => {
    expect(chooseCeiling(COSTS, TWO_CORES, null)).toMatchObject({value: DEFAULT_CEILING, source: 'default'})
    const c = chooseCeiling(COSTS, TWO_CORES, {file: 'cap.json', scale: 2, mix: MIX, atLeast: true, serveProcesses: 1, cores: null})
    expect(c).toMatchObject({value: expect.closeTo(0.6, 10), source: 'calibrated', calibration: {scale: 2, atLeast: true}})
    expect(c.from).toMatch(/×2 \(a lower bound\) of cap\.json/)
  })

  it("the calibration mix's cores, when its file names them, decide its ceiling", () => {
    // 4 serve processes so the machine binds: at ×3, 1.35 cores of 4 instead of 2
    const c = chooseCeiling(COSTS, TWO_CORES, {file: 'cap.json', scale: 3, mix: MIX, atLeast: false, serveProcesses: 4, cores: 4})
    expect(c.value).toBeCloseTo(1.35 / 4, 10)
  })

  it("calibratedCosts: every cost × 0.8 ÷ the implied ceiling, so the default ceiling gives the measured capacity back", () => {
    const run = {components: {...COSTS, generator: {read: 0.2, order: null, write: null}, redis: null}, method: 'fit' as const, intervals: 9, notes: {}}
    // serve binds; with the generator's 0.02 cores the machine does not: at ×2 serve spends 0.6 of its core
    const {costs, calibration} = calibratedCosts(run, {file: 'cap.json', scale: 2, mix: MIX, atLeast: false, serveProcesses: 1, cores: 2}, 8)
    expect(calibration).toEqual({file: 'cap.json', scale: 2, atLeast: false, ceiling: 0.6, factor: expect.closeTo(0.8 / 0.6, 3)})
    expect(costs.components.serve).toEqual({read: expect.closeTo(4 / 3, 3), order: expect.closeTo(16 / 3, 3), write: null})
    expect(costs.components.redis).toBeNull()
    expect(costs).toMatchObject({method: 'fit', intervals: 9})
    const k = predictAtCeiling(completeCosts(costs, MIX, []), MIX, DEFAULT_CEILING, TWO_CORES).scale
    expect(k).toBeCloseTo(2, 3)
  })

  it('checkLines says when a check is not calibrated, and what the default would have said when it is', () => {
    const check = {
      run: {name: 'costs', scale: 0.3},
      costs: {method: 'fit', intervals: 40},
      scenario: {name: 'mix', scale: 0.3},
      mix: {phase: 'burst', read: 100, order: 50, write: 0, total: 150},
      limits: TWO_CORES,
      ceiling: chooseCeiling(COSTS, TWO_CORES, null),
      predicted: {...predictAtCeiling(COSTS, MIX, DEFAULT_CEILING, TWO_CORES), atDefaultCeiling: {scale: 2.67, reqPerSec: 400}},
      measured: {scale: 8, reqPerSec: 1200, atLeast: false, limitedBy: 'read.p95'},
      errorPct: -66.7,
      withinGoal: false,
      machine: {loadBefore: [1, 1, 1], loadAfter: [1, 1, 1], otherCores: 0},
      assumed: [],
    } as unknown as PlanCheck
    expect(checkLines(check).join('\n')).toMatch(/^Not calibrated: .*--calibrate CAP\.json/m)
    const calibrated = {...check, ceiling: chooseCeiling(COSTS, TWO_CORES, {file: 'cap.json', scale: 8, mix: MIX, atLeast: false, serveProcesses: 1, cores: 2})}
    const text = checkLines(calibrated).join('\n')
    expect(text).not.toMatch(/Not calibrated/)
    expect(text).toMatch(/^At the default 80% ceiling it would have predicted ×2\.67\./m)
  })

  it('calibrationFrom reads a capacity result (write = total − read − order) or a check, and refuses the rest', () => {
    const cap = {kind: 'livedrop-capacity', capacity: 1.5, atLeast: false, base: {phase: 'burst', total: 1685, read: 1500, order: 150}}
    expect(calibrationFrom(cap, 'cap.json')).toEqual({file: 'cap.json', scale: 1.5, mix: {read: 1500, order: 150, write: 35}, atLeast: false, serveProcesses: 1, cores: null})
    // the machine's cores come from the first step that measured them
    const steps = [{scale: 1, data: {cpu: null}}, {scale: 2, data: {cpu: {machine: {cores: 4}}}}]
    expect(calibrationFrom({...cap, steps}, 'cap.json').cores).toBe(4)
    const check = {kind: 'livedrop-plan-check', measured: {scale: 0.75, atLeast: false}, mix: {phase: 'p', read: 10, order: 5, write: 1, total: 16}, limits: {cores: 2, serveProcesses: 3}}
    expect(calibrationFrom(check, 'c.json')).toEqual({file: 'c.json', scale: 0.75, mix: {read: 10, order: 5, write: 1}, atLeast: false, serveProcesses: 3, cores: 2})
    expect(() => calibrationFrom({...cap, capacity: null}, 'cap.json')).toThrow(UsageError)
    expect(() => calibrationFrom({kind: 'livedrop-run'}, 'run.json')).toThrow(/neither a capacity result nor a plan check/)
  })
})

describe('plan --check: inputs and figures', () => {
  it('peakMix: the busiest phase per group, ramps at their higher end', () => {
    const s = parseScenario(`
name: m
dataset: {users: 10, creators: 1, celebrityFollowers: 5}
drop: {stock: 10, startOffset: 1s}
phases:
  - {name: calm, duration: 5s, rates: {browse_product: 100, follow: 5}}
  - {name: burst, duration: 5s, rates: {browse_drop: 100, order: 20, unfollow: 2}, rampTo: {browse_drop: 300}}
`)
    expect(peakMix(s)).toEqual({phase: 'burst', read: 300, order: 20, write: 2, total: 322})
  })

  it('completeCosts: a group the mix sends but the run did not cost gets the mean of the others, noted', () => {
    const assumed: string[] = []
    const out = completeCosts({components: {serve: {read: 1, order: 3, write: null}, postgres: null}, method: 'fit', intervals: 10, notes: {}}, {read: 1, order: 1, write: 1}, assumed)
    expect(out).toEqual({serve: {read: 1, order: 3, write: 2}})
    expect(assumed).toEqual([expect.stringMatching(/serve CPU per 1,000 write requests: .*\(2 CPU-s\)/)])
    // a group the mix does not send stays unmeasured, silently
    expect(completeCosts({components: {serve: {read: 1, order: 3, write: null}}, method: 'fit', intervals: 10, notes: {}}, {read: 1, order: 1, write: 0}, [])).toEqual({serve: {read: 1, order: 3, write: null}})
  })

  it('errorPct: (predicted − measured) ÷ measured; null without a measured capacity', () => {
    expect(errorPct(1.2, 1)).toBeCloseTo(20, 10)
    expect(errorPct(0.75, 1)).toBeCloseTo(-25, 10)
    expect(errorPct(1, null)).toBeNull()
    expect(errorPct(Infinity, 1)).toBeNull()
  })

  it("otherCores: the machine's busy cores less the stack's, weighted by step length", () => {
    const cpu = (durationS: number, busy: number, parts: Record<string, number | null>): CpuReport => ({
      intervalMs: 1000,
      startedAt: '2026-12-02T00:00:00Z',
      durationS,
      t: [],
      components: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, {cpuSeconds: v === null ? null : v * durationS, meanCores: v, peakCores: v, series: null}])),
      machine: {cores: 2, meanBusyCores: busy, idleShare: 1 - busy / 2, busySeries: [], idleShareSeries: []},
    })
    const step = (c: CpuReport | null) => ({data: {cpu: c}}) as unknown as CapacityStep
    // (1.5 − 1.0) × 10 s and (2 − 0.5) × 30 s over 40 s = (5 + 45) ÷ 40
    expect(otherCores([step(cpu(10, 1.5, {server: 0.6, database: 0.4, generator: null})), step(cpu(30, 2, {server: 0.5})), step(null)])).toBeCloseTo(1.25, 3)
    expect(otherCores([step(null)])).toBeNull()
  })
})
