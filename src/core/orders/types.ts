import type {DropStatus} from '../events.js'

/** The order path's shapes, shared by orders/ and the stock strategies (types only: no cycle). */

/** The HTTP-style answer stored with a key and replayed verbatim. */
export interface StoredResponse {
  status: number
  body: Record<string, unknown>
}

export interface PlaceOrderInput {
  userId: number
  dropId: number
  qty: number
  /** The client's Idempotency-Key: retries of one request carry the same key. */
  idempotencyKey: string
  /** Anything else the request carried (shipping, notes); part of the request fingerprint. */
  payload?: unknown
}

/** What never changes about a drop: safe to remember per database. */
export interface DropInfo {
  id: number
  /** The stock strategy's name (stock/index.ts strategyFor). */
  strategy: string
  creatorId: number
  productId: number
  bucketCount: number
  lowStockThreshold: number
  /** created_at in ms: names the drop's redis gate. */
  epoch: number
}

/** The drop facts the order path needs, read in the same round trip as the claim. */
export interface DropFacts extends DropInfo {
  status: DropStatus
  lowStockNotified: boolean
  /** Units left as of the claim's snapshot: an upper bound (stock only goes down), so fewer than asked means sold out. */
  available: number
}

/** A key this request owns: its partition day and the lock token that fences the completion. */
export interface OwnedKey {
  userId: number
  key: string
  day: string
  token: Date
}

/** An answer and whether Postgres said the drop is sold out (status sold_out: final), which empties a gate. */
export interface Placed {
  response: StoredResponse
  replay: boolean
  pgSoldOut: boolean
}
