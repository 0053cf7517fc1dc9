import {createHash, createHmac, timingSafeEqual} from 'node:crypto'
import {UsageError} from '../errors.js'

/**
 * Opaque keyset cursors: the last row's sort key, base64url-encoded with a short checksum so a
 * truncated or mangled cursor is rejected instead of silently paging from elsewhere. The checksum
 * is no defence against forgery: whoever hands cursors to strangers signs them (signCursor).
 * Example: encodeCursor([1042, 'u7']) → 'WzEwNDIsInU3Il0.3f9a2c1b'.
 */
export type CursorKey = Array<string | number>

function checksum(body: string): string {
  return createHash('sha256').update('livedrop-cursor:' + body).digest('hex').slice(0, 8)
}

export function encodeCursor(key: CursorKey): string {
  const body = Buffer.from(JSON.stringify(key)).toString('base64url')
  return `${body}.${checksum(body)}`
}

export class InvalidCursorError extends UsageError {
  override readonly code = 'INVALID_CURSOR'
}

function notIssued(field: string): InvalidCursorError {
  return new InvalidCursorError(field, 'is not a cursor this API issued for this listing', {
    hint: 'Pass back the nextCursor of the previous page of the same listing (same path, filters and user) unchanged, or omit it for the first page.',
  })
}

/** Decodes a cursor whose key has the given element types, e.g. ['number', 'number']. */
export function decodeCursor(cursor: string, shape: Array<'string' | 'number'>, field = 'cursor'): CursorKey {
  const invalid = () => notIssued(field)
  const [body, sum, extra] = cursor.split('.')
  if (!body || !sum || extra !== undefined || checksum(body) !== sum) throw invalid()
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (!Array.isArray(key) || key.length !== shape.length) throw invalid()
  key.forEach((v, i) => {
    if (typeof v !== shape[i] || (typeof v === 'number' && !Number.isSafeInteger(v))) throw invalid()
  })
  return key as CursorKey
}

function mac(cursor: string, secret: string, listing: string): string {
  // 128 bits of HMAC-SHA256 over the listing and the cursor
  return createHmac('sha256', secret).update(listing).update('\n').update(cursor).digest('base64url').slice(0, 22)
}

/**
 * Binds a cursor to the listing it pages (any string naming the listing, its filters and its
 * caller) with an HMAC under a server secret: `<cursor>.<mac>`. Example:
 * signCursor('WzFd.9c1e0b7a', secret, '["/drops",{},{"status":"live"},0]') → 'WzFd.9c1e0b7a.q3…'.
 */
export function signCursor(cursor: string, secret: string, listing: string): string {
  return `${cursor}.${mac(cursor, secret, listing)}`
}

/** The cursor signCursor signed for this listing; an InvalidCursorError naming `field` otherwise. */
export function verifyCursor(signed: string, secret: string, listing: string, field = 'cursor'): string {
  const dot = signed.lastIndexOf('.')
  const cursor = signed.slice(0, Math.max(dot, 0))
  const given = Buffer.from(signed.slice(dot + 1))
  const expected = Buffer.from(mac(cursor, secret, listing))
  if (dot <= 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) throw notIssued(field)
  return cursor
}

export interface PageOptions {
  /** The previous page's nextCursor; omit for the first page. */
  cursor?: string | null
  /** Items per page; each listing sets its default and maximum. */
  limit?: number
}

/** The page size asked for, or the listing's default; outside 1..max is a UsageError naming `limit`. */
export function pageLimit(limit: number | undefined, {fallback, max}: {fallback: number; max: number}): number {
  const n = limit ?? fallback
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError('limit', `must be a whole number from 1 to ${max}, got ${limit}`)
  return n
}

/** A page of a keyset listing. nextCursor is null on the last page. */
export interface Page<T> {
  items: T[]
  nextCursor: string | null
}
