import {describe, expect, it} from 'vitest'
import {createArrivals, createSchedule, expectedArrivals, meanRate, phaseTypes, type Arrival, type LoadPhase} from './arrivals.js'

function drain<T>(next: () => T | null): T[] {
  const out: T[] = []
  for (let x = next(); x !== null; x = next()) out.push(x)
  return out
}

describe('arrival processes', () => {
  it('constant: evenly spaced, exactly rate × duration, inside the window', () => {
    const ts = drain(createArrivals('constant', 200, 1000, 3000, 1))
    expect(ts.length).toBe(400)
    expect(ts[0]).toBe(1000)
    expect(ts.at(-1)).toBeCloseTo(2995, 6)
    for (let i = 1; i < ts.length; i++) expect(ts[i] - ts[i - 1]).toBeCloseTo(5, 9)
  })

  it('constant: no drift over a million sends', () => {
    const ts = drain(createArrivals('constant', 3, 0, 1000 * 1_000_000 / 3, 1))
    expect(ts.length).toBe(1_000_000)
    expect(ts[999_999]).toBeCloseTo((999_999 * 1000) / 3, 3)
  })

  it('poisson: seeded, mean rate right, gaps exponential (mean = sd)', () => {
    const a = drain(createArrivals('poisson', 1000, 0, 60_000, 42))
    expect(drain(createArrivals('poisson', 1000, 0, 60_000, 42))).toEqual(a)
    expect(drain(createArrivals('poisson', 1000, 0, 60_000, 43))).not.toEqual(a)
    // 60,000 expected; a Poisson count's sd is √60000 ≈ 245
    expect(Math.abs(a.length - 60_000)).toBeLessThan(1000)
    const gaps = a.slice(1).map((t, i) => t - a[i])
    const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length
    const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length)
    expect(mean).toBeCloseTo(1, 1)
    expect(sd / mean).toBeGreaterThan(0.95)
    expect(sd / mean).toBeLessThan(1.05)
    // memoryless: about e^-1 of gaps are longer than the mean
    expect(gaps.filter((g) => g > mean).length / gaps.length).toBeCloseTo(Math.exp(-1), 1)
    expect(a.every((t) => t >= 0 && t < 60_000)).toBe(true)
  })

  it('a zero rate sends nothing', () => {
    expect(createArrivals('poisson', 0, 0, 1000, 1)()).toBeNull()
  })
})

describe('createSchedule', () => {
  it('merges the types of each phase in time order, phase after phase', () => {
    const all = drain(
      createSchedule(
        [
          {name: 'a', durationMs: 1000, arrival: 'constant', rates: {x: 10, y: 4, z: 0}},
          {name: 'b', durationMs: 500, arrival: 'poisson', rates: {z: 100}},
        ],
        7,
      ),
    )
    const count = (f: (a: Arrival) => boolean) => all.filter(f).length
    expect(count((a) => a.phase === 0 && a.type === 'x')).toBe(10)
    expect(count((a) => a.phase === 0 && a.type === 'y')).toBe(4)
    expect(count((a) => a.phase === 0 && a.type === 'z')).toBe(0)
    expect(count((a) => a.phase === 1)).toBeGreaterThan(20)
    for (let i = 1; i < all.length; i++) expect(all[i].t).toBeGreaterThanOrEqual(all[i - 1].t)
    expect(all.filter((a) => a.phase === 1).every((a) => a.t >= 1000 && a.t < 1500 && a.type === 'z')).toBe(true)
  })

  it('adding a type does not move the other types’ Poisson times', () => {
    const times = (rates: Record<string, number>) =>
      drain(createSchedule([{name: 'p', durationMs: 2000, arrival: 'poisson', rates}], 3))
        .filter((a) => a.type === 'x')
        .map((a) => a.t)
    expect(times({x: 50})).toEqual(times({w: 20, x: 50}))
  })
})

/** Sends per second of the window [startMs, startMs + seconds s). */
const perSecond = (ts: number[], startMs: number, seconds: number) => {
  const counts = new Array<number>(seconds).fill(0)
  for (const t of ts) counts[Math.floor((t - startMs) / 1000)]++
  return counts
}

describe('linear ramps (rampTo)', () => {
  // up from 0, up from a base, down to 0, down to a floor
  const ramps: Array<[number, number]> = [
    [0, 400],
    [100, 1000],
    [600, 0],
    [500, 50],
  ]

  it('constant arrival: every second holds the integral of the ramp over it, within one send, and the running total never strays by one', () => {
    const D = 20
    for (const [r0, r1] of ramps) {
      const ts = drain(createArrivals('constant', r0, 5000, 5000 + D * 1000, 1, r1))
      const counts = perSecond(ts, 5000, D)
      counts.forEach((n, s) => expect(Math.abs(n - (expectedArrivals(r0, r1, D, s + 1) - expectedArrivals(r0, r1, D, s))), `${r0}→${r1} second ${s}`).toBeLessThan(1))
      for (const [k, t] of ts.entries()) expect(Math.abs(k - expectedArrivals(r0, r1, D, (t - 5000) / 1000))).toBeLessThan(1e-6)
      expect(ts.length).toBe(Math.ceil(expectedArrivals(r0, r1, D, D)))
      for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeGreaterThan(ts[i - 1])
    }
  })

  it('poisson arrival: per-second counts follow the integral (a non-homogeneous Poisson process), seeded', () => {
    const D = 30
    for (const [r0, r1] of ramps) {
      const ts = drain(createArrivals('poisson', r0, 0, D * 1000, 42, r1))
      expect(drain(createArrivals('poisson', r0, 0, D * 1000, 42, r1))).toEqual(ts)
      const counts = perSecond(ts, 0, D)
      let chi = 0
      counts.forEach((n, s) => {
        const expected = expectedArrivals(r0, r1, D, s + 1) - expectedArrivals(r0, r1, D, s)
        // a Poisson count's sd is √expected: 5 sd (and 3 sends) leave no room for a wrong rate curve
        expect(Math.abs(n - expected), `${r0}→${r1} second ${s}`).toBeLessThan(5 * Math.sqrt(expected) + 3)
        if (expected > 5) chi += (n - expected) ** 2 / expected
      })
      // the seconds together: χ² with ~30 degrees of freedom stays well under 60
      expect(chi).toBeLessThan(60)
      const total = expectedArrivals(r0, r1, D, D)
      expect(Math.abs(ts.length - total)).toBeLessThan(4 * Math.sqrt(total))
    }
  })

  it('a flat rampTo is the plain rate; a ramp to a higher rate is not', () => {
    expect(drain(createArrivals('poisson', 200, 0, 5000, 3, 200))).toEqual(drain(createArrivals('poisson', 200, 0, 5000, 3)))
    const flat = perSecond(drain(createArrivals('constant', 100, 0, 10_000, 1)), 0, 10)
    const ramp = perSecond(drain(createArrivals('constant', 100, 0, 10_000, 1, 300)), 0, 10)
    expect(flat).toEqual(new Array(10).fill(100))
    expect(ramp[0]).toBe(110)
    expect(ramp[9]).toBe(290)
  })

  it('the schedule sends a type that only appears in rampTo, and a type missing from rampTo keeps its rate', () => {
    const phase = {name: 'open', durationMs: 10_000, arrival: 'constant' as const, rates: {browse_product: 100, order: 0}, rampTo: {order: 50}}
    expect(phaseTypes(phase)).toEqual(['browse_product', 'order'])
    expect(meanRate(phase, 'order')).toBe(25)
    expect(meanRate(phase, 'browse_product')).toBe(100)
    const next = createSchedule([phase], 1)
    const all: Array<{t: number; type: string}> = []
    for (let a = next(); a !== null; a = next()) all.push(a)
    const orders = perSecond(all.filter((a) => a.type === 'order').map((a) => a.t), 0, 10)
    expect(orders.reduce((s, n) => s + n, 0)).toBe(250)
    expect(orders[0]).toBeLessThan(orders[9])
    expect(all.filter((a) => a.type === 'browse_product')).toHaveLength(1000)
  })
})

describe('segments of one schedule (--segment i/n)', () => {
  // two phases, Poisson with a ramp and a constant one, several types at uneven rates
  const phases: LoadPhase[] = [
    {name: 'warm', durationMs: 4000, arrival: 'poisson', rates: {browse_product: 120, order: 10}, rampTo: {order: 90}},
    {name: 'peak', durationMs: 3000, arrival: 'constant', rates: {browse_product: 333, order: 47, follow: 5}},
  ]
  const key = (a: Arrival) => `${a.phase}/${a.type}/${a.t}`
  const perSecond = (all: Arrival[]) => {
    const m = new Map<string, number>()
    for (const a of all) m.set(`${Math.floor(a.t / 1000)}/${a.type}`, (m.get(`${Math.floor(a.t / 1000)}/${a.type}`) ?? 0) + 1)
    return m
  }

  for (const n of [2, 3, 7]) {
    it(`${n} segments send every arrival of the whole schedule exactly once, each ⌊m/n⌋ or ⌈m/n⌉ of a second's m arrivals of a type`, () => {
      const whole = drain(createSchedule(phases, 11))
      const parts = Array.from({length: n}, (_, i) => drain(createSchedule(phases.map((p) => ({...p, segment: {index: i + 1, count: n}})), 11)))
      // the same times, never shifted: the union is the whole schedule, and no arrival is in two segments
      expect(parts.flat().map(key).sort()).toEqual(whole.map(key).sort())
      expect(new Set(parts.flat().map(key)).size).toBe(whole.length)
      const wholeCounts = perSecond(whole)
      for (const part of parts) {
        for (let i = 1; i < part.length; i++) expect(part[i].t).toBeGreaterThanOrEqual(part[i - 1].t)
        const counts = perSecond(part)
        for (const [k, total] of wholeCounts) {
          const mine = counts.get(k) ?? 0
          // a second's arrivals of one stream are consecutive ones: round-robin gives ⌊m/n⌋ or ⌈m/n⌉
          expect([Math.floor(total / n), Math.ceil(total / n)], `${k} of a segment of ${n}`).toContain(mine)
        }
      }
    })
  }

  it('1/1 is the whole schedule, and a segment\'s target rate is its share', () => {
    const whole = drain(createSchedule(phases, 5))
    expect(drain(createSchedule(phases.map((p) => ({...p, segment: {index: 1, count: 1}})), 5))).toEqual(whole)
    expect(meanRate({...phases[0], segment: {index: 2, count: 4}}, 'order')).toBe(12.5)
    expect(meanRate(phases[0], 'order')).toBe(50)
  })

  it('the split can fail: segments of another seed are not pieces of this schedule', () => {
    const whole = drain(createSchedule(phases, 11))
    const other = [1, 2].flatMap((i) => drain(createSchedule(phases.map((p) => ({...p, segment: {index: i, count: 2}})), 12)))
    expect(other.map(key).sort()).not.toEqual(whole.map(key).sort())
  })
})
