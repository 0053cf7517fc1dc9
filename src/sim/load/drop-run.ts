import {randomBytes} from 'node:crypto'
import {isDeepStrictEqual} from 'node:util'
import {createDrop, startDrop} from '../../core/catalog/drops.js'
import {createDropFixture} from '../../core/catalog/fixture.js'
import {checkWholeNumber, LivedropError, throwUsageErrors, UsageError} from '../../core/errors.js'
import type {EngineDeps} from '../../core/orders/deps.js'
import {placeOrder, type PlaceOrderResult} from '../../core/orders/place-order.js'
import {createRandom, randomInt} from '../../core/random.js'
import {DEFAULT_BUCKETS, type StockStrategyName} from '../../core/stock/index.js'
import {LatencyHistogram, type LatencySummary} from '../../core/histogram.js'
import {checkDropInvariants, type AcknowledgedOrder, type InvariantResult} from '../../core/audit/drop.js'

/**
 * `livedrop drop run`: a drop raced in-process. Creates what it needs (creator, product, buyers)
 * on any migrated database, races buyers against placeOrder directly with bounded concurrency,
 * some of them retrying with the same key (at the same time and after the answer), then checks
 * the invariants against the database.
 */
export interface DropRunOptions {
  /** Units on sale. Default 500. */
  stock: number
  /** Distinct buyers, one first request each. Default 20,000. */
  buyers: number
  /** Requests in flight at once. Default 64. */
  concurrency: number
  strategy: StockStrategyName
  /** Fraction of buyers that also retry with the same key (one duplicate while in flight, one after). Default 0.2. */
  retryRate: number
  /** Quantity per order, uniform in [qtyMin, qtyMax]. Default 1-1. */
  qtyMin: number
  qtyMax: number
  /** Buckets for the buckets strategy. Default 16. */
  buckets?: number
  /** Low-stock threshold of the drop. Default 10% of the stock. */
  lowStock?: number
  /** PRNG seed for quantities and retries. Default 1. */
  seed?: number
}

export const DROP_RUN_DEFAULTS: DropRunOptions = {
  stock: 500,
  buyers: 20_000,
  concurrency: 64,
  strategy: 'row',
  retryRate: 0.2,
  qtyMin: 1,
  qtyMax: 1,
  buckets: DEFAULT_BUCKETS,
  seed: 1,
}

export interface DropRunProgress {
  done: number
  total: number
}

export interface DropRunResult {
  dropId: number
  strategy: StockStrategyName
  stock: number
  buyers: number
  concurrency: number
  /** Requests sent, retries included. */
  attempts: number
  /** Distinct confirmed orders. */
  orders: number
  unitsSold: number
  soldOutAnswers: number
  replays: number
  /** Replays whose answer differed from the first answer for their key (must be 0). */
  replayMismatches: number
  /** Errors by code (REQUEST_IN_FLIGHT is expected from duplicates sent while the first is in flight). */
  errors: Record<string, number>
  seconds: number
  /** Seconds from the start to the last first-time confirmation (the sell-out time when it sold out). */
  sellingSeconds: number
  /** Orders per second while selling (orders / sellingSeconds). */
  ordersPerSecond: number
  attemptsPerSecond: number
  latency: LatencySummary
  invariants: InvariantResult[]
  ok: boolean
}

export function validateDropRunOptions(o: DropRunOptions): void {
  const errors: UsageError[] = []
  const whole = (field: string, v: number, min: number) => checkWholeNumber(errors, field, v, min)
  whole('--stock', o.stock, 1)
  whole('--buyers', o.buyers, 1)
  whole('--concurrency', o.concurrency, 1)
  whole('--qty', o.qtyMin, 1)
  whole('--qty', o.qtyMax, o.qtyMin)
  if (!(o.retryRate >= 0 && o.retryRate <= 1)) errors.push(new UsageError('--retry-rate', `must be between 0 and 1, got ${o.retryRate}`))
  throwUsageErrors(errors)
}

/** Runs a drop race and checks it. The drop is created, started and left as it ends (sold out or live). */
export async function runDrop(deps: EngineDeps, options: DropRunOptions, onProgress: (p: DropRunProgress) => void = () => {}): Promise<DropRunResult> {
  const o = {...DROP_RUN_DEFAULTS, ...options}
  validateDropRunOptions(o)
  const tag = randomBytes(4).toString('hex')
  const fixture = await createDropFixture(deps.db, o.buyers, tag)
  const now = Date.now()
  const drop = await createDrop(deps, {
    creatorId: fixture.creatorId,
    productId: fixture.productId,
    stock: o.stock,
    startsAt: new Date(now),
    endsAt: new Date(now + 3_600_000),
    lowStockThreshold: o.lowStock,
    strategy: o.strategy,
    buckets: o.buckets,
  })
  await startDrop(deps, drop.id)

  const random = createRandom(o.seed ?? 1)
  const plan = fixture.buyerIds.map((userId, i) => ({userId, key: `run-${tag}-${i}`, qty: randomInt(random, o.qtyMin, o.qtyMax), retry: random() < o.retryRate}))
  const latency = new LatencyHistogram()
  const errors: Record<string, number> = {}
  const first = new Map<string, PlaceOrderResult['response']>()
  const acked = new Map<string, AcknowledgedOrder>()
  let attempts = 0
  let soldOutAnswers = 0
  let replays = 0
  let replayMismatches = 0
  let minSoldOutQty = Infinity
  let lastConfirmedAt = 0

  const attempt = async (p: (typeof plan)[number]): Promise<void> => {
    attempts++
    const started = performance.now()
    try {
      const result = await placeOrder(deps, {userId: p.userId, dropId: drop.id, qty: p.qty, idempotencyKey: p.key})
      latency.recordMs(performance.now() - started)
      const seen = first.get(p.key)
      if (seen === undefined) first.set(p.key, result.response)
      else if (!isDeepStrictEqual(seen, result.response)) replayMismatches++
      if (result.replay) replays++
      if (result.outcome === 'confirmed') {
        acked.set(p.key, {orderId: result.order!.id, userId: p.userId, key: p.key})
        if (!result.replay) lastConfirmedAt = performance.now()
      }
      else if (!result.replay) {
        soldOutAnswers++
        minSoldOutQty = Math.min(minSoldOutQty, p.qty)
      }
    } catch (err) {
      latency.recordMs(performance.now() - started)
      const code = err instanceof LivedropError ? err.code : 'INTERNAL'
      errors[code] = (errors[code] ?? 0) + 1
    }
  }

  const started = performance.now()
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < plan.length) {
      const p = plan[next++]
      // a retrying buyer sends a duplicate while the first is in flight, then once more after
      await (p.retry ? Promise.all([attempt(p), attempt(p)]) : attempt(p))
      if (p.retry) await attempt(p)
      done++
      if (done % 500 === 0 || done === plan.length) onProgress({done, total: plan.length})
    }
  }
  await Promise.all(Array.from({length: Math.min(o.concurrency, plan.length)}, worker))
  const seconds = (performance.now() - started) / 1000
  const sellingSeconds = Math.max(0.001, (lastConfirmedAt - started) / 1000)

  const acknowledged = [...acked.values()]
  const invariants = await checkDropInvariants(deps.db, drop.id, acknowledged, {minSoldOutQty: Number.isFinite(minSoldOutQty) ? minSoldOutQty : undefined})
  invariants.push({name: 'replays_identical', ok: replayMismatches === 0, details: {mismatches: replayMismatches}})
  const qtyOf = new Map(plan.map((p) => [p.key, p.qty]))
  const unitsSold = [...acked.keys()].reduce((sum, key) => sum + qtyOf.get(key)!, 0)
  return {
    dropId: drop.id,
    strategy: o.strategy,
    stock: o.stock,
    buyers: o.buyers,
    concurrency: o.concurrency,
    attempts,
    orders: acknowledged.length,
    unitsSold,
    soldOutAnswers,
    replays,
    replayMismatches,
    errors,
    seconds,
    sellingSeconds: lastConfirmedAt ? sellingSeconds : 0,
    ordersPerSecond: lastConfirmedAt ? acknowledged.length / sellingSeconds : 0,
    attemptsPerSecond: attempts / seconds,
    latency: latency.summary(),
    invariants,
    ok: invariants.every((i) => i.ok),
  }
}
