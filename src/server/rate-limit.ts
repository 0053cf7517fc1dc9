import type {Redis} from 'ioredis'
import {withTimeout} from '../core/redis.js'

/** Takes a token for a key: 0 when the request may go on, or the seconds until the next token. */
export interface Limiter {
  take(key: string | number): number | Promise<number>
}

/**
 * Per-key token buckets: `ratePerSecond` sustained with bursts up to `burst`. In-process, so each
 * serve process (and each worker of `serve --workers N`) limits on its own: behind a balancer the
 * effective limit is per process. RedisRateLimiter shares the buckets.
 */
export class RateLimiter implements Limiter {
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

/**
 * The same token bucket kept in Redis (one hash per key, refilled by the server's clock inside
 * one script), so every serve process and worker on that Redis shares each user's limit.
 * KEYS[1] bucket; ARGV rate per second, burst. Returns the wait in whole milliseconds (0: allowed).
 */
const TOKEN_BUCKET_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait`

/** A Redis call slower than this counts as Redis down (as for the redis gate): the process's own buckets decide meanwhile. */
const REDIS_TIMEOUT_MS = 250

/**
 * Per-key token buckets shared through Redis. Losing Redis may cost precision, never availability:
 * while Redis is not connected, or does not answer within 250 ms, this process's own buckets decide.
 */
export class RedisRateLimiter implements Limiter {
  private readonly local: RateLimiter

  constructor(
    private readonly redis: Redis,
    /** Sustained requests per second per key. */
    readonly ratePerSecond: number,
    /** Largest burst per key. */
    readonly burst: number,
    /** Key prefix, e.g. 'livedrop:'; buckets live under `${prefix}ratelimit:`. */
    private readonly prefix: string,
  ) {
    this.local = new RateLimiter(ratePerSecond, burst)
    if (!('livedropTokenBucket' in redis)) redis.defineCommand('livedropTokenBucket', {numberOfKeys: 1, lua: TOKEN_BUCKET_LUA})
  }

  async take(key: string | number): Promise<number> {
    // reconnecting: do not queue every request behind the reconnect
    if (this.redis.status !== 'ready') return this.local.take(key)
    const call = (this.redis as unknown as {livedropTokenBucket(key: string, rate: number, burst: number): Promise<number>}).livedropTokenBucket(
      `${this.prefix}ratelimit:${key}`,
      this.ratePerSecond,
      this.burst,
    )
    try {
      return Number(await withTimeout(call, REDIS_TIMEOUT_MS)) / 1000
    } catch {
      call.catch(() => {})
      return this.local.take(key)
    }
  }
}
