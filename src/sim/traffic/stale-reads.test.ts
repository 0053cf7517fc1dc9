import {describe, expect, it} from 'vitest'
import {STALE_READ_EXAMPLES, checkStaleReads, createStaleReadTracker} from './stale-reads.js'

/** A tracker on a clock the test moves. */
function tracker(staleAfterMs = 1000) {
  let t = 0
  const tr = createStaleReadTracker(staleAfterMs, () => t)
  return {tr, at: (ms: number) => (t = ms)}
}

describe('no_stale_reads', () => {
  it('holds a read to an edit only once it is sent more than the bound after the acknowledgement', () => {
    const {tr, at} = tracker()
    at(100)
    tr.edited(7, 2)
    tr.read(7, 1000, 1000, {version: 1}) // 900 ms after: within the bound, may be stale
    expect(tr.ledger).toMatchObject({checked: 0, violations: 0, reads: 1})
    tr.read(7, 1101, 1101, {version: 2})
    tr.read(7, 1101, 1101, {version: 3}) // newer is fine
    expect(tr.ledger).toMatchObject({checked: 2, violations: 0})
    tr.read(7, 1200, 1234, {version: 1})
    expect(tr.ledger).toMatchObject({checked: 3, violations: 1, examples: [{atMs: 1234, productId: 7, seen: 1, expected: 2, sinceAckMs: 1100}]})
    expect(checkStaleReads({staleReads: tr.ledger})).toMatchObject({name: 'no_stale_reads', ok: false, details: {violations: 1}})
  })

  it('uses the newest edit the bound applies to, whatever order the answers came in', () => {
    const {tr, at} = tracker()
    at(0)
    tr.edited(1, 3)
    at(500)
    tr.edited(1, 2) // an older edit's answer arriving later
    at(600)
    tr.edited(1, 4)
    tr.read(1, 1200, 1200, {version: 3}) // only the first two are 1 s old: 3 is the floor
    expect(tr.ledger.violations).toBe(0)
    tr.read(1, 1700, 1700, {version: 3}) // now version 4 applies
    expect(tr.ledger.violations).toBe(1)
    expect(tr.ledger.examples[0]).toMatchObject({seen: 3, expected: 4})
  })

  it('a removed product must be gone; 404 after an edit is newer when this run removed it, stale otherwise', () => {
    const {tr, at} = tracker(500)
    at(0)
    tr.edited(5, 2)
    tr.removeSent(5)
    tr.read(5, 800, 800, 'gone') // the removal is not answered yet, but it was sent: gone is newer
    expect(tr.ledger.violations).toBe(0)
    at(900)
    tr.removed(5, true)
    tr.read(5, 1500, 1500, 'gone')
    tr.read(5, 1500, 1500, {version: 2})
    expect(tr.ledger).toMatchObject({removals: 1, violations: 1, examples: [{productId: 5, seen: 2, expected: 'gone'}]})

    // a product edited but never removed by the run must not vanish
    tr.edited(6, 2)
    tr.read(6, 2000, 2000, 'gone')
    expect(tr.ledger.examples[1]).toMatchObject({productId: 6, seen: 'gone', expected: 2})
  })

  it('keeps only the first examples but counts every violation', () => {
    const {tr, at} = tracker(10)
    at(0)
    tr.edited(1, 2)
    for (let i = 0; i < 20; i++) tr.read(1, 100 + i, 100 + i, {version: 1})
    expect(tr.ledger.violations).toBe(20)
    expect(tr.ledger.examples).toHaveLength(STALE_READ_EXAMPLES)
  })

  it('passes with nothing edited, and fails when answers carry no version to check', () => {
    expect(checkStaleReads({})).toMatchObject({ok: true, details: {checked: 0}})
    const {tr, at} = tracker()
    expect(checkStaleReads({staleReads: tr.ledger}).ok).toBe(true)
    at(0)
    tr.edited(1, 2)
    tr.read(1, 5000, 5000, {version: undefined})
    const check = checkStaleReads({staleReads: tr.ledger})
    expect(check.ok).toBe(false)
    expect(check.details.unversioned).toMatch(/no version/)
  })
})
