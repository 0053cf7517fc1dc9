import {describe, expect, it} from 'vitest'
import {parseWhen} from './drops.js'
import {UsageError} from '../errors.js'

describe('parseWhen', () => {
  const now = new Date('2030-01-01T00:00:00.000Z')
  it('reads now, offsets and ISO times', () => {
    expect(parseWhen('now', now, '--starts-at').toISOString()).toBe('2030-01-01T00:00:00.000Z')
    expect(parseWhen('+2h', now, '--ends-at').toISOString()).toBe('2030-01-01T02:00:00.000Z')
    expect(parseWhen('-30m', now, '--ends-at').toISOString()).toBe('2029-12-31T23:30:00.000Z')
    expect(parseWhen('+1d', now, '--ends-at').toISOString()).toBe('2030-01-02T00:00:00.000Z')
    expect(parseWhen('2030-05-01T10:00:00Z', now, '--starts-at').toISOString()).toBe('2030-05-01T10:00:00.000Z')
  })
  it('rejects anything else naming the flag', () => {
    for (const bad of ['tomorrow', '+2x', '', '12']) expect(() => parseWhen(bad, now, '--ends-at')).toThrow(UsageError)
    expect(() => parseWhen('soon', now, '--ends-at')).toThrow(/--ends-at/)
  })
})
