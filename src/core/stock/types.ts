import type {Queryable} from '../db/types.js'
import type {UsageError} from '../errors.js'
import type {EngineDeps} from '../orders/deps.js'
import type {DropFacts, DropInfo, OwnedKey, PlaceOrderInput, Placed, StoredResponse} from '../orders/types.js'

/**
 * How a drop's stock is taken, chosen per drop at creation (drops.strategy). Each strategy is one
 * object in one file of this folder, registered in index.ts; drops, browse, idempotency and
 * place-order call these hooks and never ask which strategy they hold. Optional hooks that are
 * absent do nothing.
 */
export interface StockStrategy {
  /** As stored in drops.strategy and given to --strategy. */
  readonly name: string

  // ---- a drop's life ----
  /** Why a drop of this strategy cannot be made with these deps (redis-gate without Redis); null when it can. */
  unavailable?(deps: EngineDeps): UsageError | null
  /** True when the drop's stock is split over rows and the `buckets` option sets how many. */
  readonly bucketed?: boolean
  /** Rows the stock is split over (drops.bucket_count), from the rows asked for. */
  bucketCount(stock: number, asked: number): number
  /** In the creating transaction, after the drop's row: the strategy's own rows (buckets). */
  created?(tx: Queryable, drop: {id: number; stock: number; bucketCount: number}): Promise<void>
  /** After a start committed: what lives outside Postgres follows (the gate is written). Best effort: never fails the start. */
  started?(deps: EngineDeps, drop: DropRef): Promise<void>
  /** In the ending transaction, before the drop's row changes: locks what orders lock first, in their order, so the two cannot deadlock. */
  lockForEnd?(tx: Queryable, dropId: number): Promise<void>
  /** In the ending transaction, after the drop ended: no take that starts later may commit. */
  closeForEnd?(tx: Queryable, dropId: number): Promise<void>
  /** After an end committed: what lives outside Postgres follows (the gate is closed). Best effort: never fails the end. */
  ended?(deps: EngineDeps, drop: DropRef): Promise<void>
  /** `drop reconcile`: derived state brought in line with Postgres (owed events, the gate). */
  reconcile?(deps: EngineDeps, dropId: number): Promise<Reconciled>

  // ---- stock ----
  /** SQL for the authoritative units left of the drops row aliased `d`. Example: row → `d.available`. */
  available(d: string): string

  // ---- orders ----
  /** The fast path in front of Postgres (the redis gate's admission); null: straight to Postgres. */
  admit?(order: OrderContext): Promise<Admission | null>
  /** One autocommit statement for a fresh key: the take, the order, its events and the stored answer. Null: the claim path decides. */
  placeFresh(order: OrderContext): Promise<Placed | null>
  /** Runs placeFresh's statement once for an unknown user, which writes nothing: the backend has then parsed and planned it. */
  warmFresh(q: Queryable): Promise<void>
  /**
   * After the key was claimed and the claim's snapshot showed enough units: the take and the order
   * (or the sold-out answer) in one transaction. Throws NotTaken when the drop is not live any more,
   * Fenced when another request took the key over (orders/write.ts).
   */
  placeClaimed(order: ClaimedOrder): Promise<Placed>
  /** The claim saw no unit left: writes events owed once committed data shows it (buckets' stock_low, sold_out). Never throws. */
  settle?(deps: EngineDeps, drop: DropInfo): Promise<void>
}

/** Which drop, and its gate epoch (created_at in ms). */
export interface DropRef {
  id: number
  epoch: number
}

export interface Reconciled {
  /** Events the drop was still owed and got now. */
  settled: {stockLow: boolean; soldOut: boolean}
  /** The redis gate as written from Postgres; null when the drop has none. */
  gate: {tokens: number; marked: number} | null
}

/** One order as a strategy sees it; orders/place-order.ts builds it (the strategies never import its logic). */
export interface OrderContext {
  deps: EngineDeps
  input: PlaceOrderInput
  /** The request's fingerprint (sha256:…). */
  fingerprint: string
  /** What never changes about the drop. */
  info: DropInfo
  /** The request's time, from deps' clock. */
  now: Date
  /** The answer a sold-out request gets (a function of the request alone). */
  soldOut: StoredResponse
  /** Stores `soldOut` as this key's answer when the key has none yet; false when it has one, or the user is unknown. */
  recordSoldOut(): Promise<boolean>
  /** The error for this key first used with another request. */
  keyReused(): Error
}

/** What a fresh-key statement's parameters are made of: the part of an OrderContext placeFresh reads. */
export type FreshOrder = Pick<OrderContext, 'input' | 'fingerprint' | 'now' | 'soldOut'> & {info: Pick<DropInfo, 'bucketCount'>}

/** An order whose key this request has claimed. */
export interface ClaimedOrder extends OrderContext {
  owned: OwnedKey
  /** The drop as of the claim (info is the same drop). */
  drop: DropFacts
  /** Stores `soldOut` as the claimed key's answer; throws Fenced when another request took the key over. */
  storeSoldOut(q: Queryable): Promise<StoredResponse>
}

/** What the fast path decided for one request. */
export interface Admission {
  /** Answered without Postgres placing anything (a replay, or sold out recorded): the request ends here. */
  answer?: {response: StoredResponse; replay: boolean}
  /** Postgres answered: the fast path's own state follows (tokens back, sold out, the key marked). */
  done(placed: Placed): Promise<void>
  /** Placing the order threw: give back what admission took. */
  failed(): Promise<void>
}
