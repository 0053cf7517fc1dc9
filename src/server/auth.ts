import {createHmac, timingSafeEqual} from 'node:crypto'

/**
 * Bearer tokens: base64url({"sub": userId, "iat": seconds}) + "." + HMAC-SHA256 of that part with
 * the server secret. Stateless, so any serve process with the same secret accepts them.
 * Example: eyJzdWIiOjQyLCJpYXQiOjE3OTk5OTk5OTl9.Qm9n…
 */
export function mintToken(userId: number, secret: string, issuedAt = new Date()): string {
  const body = Buffer.from(JSON.stringify({sub: userId, iat: Math.floor(issuedAt.getTime() / 1000)})).toString('base64url')
  return `${body}.${sign(body, secret)}`
}

function sign(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url')
}

/** The user id a token names, or null when it is malformed or not signed with this secret. */
export function verifyToken(token: string, secret: string): number | null {
  const dot = token.indexOf('.')
  if (dot <= 0) return null
  const body = token.slice(0, dot)
  const given = Buffer.from(token.slice(dot + 1))
  const expected = Buffer.from(sign(body, secret))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  try {
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as {sub?: unknown}
    return Number.isSafeInteger(claims.sub) && (claims.sub as number) > 0 ? (claims.sub as number) : null
  } catch {
    return null
  }
}
