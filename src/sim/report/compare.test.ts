import {describe, expect, it} from 'vitest'
import {mannWhitneyU, normalCdf, parseTolerance} from './compare.js'

describe('mannWhitneyU', () => {
  it('matches the textbook value for fully separated samples', () => {
    const r = mannWhitneyU([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    expect(r.u).toBe(0)
    // scipy.stats.mannwhitneyu(method='asymptotic', use_continuity=True) gives 0.01219
    expect(r.p).toBeCloseTo(0.01219, 4)
  })

  it('is symmetric and gives p = 1 for identical constant samples', () => {
    expect(mannWhitneyU([6, 7, 8], [1, 2, 3]).p).toBeCloseTo(mannWhitneyU([1, 2, 3], [6, 7, 8]).p, 12)
    expect(mannWhitneyU([5, 5, 5, 5], [5, 5, 5]).p).toBe(1)
  })

  it('handles ties: interleaved samples are not significant', () => {
    expect(mannWhitneyU([1, 2, 2, 3, 4, 4], [1, 2, 3, 3, 4, 5]).p).toBeGreaterThan(0.5)
  })
})

describe('normalCdf', () => {
  it('agrees with known quantiles', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7)
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6)
    expect(normalCdf(-2.575829)).toBeCloseTo(0.005, 6)
  })
})

describe('parseTolerance', () => {
  it('reads percentages and fractions', () => {
    expect(parseTolerance('10%')).toBeCloseTo(0.1)
    expect(parseTolerance('0.05')).toBeCloseTo(0.05)
    expect(parseTolerance('15')).toBeCloseTo(0.15)
    expect(() => parseTolerance('ten')).toThrow(/--tolerance/)
  })
})
