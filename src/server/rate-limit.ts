/**
 * Per-key token buckets: `ratePerSecond` sustained with bursts up to `burst`. In-process, so each
 * serve instance limits on its own (behind a load balancer the effective limit is per instance).
 */
export class RateLimiter {
  private readonly buckets = new Map<string | number, {tokens: number; at: number}>()

  constructor(
    /** Sustained requests per second per key. */
    readonly ratePerSecond: number,
    /** Largest burst per key. */
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a token; returns 0 when allowed, or the seconds until the next token otherwise. */
  take(key: string | number): number {
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (!bucket) {
      bucket = {tokens: this.burst, at: now}
      this.buckets.set(key, bucket)
      if (this.buckets.size > 100_000) this.evictFull(now)
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return (1 - bucket.tokens) / this.ratePerSecond
  }

  /** Forgets keys whose buckets have refilled: they behave exactly like new ones. */
  private evictFull(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.ratePerSecond >= this.burst) this.buckets.delete(key)
    }
  }
}
