import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {planTakes, splitStock, startBucket} from './buckets.js'

describe('buckets (pure)', () => {
  it('splits stock evenly, remainder first', () => {
    expect(splitStock(10, 4)).toEqual([3, 3, 2, 2])
    expect(splitStock(3, 3)).toEqual([1, 1, 1])
    fc.assert(fc.property(fc.integer({min: 1, max: 10_000}), fc.integer({min: 1, max: 64}), (stock, n) => {
      const parts = splitStock(stock, n)
      expect(parts.reduce((a, b) => a + b, 0)).toBe(stock)
      expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1)
    }))
  })

  it('starts a key at a stable bucket in range', () => {
    expect(startBucket(7, 'abc', 16)).toBe(startBucket(7, 'abc', 16))
    const seen = new Set(Array.from({length: 400}, (_, i) => startBucket(i, `k${i}`, 16)))
    expect(seen.size).toBe(16)
  })

  it('plans takes round the ring from the start bucket, or null when the total is short', () => {
    const b = [{bucket: 0, available: 1}, {bucket: 1, available: 0}, {bucket: 2, available: 5}]
    expect(planTakes(b, 3, 0)).toEqual([{bucket: 0, take: 1}, {bucket: 2, take: 2}])
    expect(planTakes(b, 3, 2)).toEqual([{bucket: 2, take: 3}])
    expect(planTakes(b, 7, 1)).toBeNull()
    fc.assert(fc.property(fc.array(fc.nat(5), {minLength: 1, maxLength: 8}), fc.integer({min: 1, max: 30}), fc.nat(7), (avail, qty, start) => {
      const buckets = avail.map((available, bucket) => ({bucket, available}))
      const plan = planTakes(buckets, qty, start % buckets.length)
      const total = avail.reduce((a, c) => a + c, 0)
      if (total < qty) {
        expect(plan).toBeNull()
        return
      }
      expect(plan!.reduce((a, p) => a + p.take, 0)).toBe(qty)
      for (const p of plan!) expect(p.take).toBeLessThanOrEqual(avail[p.bucket])
    }))
  })
})
