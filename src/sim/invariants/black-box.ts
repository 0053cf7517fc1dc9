import type {InvariantResult} from '../metrics/result.js'

/**
 * Invariants checked from the answers alone, with no access to the target's database, as Jepsen
 * checks systems it cannot look inside. The generator records every order answer as it arrives
 * (createBlackBoxTracker, bounded state: one entry per key and per acknowledged order); the
 * checks turn what it saw into results (checkBlackBox).
 *
 * - acked_units_le_stock: the units of the distinct orders answered "success" ≤ the drop's stock
 * - one_order_per_key: one user's key is never acknowledged with two different order ids
 * - replay_identical: an answer to a repeated key equals the first success answer for it
 * - no_sold_out_then_sale (a warning): a success sent after a sold-out answer arrived on the same
 *   drop is legal only if stock came back (a cancellation, a restock)
 */
export const BLACK_BOX_INVARIANTS = ['acked_units_le_stock', 'one_order_per_key', 'replay_identical', 'no_sold_out_then_sale'] as const

/** Requests kept per violated invariant, to name them. */
export const BLACK_BOX_EXAMPLES = 10
/** Characters of an answer's body kept in an example. */
const BODY_CHARS = 300

/** One order answer as the generator saw it. */
export interface OrderAnswer {
  /** When the request was sent, ms from the run's start. */
  atMs: number
  /** When its answer arrived, ms from the run's start. */
  answeredMs: number
  /** The acting user as the target knows it. */
  user: string | number
  key: string | null
  status: number
  outcome: 'success' | 'replay' | 'sold_out' | 'not_live'
  /** The order id read from the answer, or null. */
  orderId: string | number | null
  /** Units acknowledged (read from the answer, or the qty sent). */
  units: number
  /** The answer's body, cut to a few hundred characters. */
  body: string
}

/** What the checks need, as plain data (it crosses from the generator thread). */
export interface BlackBoxLedger {
  /** The drop's stock, or null when unknown (then acked_units_le_stock is not checked). */
  stock: number | null
  answers: {success: number; replay: number; soldOut: number; notLive: number}
  /** Distinct acknowledged orders and their units. */
  orders: number
  ackedUnits: number
  /** Success answers without an order id (counted by key instead). */
  withoutOrderId: number
  /** The success answers that took the acknowledged units past the stock. */
  overStock: OrderAnswer[]
  overStockCount: number
  keyConflicts: Array<{first: OrderAnswer; then: OrderAnswer}>
  keyConflictCount: number
  replayMismatches: Array<{first: OrderAnswer; then: OrderAnswer}>
  replayMismatchCount: number
  /** Replays compared with their first answer. */
  replaysCompared: number
  firstSoldOut: OrderAnswer | null
  salesAfterSoldOut: OrderAnswer[]
  salesAfterSoldOutCount: number
}

interface KeyState {
  first: OrderAnswer
  /** The first success body, canonical (keys sorted) for comparison. */
  canonical: string
}

/** JSON with object keys sorted, so `{"a":1,"b":2}` equals `{"b":2,"a":1}`; non-JSON text as is. */
export function canonicalJson(text: string): string {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return text
  }
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x !== null && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])])) : x
  return JSON.stringify(sort(v))
}

export interface BlackBoxTracker {
  /** One order answer; `fullBody` is compared for replays, then cut for the examples. */
  record(answer: Omit<OrderAnswer, 'body'>, fullBody: string): void
  readonly ledger: BlackBoxLedger
}

export function createBlackBoxTracker(stock: number | null): BlackBoxTracker {
  const ledger: BlackBoxLedger = {
    stock,
    answers: {success: 0, replay: 0, soldOut: 0, notLive: 0},
    orders: 0,
    ackedUnits: 0,
    withoutOrderId: 0,
    overStock: [],
    overStockCount: 0,
    keyConflicts: [],
    keyConflictCount: 0,
    replayMismatches: [],
    replayMismatchCount: 0,
    replaysCompared: 0,
    firstSoldOut: null,
    salesAfterSoldOut: [],
    salesAfterSoldOutCount: 0,
  }
  const keys = new Map<string, KeyState>()
  const orders = new Set<string>()
  const keep = <T>(list: T[], item: T) => list.length < BLACK_BOX_EXAMPLES && list.push(item)

  return {
    ledger,
    record(a, fullBody) {
      const answer: OrderAnswer = {...a, body: fullBody.length > BODY_CHARS ? `${fullBody.slice(0, BODY_CHARS)}…` : fullBody}
      if (a.outcome === 'sold_out') {
        ledger.answers.soldOut++
        if (!ledger.firstSoldOut || a.answeredMs < ledger.firstSoldOut.answeredMs) ledger.firstSoldOut = answer
        return
      }
      if (a.outcome === 'not_live') {
        ledger.answers.notLive++
        return
      }
      ledger.answers[a.outcome]++
      // the same key from another user is another request; keys are compared per user
      const keyId = a.key === null ? null : `${a.user}\u0000${a.key}`
      const seen = keyId === null ? undefined : keys.get(keyId)
      if (seen) {
        ledger.replaysCompared++
        if (canonicalJson(fullBody) !== seen.canonical) {
          ledger.replayMismatchCount++
          keep(ledger.replayMismatches, {first: seen.first, then: answer})
        }
        if (a.orderId !== null && seen.first.orderId !== null && String(a.orderId) !== String(seen.first.orderId)) {
          ledger.keyConflictCount++
          keep(ledger.keyConflicts, {first: seen.first, then: answer})
        }
      } else if (keyId !== null) keys.set(keyId, {first: answer, canonical: canonicalJson(fullBody)})
      if (a.outcome === 'replay') return

      if (a.orderId === null) ledger.withoutOrderId++
      // an order is known by its id; without one, by its key (a repeated key is then the same order)
      const orderKey = a.orderId !== null ? `id:${a.orderId}` : keyId !== null ? `key:${keyId}` : null
      if (orderKey !== null && orders.has(orderKey)) return
      if (orderKey !== null) orders.add(orderKey)
      ledger.orders++
      ledger.ackedUnits += a.units
      if (ledger.stock !== null && ledger.ackedUnits > ledger.stock) {
        ledger.overStockCount++
        keep(ledger.overStock, answer)
      }
      if (ledger.firstSoldOut && a.atMs > ledger.firstSoldOut.answeredMs) {
        ledger.salesAfterSoldOutCount++
        keep(ledger.salesAfterSoldOut, answer)
      }
    },
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`
/** "1.204s user 17 key r1-o12 → 201 {"id":…}": one request, named. */
export function describeAnswer(a: OrderAnswer): string {
  return `${seconds(a.atMs)} user ${a.user}${a.key === null ? '' : ` key ${a.key}`} → ${a.status} ${a.body}`
}

/**
 * The black-box invariants from the ledger, in the run file's shape. no_sold_out_then_sale never
 * fails the run: it passes with a warning in its detail (data.warning true).
 */
export function checkBlackBox(l: BlackBoxLedger): InvariantResult[] {
  const source = 'answers'
  const out: InvariantResult[] = []
  if (l.stock !== null) {
    const pass = l.ackedUnits <= l.stock
    out.push({
      name: 'acked_units_le_stock',
      pass,
      detail: pass
        ? undefined
        : `${l.ackedUnits} units acknowledged in ${l.orders} orders, stock ${l.stock}; past the stock: ${l.overStock.map(describeAnswer).join('; ')}${l.overStockCount > l.overStock.length ? ` (+${l.overStockCount - l.overStock.length} more)` : ''}`,
      data: {source, stock: l.stock, ackedUnits: l.ackedUnits, orders: l.orders, withoutOrderId: l.withoutOrderId, examples: l.overStock},
    })
  }
  const pairs = (list: Array<{first: OrderAnswer; then: OrderAnswer}>, count: number) =>
    `${list.map((p) => `first ${describeAnswer(p.first)}; then ${describeAnswer(p.then)}`).join(' | ')}${count > list.length ? ` (+${count - list.length} more)` : ''}`
  out.push({
    name: 'one_order_per_key',
    pass: l.keyConflictCount === 0,
    detail: l.keyConflictCount === 0 ? undefined : `${l.keyConflictCount} repeated key(s) acknowledged with another order id: ${pairs(l.keyConflicts, l.keyConflictCount)}`,
    data: {source, conflicts: l.keyConflictCount, examples: l.keyConflicts},
  })
  out.push({
    name: 'replay_identical',
    pass: l.replayMismatchCount === 0,
    detail: l.replayMismatchCount === 0 ? undefined : `${l.replayMismatchCount} of ${l.replaysCompared} replays answered differently from the first answer: ${pairs(l.replayMismatches, l.replayMismatchCount)}`,
    data: {source, compared: l.replaysCompared, mismatches: l.replayMismatchCount, examples: l.replayMismatches},
  })
  const warn = l.salesAfterSoldOutCount > 0
  out.push({
    name: 'no_sold_out_then_sale',
    pass: true,
    detail: warn
      ? `warning: ${l.salesAfterSoldOutCount} sale(s) sent after a sold-out answer (legal only if stock came back): sold out ${describeAnswer(l.firstSoldOut!)}; then ${l.salesAfterSoldOut.map(describeAnswer).join('; ')}`
      : undefined,
    data: {source, warning: warn, sales: l.salesAfterSoldOutCount, soldOut: l.firstSoldOut, examples: l.salesAfterSoldOut},
  })
  return out
}
