/**
 * Samplers request builders use to turn a scenario into traffic (Zipf popularity is createZipf in
 * core/random.ts): the order quantity distribution and Idempotency-Key retries.
 * All take the run's seeded random source, so a seed gives the same traffic.
 */

/** Picks a quantity from the scenario's `order.qty` weights, e.g. {"1": 0.9, "2": 0.1}. */
export function createQtyPicker(weights: Record<string, number>): (random: () => number) => number {
  const entries = Object.entries(weights).map(([q, w]) => [Number(q), w] as const)
  const total = entries.reduce((s, [, w]) => s + w, 0)
  return (random) => {
    let x = random() * total
    for (const [q, w] of entries) if ((x -= w) < 0) return q
    return entries[entries.length - 1][0]
  }
}

/**
 * Idempotency keys for order attempts: with probability `retryRate` an earlier attempt's key (and
 * body) is sent again, as a client retrying after a timeout would; otherwise a fresh key.
 * Remembers the last `memory` attempts. Default memory 1,000.
 */
export function createRetryKeys<T>(retryRate: number, memory = 1000): (random: () => number, fresh: () => {key: string; value: T}) => {key: string; value: T; retry: boolean} {
  const recent: Array<{key: string; value: T}> = []
  let next = 0
  return (random, fresh) => {
    if (recent.length > 0 && random() < retryRate) return {...recent[Math.floor(random() * recent.length)], retry: true}
    const attempt = fresh()
    if (recent.length < memory) recent.push(attempt)
    else recent[next++ % memory] = attempt
    return {...attempt, retry: false}
  }
}
