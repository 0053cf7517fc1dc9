import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {decodeCursor, encodeCursor, InvalidCursorError} from './cursor.js'

describe('cursor', () => {
  it('round-trips keys', () => {
    fc.assert(
      fc.property(fc.integer({min: 0}), fc.string(), (n, s) => {
        expect(decodeCursor(encodeCursor([n, s]), ['number', 'string'])).toEqual([n, s])
      }),
    )
  })

  it('rejects tampered, truncated or mistyped cursors', () => {
    const good = encodeCursor([42, 7])
    const tampered = good.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))
    for (const bad of [tampered, good.slice(0, -1), good + '.x', 'garbage', '', encodeCursor(['a', 7])]) {
      expect(() => decodeCursor(bad, ['number', 'number'])).toThrow(InvalidCursorError)
    }
  })
})
