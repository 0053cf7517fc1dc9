/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence everywhere. */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [min, max], inclusive. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1))
}

/**
 * Ranks 1..n with P(k) ∝ 1/k^exponent, drawn by binary search over the cumulative weights.
 * @example createZipf(1000, 1.1)(random) → 1 about 13% of the time, 1000 rarely
 */
export function createZipf(n: number, exponent: number): (random: () => number) => number {
  if (!(n >= 1)) throw new RangeError(`zipf needs n ≥ 1, got ${n}`)
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** exponent
  for (let i = 0; i < n; i++) cdf[i] /= sum
  return (random) => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    return lo + 1
  }
}
