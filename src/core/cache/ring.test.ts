import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {hash32} from '../hash.js'
import {BoundedLoads, HashRing} from './ring.js'

const keys = (n: number, prefix = 'product:') => Array.from({length: n}, (_, i) => `${prefix}${i}`)
const names = (n: number) => Array.from({length: n}, (_, i) => `node-${i}`)

function stats(xs: number[]): {mean: number; cv: number} {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length)
  return {mean, cv: sd / mean}
}

describe('hash32', () => {
  it('is deterministic, unsigned 32-bit and spreads neighbouring keys', () => {
    expect(hash32('product:1')).toBe(hash32('product:1'))
    const hs = keys(10_000).map(hash32)
    expect(hs.every((h) => Number.isInteger(h) && h >= 0 && h < 2 ** 32)).toBe(true)
    expect(new Set(hs).size).toBeGreaterThan(9_990)
    // top bit set about half the time: no clustering of sequential keys
    const high = hs.filter((h) => h >= 2 ** 31).length / hs.length
    expect(high).toBeGreaterThan(0.47)
    expect(high).toBeLessThan(0.53)
  })
})

describe('HashRing', () => {
  it('looks keys up deterministically, independent of the order nodes were added', () => {
    const a = new HashRing(names(5))
    const b = new HashRing([...names(5)].reverse())
    for (const k of keys(2000)) expect(a.lookup(k)).toBe(b.lookup(k))
    expect(() => new HashRing().lookup('x')).toThrow(/no nodes/)
  })

  it('adding a node moves about 1/(n+1) of keys, all of them to the new node', () => {
    const ks = keys(100_000)
    for (const n of [4, 10]) {
      const ring = new HashRing(names(n))
      const before = ks.map((k) => ring.lookup(k))
      ring.add('node-new')
      let moved = 0
      let elsewhere = 0
      ks.forEach((k, i) => {
        const now = ring.lookup(k)
        if (now !== before[i]) {
          moved++
          if (now !== 'node-new') elsewhere++
        }
      })
      expect(elsewhere).toBe(0)
      const expected = 1 / (n + 1)
      // ±3 standard deviations of the new node's share (~1/√160 relative)
      expect(Math.abs(moved / ks.length - expected)).toBeLessThan(expected * 0.25)
    }
  })

  it('removing a node moves exactly its keys, about 1/n of them', () => {
    const ks = keys(100_000)
    const ring = new HashRing(names(8))
    const before = ks.map((k) => ring.lookup(k))
    ring.remove('node-3')
    let moved = 0
    let wrong = 0
    ks.forEach((k, i) => {
      const changed = ring.lookup(k) !== before[i]
      if (changed) moved++
      if (changed !== (before[i] === 'node-3')) wrong++
    })
    expect(wrong).toBe(0)
    expect(Math.abs(moved / ks.length - 1 / 8)).toBeLessThan((1 / 8) * 0.25)
    expect(ring.remove('node-3')).toBe(false)
  })

  it('spreads shares with a coefficient of variation close to 1/√vnodes', () => {
    for (const vnodes of [10, 40, 160, 640]) {
      const ring = new HashRing(names(64), {vnodes})
      const shares = ring.arcShares()
      expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9)
      const {cv} = stats(shares)
      const theory = 1 / Math.sqrt(vnodes)
      expect(cv).toBeGreaterThan(theory * 0.7)
      expect(cv).toBeLessThan(theory * 1.3)
    }
  })

  it('key counts follow the arc shares', () => {
    const ring = new HashRing(names(6))
    const counts = new Map<string, number>()
    const ks = keys(60_000)
    for (const k of ks) counts.set(ring.lookup(k), (counts.get(ring.lookup(k)) ?? 0) + 1)
    ring.arcShares().forEach((share, i) => expect(Math.abs((counts.get(ring.nodes[i]) ?? 0) / ks.length - share)).toBeLessThan(0.01))
  })

  it('successors are distinct, start at the owner and follow the ring after a removal', () => {
    const ring = new HashRing(names(5))
    for (const k of keys(500)) {
      const s = ring.successors(k, 3)
      expect(new Set(s).size).toBe(3)
      expect(s[0]).toBe(ring.lookup(k))
      const smaller = new HashRing(names(5))
      smaller.remove(s[0])
      // where a key goes when its owner leaves is the second successor
      expect(smaller.lookup(k)).toBe(s[1])
    }
    expect(ring.successors('x', 99)).toHaveLength(5)
  })
})

describe('BoundedLoads', () => {
  it('never puts more than ⌈(1+ε)·m/n⌉ balls on a node, and each ball on the first node clockwise with room', () => {
    fc.assert(
      fc.property(
        fc.integer({min: 1, max: 12}),
        fc.integer({min: 1, max: 100}), // ε in hundredths
        fc.array(fc.string({maxLength: 8}), {minLength: 1, maxLength: 400}),
        fc.integer({min: 1, max: 50}),
        (n, epsHundredths, ballKeys, vnodes) => {
          const ring = new HashRing(names(n), {vnodes})
          const bounded = new BoundedLoads(ring, epsHundredths / 100)
          ballKeys.forEach((k, idx) => {
            const m = idx + 1
            // exact integer arithmetic for the cap: ⌈(100+e)·m / (100·n)⌉
            const cap = Math.ceil(((100 + epsHundredths) * m) / (100 * n))
            const before = Float64Array.from(bounded.loads)
            const at = ring.nodes.indexOf(bounded.assign(k))
            expect(before[at]).toBeLessThan(cap)
            // every node walked past on the way was full
            for (const i of ring.walkIndexes(hash32(k))) {
              if (i === at) break
              expect(before[i]).toBeGreaterThanOrEqual(cap)
            }
          })
          const m = ballKeys.length
          const cap = Math.ceil(((100 + epsHundredths) * m) / (100 * n))
          expect(Math.max(...bounded.loads)).toBeLessThanOrEqual(cap)
          expect(bounded.loads.reduce((a, b) => a + b, 0)).toBe(m)
        },
      ),
      {numRuns: 300},
    )
  })

  it('spreads a single hot key over the ring instead of piling it on one node', () => {
    const ring = new HashRing(names(8))
    const bounded = new BoundedLoads(ring, 0.25)
    for (let i = 0; i < 8000; i++) bounded.assign('celebrity-product')
    // every node near the cap ⌈1.25·1000⌉ or filled by the walk; none above it
    expect(Math.max(...bounded.loads)).toBeLessThanOrEqual(1250)
    expect(bounded.loads.filter((l) => l > 0).length).toBeGreaterThanOrEqual(7)
    bounded.release(0)
    expect(bounded.balls).toBe(7999)
  })
})
