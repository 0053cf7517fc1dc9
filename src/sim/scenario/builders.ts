import {mintToken} from '../../server/auth.js'
import type {AcknowledgedOrder} from '../invariants/index.js'
import type {RequestBuilder} from '../load/open-model.js'
import {createZipf} from '../../core/random.js'
import {createQtyPicker, createRetryKeys} from './sampling.js'
import type {RequestType, Scenario} from './schema.js'

/** The ids the traffic refers to: what the seed made and the drop the orders race for. */
export interface TrafficWorld {
  users: number
  creators: number
  /** Products in id order; the celebrity's (creator 1) come first, so Zipf rank 1 is theirs. */
  products: number
  dropId: number
  secret: string
}

/** What the order responses told the generator, for the invariants and the report. */
export interface OrderLedger {
  acknowledged: Map<number, AcknowledgedOrder>
  confirmed: number
  replays: number
  soldOut: number
  notLive: number
  /** Smallest quantity answered "sold out", to check no buyer was refused while stock remained. */
  minSoldOutQty: number | undefined
}

/**
 * Request builders for the routes of `livedrop serve`, one per scenario request type. Buyers and
 * browsing users are drawn from the users that are not creators; creators and products by Zipf
 * rank with the celebrity first.
 */
export function createBuilders(s: Scenario, world: TrafficWorld): {builders: Record<RequestType, RequestBuilder>; ledger: OrderLedger} {
  const tokens = new Map<number, string>()
  const auth = (user: number) => {
    let t = tokens.get(user)
    if (!t) tokens.set(user, (t = mintToken(user, world.secret)))
    return {authorization: `Bearer ${t}`}
  }
  const firstFan = Math.min(world.creators + 1, world.users)
  const fan = (random: () => number) => firstFan + Math.floor(random() * (world.users - firstFan + 1))
  const creatorRank = createZipf(world.creators, s.zipf.exponent)
  const productRank = createZipf(Math.max(1, world.products), s.zipf.exponent)
  const qty = createQtyPicker(s.order.qty)
  const retryKeys = createRetryKeys<{user: number; qty: number}>(s.order.retryRate)
  const ledger: OrderLedger = {acknowledged: new Map(), confirmed: 0, replays: 0, soldOut: 0, notLive: 0, minSoldOutQty: undefined}
  let keySeq = 0

  const builders: Record<RequestType, RequestBuilder> = {
    browse_product: ({random}) => ({path: `/products/${productRank(random)}`}),
    // the drop page and its live stock count, as a buyer's page polls both
    browse_drop: ({random}) => ({path: random() < 0.5 ? `/drops/${world.dropId}` : `/drops/${world.dropId}/stock`}),
    list_followers: ({random}) => ({path: `/creators/${creatorRank(random)}/followers?limit=100`}),
    follow: ({random}) => ({method: 'POST', path: `/creators/${creatorRank(random)}/follow`, headers: auth(fan(random)), body: {}}),
    unfollow: ({random}) => ({method: 'DELETE', path: `/creators/${creatorRank(random)}/follow`, headers: auth(fan(random))}),
    notifications: ({random}) => ({path: '/me/notifications?limit=20', headers: auth(fan(random))}),
    order: ({random}) => {
      // keys are per drop, so a later run on the same database never reuses an earlier run's keys
      const attempt = retryKeys(random, () => ({key: `d${world.dropId}-o${++keySeq}`, value: {user: fan(random), qty: qty(random)}}))
      const {user, qty: n} = attempt.value
      return {
        method: 'POST',
        path: '/orders',
        headers: {...auth(user), 'idempotency-key': attempt.key},
        body: {dropId: world.dropId, qty: n},
        // sold out, not live yet and "retry later" are answers the platform gives, not failures
        ok: (status) => status === 201 || status === 409,
        onResponse: (status, text) => recordOrder(ledger, status, text, user, attempt.key, n),
      }
    },
  }
  return {builders, ledger}
}

function recordOrder(ledger: OrderLedger, status: number, text: string, userId: number, key: string, qty: number): void {
  let body: {id?: number; error?: {code?: string}}
  try {
    body = JSON.parse(text)
  } catch {
    return
  }
  if (status === 201 && typeof body.id === 'number') {
    if (ledger.acknowledged.has(body.id)) ledger.replays++
    else {
      ledger.acknowledged.set(body.id, {orderId: body.id, userId, key})
      ledger.confirmed++
    }
    return
  }
  const code = body.error?.code
  if (status === 409 && code === 'SOLD_OUT') {
    ledger.soldOut++
    ledger.minSoldOutQty = Math.min(ledger.minSoldOutQty ?? Infinity, qty)
  } else if (status === 409 && code === 'DROP_NOT_LIVE') ledger.notLive++
}
