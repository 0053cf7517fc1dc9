import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {decodeCursor, encodeCursor, InvalidCursorError, signCursor, verifyCursor} from './cursor.js'

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

  it('signs cursors for one listing under one secret', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (listing, other) => {
        const cursor = encodeCursor([1, 2])
        const signed = signCursor(cursor, 'secret-1', listing)
        expect(verifyCursor(signed, 'secret-1', listing)).toBe(cursor)
        if (other !== listing) expect(() => verifyCursor(signed, 'secret-1', other)).toThrow(InvalidCursorError)
        expect(() => verifyCursor(signed, 'secret-2', listing)).toThrow(InvalidCursorError)
      }),
    )
  })

  it('refuses a signed cursor whose key or signature was edited, naming the field', () => {
    const signed = signCursor(encodeCursor([42, 7]), 'secret-1', 'followers of 1')
    const [body, sum, mac] = signed.split('.')
    const forgedBody = encodeCursor([42, 9000]).split('.')
    for (const bad of [`${forgedBody[0]}.${forgedBody[1]}.${mac}`, `${body}.${sum}.${mac.slice(1)}`, `${body}.${sum}`, body, '', '.', `.${mac}`]) {
      expect(() => verifyCursor(bad, 'secret-1', 'followers of 1', 'querystring.cursor'), bad).toThrow(expect.objectContaining({code: 'INVALID_CURSOR', field: 'querystring.cursor'}))
    }
  })
})
