/**
 * The no_stale_reads invariant, checked from the answers alone: the generator remembers each
 * product's acknowledged edits and removals, and every product read sent more than the staleness
 * bound after one must show that version or a newer one (a removed product must be gone: 404).
 */

/** A read that broke the bound. Times are ms on the run's clock. */
export interface StaleReadExample {
  /** When the read was sent (its intended time, ms from the run's start). */
  atMs: number
  productId: number
  /** The version the read showed, or 'gone' for a 404. */
  seen: number | 'gone'
  /** The version the bound required at least, or 'gone' after a removal. */
  expected: number | 'gone'
  /** How long after that edit's acknowledgement the read was sent. */
  sinceAckMs: number
}

/** What the generator recorded for no_stale_reads (plain data: it crosses threads). */
export interface StaleReadLedger {
  /** The scenario's engine.staleAfter, ms. */
  staleAfterMs: number
  /** Edits answered 200 (with the new version). */
  edits: number
  /** Removals answered 200, and edits or removals answered 404 (the product was gone). */
  removals: number
  /** Product reads answered 200 or 404. */
  reads: number
  /** Reads sent more than staleAfterMs after an acknowledged edit or removal of their product: the ones the bound applies to. */
  checked: number
  violations: number
  /** The first few violations. */
  examples: StaleReadExample[]
  /** Answers (200) that carried no version, for a product with an acknowledged edit: not checkable. */
  unversioned: number
}

/** The staleness bound when the scenario sets no engine.staleAfter: the near cache's TTL, the longest a process may serve a replaced state. */
export const DEFAULT_STALE_AFTER_MS = 1000

/** Examples kept in the ledger. */
export const STALE_READ_EXAMPLES = 5
/**
 * Acknowledged edits remembered per product. A read is held to the newest one at least
 * staleAfter older than itself; dropping the oldest can only miss a violation, never invent one.
 */
const HISTORY_PER_PRODUCT = 16

interface Ack {
  version: number
  /** `now()` when the answer arrived. */
  at: number
}

interface ProductHistory {
  acks: Ack[]
  /** `now()` when a removal (or a 404 to an edit) was acknowledged. */
  goneAt: number | null
  /** Removals sent and not answered yet: a 404 read then may be the removal's. */
  removing: number
}

export interface StaleReadTracker {
  readonly ledger: StaleReadLedger
  /** A removal of the product was sent. */
  removeSent(productId: number): void
  /** An edit answered 200 with this version. */
  edited(productId: number, version: number | undefined): void
  /** A removal answered (200), or an edit or removal answered 404: the product is gone. */
  removed(productId: number, removal: boolean): void
  /** A product read sent at `sentAt` (`now()` then; atMs on the run's clock) was answered. */
  read(productId: number, sentAt: number, atMs: number, answer: {version: number | undefined} | 'gone'): void
}

/** Keeps the ledger for no_stale_reads; `now` is the clock sends and answers are timed on. */
export function createStaleReadTracker(staleAfterMs: number, now: () => number): StaleReadTracker {
  const ledger: StaleReadLedger = {staleAfterMs, edits: 0, removals: 0, reads: 0, checked: 0, violations: 0, examples: [], unversioned: 0}
  const products = new Map<number, ProductHistory>()
  const history = (id: number) => {
    let h = products.get(id)
    if (!h) products.set(id, (h = {acks: [], goneAt: null, removing: 0}))
    return h
  }
  const violation = (e: StaleReadExample) => {
    ledger.violations++
    if (ledger.examples.length < STALE_READ_EXAMPLES) ledger.examples.push(e)
  }

  return {
    ledger,
    removeSent: (id) => void history(id).removing++,
    edited(id, version) {
      ledger.edits++
      if (version === undefined) return
      const h = history(id)
      h.acks.push({version, at: now()})
      if (h.acks.length > HISTORY_PER_PRODUCT) h.acks.shift()
    },
    removed(id, removal) {
      ledger.removals++
      const h = history(id)
      if (removal) h.removing = Math.max(0, h.removing - 1)
      h.goneAt ??= now()
    },
    read(id, sentAt, atMs, answer) {
      ledger.reads++
      const h = products.get(id)
      if (!h) return
      // the newest acknowledgement the bound applies to: acknowledged more than staleAfterMs before the send
      const due = sentAt - staleAfterMs
      if (h.goneAt !== null && h.goneAt < due) {
        ledger.checked++
        if (answer !== 'gone') violation({atMs, productId: id, seen: answer.version ?? -1, expected: 'gone', sinceAckMs: sentAt - h.goneAt})
        return
      }
      let floor: Ack | undefined
      for (const a of h.acks) if (a.at < due && (!floor || a.version > floor.version)) floor = a
      if (!floor) return
      ledger.checked++
      if (answer === 'gone') {
        // gone after an edit is newer, not stale, when this run removed it (answered or not yet)
        if (h.goneAt === null && h.removing === 0) violation({atMs, productId: id, seen: 'gone', expected: floor.version, sinceAckMs: sentAt - floor.at})
        return
      }
      if (answer.version === undefined) ledger.unversioned++
      else if (answer.version < floor.version) violation({atMs, productId: id, seen: answer.version, expected: floor.version, sinceAckMs: sentAt - floor.at})
    },
  }
}

/** The invariant's result, in the shape of the run's other invariants. */
export interface StaleReadCheck {
  name: 'no_stale_reads'
  ok: boolean
  details: Record<string, unknown>
}

/**
 * no_stale_reads from the generator's ledger: no read held to the bound showed an older version
 * (or a removed product). Unversioned answers fail it: the check could not be made. A run without
 * edits passes with nothing checked.
 */
export function checkStaleReads(ledger: {staleReads?: StaleReadLedger}): StaleReadCheck {
  const l = ledger.staleReads
  if (!l || l.edits + l.removals === 0) return {name: 'no_stale_reads', ok: true, details: {checked: 0, note: 'no product was edited or removed'}}
  const {staleAfterMs, edits, removals, reads, checked, violations, examples, unversioned} = l
  const details: Record<string, unknown> = {staleAfterMs, edits, removals, reads, checked, violations, examples}
  if (unversioned > 0) details.unversioned = `${unversioned} product answers carried no version: the target cannot be checked`
  return {name: 'no_stale_reads', ok: violations === 0 && unversioned === 0, details}
}
