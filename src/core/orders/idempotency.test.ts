import {describe, expect, it} from 'vitest'
import {parseIdempotencyKey, retryAfterSeconds} from './idempotency.js'

describe('Idempotency-Key header (structured-field string)', () => {
  it('reads a quoted string and the bare legacy form as the same key', () => {
    expect(parseIdempotencyKey('"abc"')).toEqual({key: 'abc'})
    expect(parseIdempotencyKey('abc')).toEqual({key: 'abc'})
    expect(parseIdempotencyKey(' "8e03978e-40d5-43e8" ')).toEqual({key: '8e03978e-40d5-43e8'})
    expect(parseIdempotencyKey('"a b \\"c\\" \\\\ d"')).toEqual({key: 'a b "c" \\ d'})
    expect(parseIdempotencyKey(`"${'x'.repeat(255)}"`)).toEqual({key: 'x'.repeat(255)})
  })

  it('refuses what RFC 8941 does not allow, and empty or overlong keys', () => {
    for (const bad of ['"abc', '"a\\nb"', '"abc";p=1', '"a", "b"', '""', 'a b', 'a"b', '"é"', '"\t"', `"${'x'.repeat(256)}"`, '"abc\\']) {
      expect(parseIdempotencyKey(bad), bad).toHaveProperty('error')
    }
  })
})

describe('Retry-After for a key in flight', () => {
  it('is 1 s while the first request looks alive, then the time to the takeover, never past the timeout', () => {
    expect(retryAfterSeconds(0, 30_000)).toBe(1)
    expect(retryAfterSeconds(4_000, 30_000)).toBe(1)
    expect(retryAfterSeconds(7_000, 30_000)).toBe(23)
    expect(retryAfterSeconds(29_999, 30_000)).toBe(1)
    expect(retryAfterSeconds(6_000, 300)).toBe(1)
    for (let age = 0; age < 40_000; age += 777) expect(retryAfterSeconds(age, 30_000)).toBeLessThanOrEqual(30)
  })
})
