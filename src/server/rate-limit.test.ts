import {describe, expect, it} from 'vitest'
import {RateLimiter} from './rate-limit.js'

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    let t = 0
    const limiter = new RateLimiter(10, 3, () => t)
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0])
    expect(limiter.take('a')).toBeCloseTo(0.1)
    expect(limiter.take('b')).toBe(0)
    t += 100
    expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBeGreaterThan(0)
  })
})
