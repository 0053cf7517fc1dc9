import {createHmac, timingSafeEqual} from 'node:crypto'
import {UsageError} from './errors.js'

/** How long a token is valid unless `livedrop token --ttl` says otherwise: a day. */
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600
/** Clock difference tolerated between the machine that minted a token and the one checking it. */
export const CLOCK_SKEW_SECONDS = 60

const HEADER = Buffer.from(JSON.stringify({alg: 'HS256', typ: 'JWT'})).toString('base64url')

/** True for the ids a token may name: whole numbers from 1 to 2^53 − 1. */
export function isUserId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0
}

/**
 * Bearer tokens are JWTs (RFC 7519) signed with HS256 and the server secret: {"sub": "42", "iat",
 * "exp"}. Stateless, so any serve process with the same secret accepts them, and any JWT library
 * (jose in the tests) reads them. Minted and checked with node:crypto rather than jose: jose is
 * async only (WebCrypto) and an order of magnitude slower per check, and every request checks one.
 * Example: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsImlhdCI6…
 */
export function mintToken(userId: number, secret: string, issuedAt = new Date(), ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS): string {
  if (!isUserId(userId)) throw new UsageError('userId', `must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got ${userId}`)
  const iat = Math.floor(issuedAt.getTime() / 1000)
  const claims = Buffer.from(JSON.stringify({sub: String(userId), iat, exp: iat + ttlSeconds})).toString('base64url')
  return `${HEADER}.${claims}.${sign(`${HEADER}.${claims}`, secret)}`
}

function sign(signed: string, secret: string): string {
  return createHmac('sha256', secret).update(signed).digest('base64url')
}

function decode(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/**
 * The user id a token names, or null when it is malformed, not signed with this secret, expired,
 * or not yet valid (iat/nbf in the future), each judged with CLOCK_SKEW_SECONDS of tolerance.
 */
export function verifyToken(token: string, secret: string, now = new Date()): number | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const [header, payload, signature] = parts
  const given = Buffer.from(signature)
  const expected = Buffer.from(sign(`${header}.${payload}`, secret))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  if (decode(header)?.alg !== 'HS256') return null
  const claims = decode(payload)
  const t = now.getTime() / 1000
  if (!claims || typeof claims.exp !== 'number' || claims.exp + CLOCK_SKEW_SECONDS <= t) return null
  for (const notBefore of [claims.iat, claims.nbf]) {
    if (notBefore !== undefined && (typeof notBefore !== 'number' || notBefore - CLOCK_SKEW_SECONDS > t)) return null
  }
  const sub = typeof claims.sub === 'string' && /^[1-9][0-9]{0,15}$/.test(claims.sub) ? Number(claims.sub) : null
  return isUserId(sub) ? sub : null
}
