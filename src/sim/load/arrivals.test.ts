import {describe, expect, it} from 'vitest'
import {createArrivals, createSchedule, type Arrival} from './arrivals.js'

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
