import {Redis, type RedisOptions} from 'ioredis'
import {ServiceUnreachableError, redactUrl} from './errors.js'

/**
 * Opens a Redis connection and waits until it answers, so an unreachable server is reported
 * at once (exit 3) instead of on the first request.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis(url, {lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 2, ...options})
  // errors surface on commands; an unhandled 'error' event would crash the process
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
    return redis
  } catch (err) {
    redis.disconnect()
    throw new ServiceUnreachableError(`cannot reach Redis at ${redactUrl(url)}: ${(err as Error).message}`, {
      hint: 'Start Redis or point --redis / REDIS_URL at a running server.',
      cause: err,
    })
  }
}

/** Calls each with the keys under prefix, a SCAN page at a time (never KEYS: it would block the server). */
export async function scanKeys(client: Redis, prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    if (keys.length) await each(keys)
    cursor = next
  } while (cursor !== '0')
}

/** Rejects when the promise has not settled within ms (the call itself may still finish later). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** True when Redis answers PING within timeoutMs (default 250): a health check never waits on reconnects. */
export async function pingRedis(redis: Redis, timeoutMs = 250): Promise<boolean> {
  return withTimeout(redis.ping(), timeoutMs).then(
    (r) => r === 'PONG',
    () => false,
  )
}
