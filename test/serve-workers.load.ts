import {Pool} from 'undici'
import {mintToken} from '../src/core/tokens.js'
import type {AcknowledgedOrder} from '../src/core/audit/drop.js'

/** A failed attempt: a cut connection, a timeout or a 5xx, with when it was sent and ended (ms since the load began). */
export interface LoadError {
  sentMs: number
  endedMs: number
  what: string
}

export interface OrderLoadResult {
  /** Orders answered 201: the acknowledged ones the database must hold. */
  acknowledged: AcknowledgedOrder[]
  /** Final answers by status (0: no answer after every retry). */
  statuses: Record<number, number>
  errors: LoadError[]
  /** 201s answered after `afterMs`, to see that service went on. */
  acknowledgedAfter: (ms: number) => number
  attempts: number
}

/** Retries of one idempotency key after a cut connection, a 5xx or a key still in flight (a client would retry). */
const RETRIES = 3
const RETRY_WAIT_MS = 150

/**
 * Concurrent buyers against /orders over keep-alive connections (undici), bounded by count and time:
 * each attempt is a new idempotency key for user 1 + i % users, retried with the same key after a
 * failure, as a real client does; `during(elapsedMs)` runs beside the load (a fault).
 */
export async function orderLoad(options: {url: string; secret: string; dropId: number; users: number; maxAttempts: number; durationMs: number; connections: number; keyPrefix: string}): Promise<OrderLoadResult> {
  const pool = new Pool(options.url, {connections: options.connections})
  const t0 = performance.now()
  const since = () => performance.now() - t0
  const acknowledged: Array<AcknowledgedOrder & {atMs: number}> = []
  const statuses: Record<number, number> = {}
  const errors: LoadError[] = []
  const tokens = new Map<number, string>()
  let next = 0

  const attempt = async (i: number) => {
    const userId = 1 + (i % options.users)
    const key = `${options.keyPrefix}-${i}`
    let token = tokens.get(userId)
    if (!token) tokens.set(userId, (token = mintToken(userId, options.secret)))
    let status = 0
    for (let a = 0; a <= RETRIES; a++) {
      const sentMs = since()
      try {
        const res = await pool.request({
          path: '/orders',
          method: 'POST',
          headers: {authorization: `Bearer ${token}`, 'idempotency-key': `"${key}"`, 'content-type': 'application/json'},
          body: JSON.stringify({dropId: options.dropId, qty: 1}),
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        })
        const text = await res.body.text()
        status = res.statusCode
        if (status === 201) {
          acknowledged.push({orderId: (JSON.parse(text) as {id: number}).id, userId, key, atMs: since()})
          break
        }
        if (status >= 500) errors.push({sentMs, endedMs: since(), what: `${status} ${text.slice(0, 120)}`})
        else if (!(status === 409 && text.includes('REQUEST_IN_FLIGHT'))) break
      } catch (err) {
        status = 0
        errors.push({sentMs, endedMs: since(), what: (err as {code?: string}).code ?? (err as Error).message})
      }
      await new Promise((r) => setTimeout(r, RETRY_WAIT_MS))
    }
    statuses[status] = (statuses[status] ?? 0) + 1
  }

  await Promise.all(
    Array.from({length: options.connections}, async () => {
      while (next < options.maxAttempts && since() < options.durationMs) await attempt(next++)
    }),
  )
  await pool.close()
  return {
    acknowledged: acknowledged.map(({orderId, userId, key}) => ({orderId, userId, key})),
    statuses,
    errors,
    acknowledgedAfter: (ms) => acknowledged.filter((a) => a.atMs > ms).length,
    attempts: next,
  }
}

/**
 * The failed requests that were not in flight during any window [from, to]: a request cut by a fault
 * was sent before it and may end (a timeout) long after, so what counts is that it overlapped one.
 */
export function outsideWindows(errors: LoadError[], windows: ReadonlyArray<readonly [number, number]>): LoadError[] {
  return errors.filter((e) => !windows.some(([from, to]) => e.endedMs >= from && e.sentMs <= to))
}
