import {isRetryableSqlError} from '../errors.js'

export interface RetryOptions {
  /** Attempts in all, the first included. Default 8. */
  attempts?: number
  /** First backoff in ms; doubles each time, with full jitter, capped at 250 ms. Default 5. */
  baseMs?: number
}

/**
 * Runs fn again after serialization failures and deadlocks (SQLSTATE 40001, 40P01), which leave
 * nothing behind; every other error surfaces at once.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 8
  const base = options.baseMs ?? 5
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (attempt >= attempts || !isRetryableSqlError(err)) throw err
      const cap = Math.min(250, base * 2 ** (attempt - 1))
      await new Promise((resolve) => setTimeout(resolve, Math.random() * cap))
    }
  }
}
