import {describe, expect, it} from 'vitest'
import {createRandom} from '../../core/random.js'
import {createZipf} from '../../core/random.js'
import {createQtyPicker, createRetryKeys} from './sampling.js'

describe('samplers', () => {
  it('zipf: rank frequencies follow 1/k^s', () => {
    const random = createRandom(5)
    const zipf = createZipf(100, 1.1)
    const counts = new Array(101).fill(0)
    for (let i = 0; i < 200_000; i++) counts[zipf(random)]++
    let h = 0
    for (let k = 1; k <= 100; k++) h += 1 / k ** 1.1
    expect(counts[1] / 200_000).toBeCloseTo(1 / h, 2)
    expect(counts[1] / counts[2]).toBeCloseTo(2 ** 1.1, 0)
    expect(counts[1] / counts[10]).toBeGreaterThan(10)
    expect(counts[0]).toBe(0)
    expect(counts.slice(1).every((c) => c > 0)).toBe(true)
  })

  it('qty follows the weights', () => {
    const random = createRandom(9)
    const pick = createQtyPicker({'1': 0.85, '2': 0.1, '3': 0.05})
    const counts: Record<number, number> = {}
    for (let i = 0; i < 100_000; i++) {
      const q = pick(random)
      counts[q] = (counts[q] ?? 0) + 1
    }
    const n = Object.values(counts).reduce((a, b) => a + b, 0)
    expect(counts[1] / n).toBeCloseTo(0.85, 1)
    expect(counts[3] / n).toBeCloseTo(0.05, 1)
    expect(Object.keys(counts).sort()).toEqual(['1', '2', '3'])
  })

  it('retry keys repeat an earlier key and body at the retry rate', () => {
    const random = createRandom(3)
    const keys = createRetryKeys<number>(0.2, 50)
    let i = 0
    const issued = new Map<string, number>()
    let retries = 0
    for (let j = 0; j < 10_000; j++) {
      const a = keys(random, () => ({key: `k${i}`, value: i++}))
      if (a.retry) {
        retries++
        expect(issued.get(a.key)).toBe(a.value)
      } else issued.set(a.key, a.value)
    }
    expect(retries / 10_000).toBeCloseTo(0.2, 1)
  })
})
