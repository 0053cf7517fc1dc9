import {describe, expect, it} from 'vitest'
import {simulateRing} from './simulate.js'

describe('simulateRing', () => {
  it('reports shares that sum to 1 and a spread close to 1/√vnodes', () => {
    const r = simulateRing({nodes: 16, vnodes: 100, keys: 100_000})
    const sum = (f: 'keys' | 'requests' | 'boundedKeys' | 'boundedRequests') => r.shares.reduce((a, s) => a + s[f], 0)
    for (const f of ['keys', 'requests', 'boundedKeys', 'boundedRequests'] as const) expect(sum(f)).toBeCloseTo(1, 9)
    expect(r.spread.keys.cv).toBeGreaterThan(r.expectedCv * 0.6)
    expect(r.spread.keys.cv).toBeLessThan(r.expectedCv * 1.4)
    // bounded loads cap every node at ⌈1.25·average⌉
    expect(r.spread.boundedRequests.maxOverAvg).toBeLessThanOrEqual(1.25 + 16 / 100_000)
    expect(r.failure).toBeUndefined()
  })

  it('measures keys moved by adding and by removing nodes near the ideal', () => {
    const add = simulateRing({nodes: 8, keys: 100_000, add: 2})
    expect(add.moved!.expected).toBeCloseTo(0.2, 9)
    expect(Math.abs(add.moved!.plain - 0.2)).toBeLessThan(0.04)
    const remove = simulateRing({nodes: 8, keys: 100_000, remove: 1})
    expect(Math.abs(remove.moved!.plain - 1 / 8)).toBeLessThan(0.03)
  })

  it('shows the domino effect under Zipf skew: plain hashing collapses where bounded loads hold', () => {
    const r = simulateRing({nodes: 8, keys: 200_000, zipf: 1.1, fail: 1, cascade: true, capacity: 1.5})
    // the hottest key alone is over a tenth of all requests: its node overflows under plain hashing
    expect(r.hottestKeyShare).toBeGreaterThan(0.1)
    expect(r.failure!.plain.survivors).toBeLessThan(4)
    expect(r.failure!.plain.rounds).toBeGreaterThan(0)
    // bounded: ⌈1.25·R/7⌉ < 1.5·R/8, so the seven survivors stay under capacity
    expect(r.failure!.bounded.survivors).toBe(7)
    expect(r.failure!.bounded.peakLoadOverCapacity).toBeLessThanOrEqual(1)
    expect(r.failure!.bounded.failed).toEqual(r.failure!.plain.failed.slice(0, 1))
  })

  it('without --cascade applies only the initial failures', () => {
    const r = simulateRing({nodes: 4, keys: 20_000, zipf: 1.1, fail: 2, capacity: 1.1})
    expect(r.failure!.plain.failed).toHaveLength(2)
    expect(r.failure!.plain.survivors).toBe(2)
    expect(r.failure!.plain.rounds).toBe(0)
  })

  it('is deterministic and rejects impossible options', () => {
    expect(simulateRing({keys: 5000, zipf: 1.2, seed: 3})).toEqual(simulateRing({keys: 5000, zipf: 1.2, seed: 3}))
    expect(() => simulateRing({nodes: 2, remove: 2})).toThrow(/at least one/)
    expect(() => simulateRing({bounded: 0})).toThrow(/bounded/)
  })
})
