import {describe, expect, it} from 'vitest'
import {LatencyHistogram} from './histogram.js'

describe('LatencyHistogram', () => {
  it('reports percentiles in ms within HDR precision', () => {
    const h = new LatencyHistogram()
    for (let i = 1; i <= 1000; i++) h.recordMs(i)
    expect(h.count).toBe(1000)
    expect(h.percentileMs(50)).toBeCloseTo(500, -1)
    expect(h.percentileMs(99)).toBeCloseTo(990, -1)
    expect(h.maxMs).toBeCloseTo(1000, 0)
  })

  it('merges exactly: two halves equal the whole, through encode/decode', () => {
    const whole = new LatencyHistogram()
    const a = new LatencyHistogram()
    const b = new LatencyHistogram()
    for (let i = 0; i < 5000; i++) {
      const ms = ((i * 7919) % 2000) / 3
      whole.recordMs(ms)
      ;(i % 2 ? a : b).recordMs(ms)
    }
    const merged = LatencyHistogram.decode(a.encode())
    merged.add(LatencyHistogram.decode(b.encode()))
    expect(merged.summary()).toEqual(whole.summary())
  })

  it('coarse: percentiles within ~1%, merges with coarse ones', () => {
    const a = LatencyHistogram.coarse()
    const b = LatencyHistogram.coarse()
    for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).recordMs(i)
    a.add(b)
    expect(a.count).toBe(1000)
    expect(Math.abs(a.percentileMs(99) - 990) / 990).toBeLessThan(0.01)
    expect(Math.abs(a.percentileMs(50) - 500) / 500).toBeLessThan(0.01)
  })
})
