import {performance} from 'node:perf_hooks'
import {mintToken} from '../../core/tokens.js'
import {createZipf} from '../../core/random.js'
import type {AcknowledgedOrder} from '../../core/audit/drop.js'
import type {HttpRequestSpec, RequestBuilder} from '../load/open-model.js'
import {phaseTypes} from '../load/arrivals.js'
import {createQtyPicker, createRetryKeys} from '../scenario/sampling.js'
import {REQUEST_TYPES, type RequestType, type Scenario} from '../scenario/schema.js'
import {
  AUTH_HEADER,
  CELEBRITY_USER,
  IDEMPOTENCY_HEADER,
  RETRY_MEMORY,
  ROUTES,
  fillPath,
  fillTemplate,
  isOk,
  populations,
  queryString,
  type Answer,
  type Draw,
  type Outcome,
  type Route,
  type TrafficShape,
} from './routes.js'
import {DEFAULT_STALE_AFTER_MS, createStaleReadTracker, type StaleReadLedger} from './stale-reads.js'

/** The ids the traffic refers to: what the seed made and the drop the orders race for. */
export interface TrafficWorld {
  users: number
  creators: number
  /** Products in id order; the celebrity's (creator 1) come first, so Zipf rank 1 is theirs. */
  products: number
  dropId: number
  secret: string
}

/** What the responses told the generator, for the invariants and the report. */
export interface OrderLedger {
  acknowledged: Map<number, AcknowledgedOrder>
  confirmed: number
  replays: number
  soldOut: number
  notLive: number
  /** Smallest quantity answered "sold out", to check no buyer was refused while stock remained. */
  minSoldOutQty: number | undefined
  /** Product edits, removals and the reads held to the staleness bound (checkStaleReads). */
  staleReads: StaleReadLedger
}

/** One request drawn from the route table: what both the generator and the k6 script send. */
export interface DrawnRequest {
  type: RequestType
  method: Route['method']
  /** Path and query. */
  path: string
  /** Only the headers the route asks for (the token, the Idempotency-Key). */
  headers: Record<string, string>
  /** The JSON body, or undefined. */
  body: unknown
  /** The request's values by name (drawn ones and the constants drop, celebrity). */
  values: Record<string, number | string>
  /** Idempotent routes: whether this attempt repeats an earlier one. */
  retry?: boolean
}

export interface DrawOptions {
  /** The celebrity's products (ids 1..n). Default: dataset.productsPerCreator. */
  celebrityProducts?: number
}

/**
 * Draws requests from the route table with the run's seeded random source: one function per
 * request type, each taking its values in the order of the route's `draws`. Idempotent routes
 * (orders) remember earlier attempts so a retryRate share repeats one (its key and values).
 */
export function createRequestDrawer(s: Scenario, world: TrafficWorld, options: DrawOptions = {}): (type: RequestType, random: () => number) => DrawnRequest {
  const shape: TrafficShape = {users: world.users, creators: world.creators, products: world.products, celebrityProducts: options.celebrityProducts ?? s.dataset.productsPerCreator}
  const ranges = populations(shape)
  const zipfs = new Map<string, (random: () => number) => number>()
  const qty = createQtyPicker(s.order.qty)
  const tokens = new Map<number, string>()
  const token = (user: number) => {
    let t = tokens.get(user)
    if (!t) tokens.set(user, (t = mintToken(user, world.secret)))
    return t
  }
  const constants = {drop: world.dropId, celebrity: CELEBRITY_USER}

  const draw = (d: Draw, random: () => number): number | string => {
    if ('zipf' in d) {
      const [lo, hi] = ranges[d.zipf]
      let z = zipfs.get(d.zipf)
      if (!z) zipfs.set(d.zipf, (z = createZipf(hi - lo + 1, s.zipf.exponent)))
      return lo + z(random) - 1
    }
    if ('uniform' in d) {
      const [lo, hi] = ranges[d.uniform]
      return lo + Math.floor(random() * (hi - lo + 1))
    }
    if ('int' in d) return d.int[0] + Math.floor(random() * (d.int[1] - d.int[0] + 1))
    if ('pick' in d) return d.pick[Math.floor(random() * d.pick.length)]
    return qty(random)
  }
  const drawAll = (r: Route, random: () => number) => Object.fromEntries(r.draws.map(([name, d]) => [name, draw(d, random)]))

  // keys are per drop, so a later run on the same database never reuses an earlier run's keys
  let keySeq = 0
  const retries = new Map<RequestType, ReturnType<typeof createRetryKeys<Record<string, number | string>>>>()

  return (type, random) => {
    const r = ROUTES[type]
    const headers: Record<string, string> = {}
    let drawn: Record<string, number | string>
    let retry: boolean | undefined
    if (r.idempotent) {
      let retryKeys = retries.get(type)
      if (!retryKeys) retries.set(type, (retryKeys = createRetryKeys(s.order.retryRate, RETRY_MEMORY)))
      const attempt = retryKeys(random, () => ({key: `d${world.dropId}-o${++keySeq}`, value: drawAll(r, random)}))
      drawn = attempt.value
      retry = attempt.retry
      headers[IDEMPOTENCY_HEADER] = attempt.key
    } else drawn = drawAll(r, random)
    const values = {...constants, ...drawn}
    if (r.auth !== null) headers[AUTH_HEADER] = `Bearer ${token(Number(values[r.auth as keyof typeof values]))}`
    return {
      type,
      method: r.method,
      path: fillPath(r.path, values) + queryString(r),
      headers,
      body: r.body === null ? undefined : fillTemplate(r.body, values),
      values,
      ...(retry === undefined ? {} : {retry}),
    }
  }
}

export interface BuilderOptions extends DrawOptions {
  /** The clock sends and answers are timed on for no_stale_reads. Default performance.now. */
  now?: () => number
}

/**
 * Request builders for the routes of `livedrop serve`, one per scenario request type, drawn from
 * the route table (./routes.ts). The ledger records what the answers said: orders acknowledged,
 * sold out, replayed, not live; product edits and removals, and every product read checked
 * against them (no_stale_reads) when the scenario edits or removes products.
 */
export function createBuilders(s: Scenario, world: TrafficWorld, options: BuilderOptions = {}): {builders: Record<RequestType, RequestBuilder>; ledger: OrderLedger} {
  const now = options.now ?? (() => performance.now())
  const drawRequest = createRequestDrawer(s, world, options)
  const sent = new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))
  // reads are read (their bodies parsed) only when there are edits to hold them to
  const tracksEdits = sent.has('edit_product') || sent.has('remove_product')
  const tracker = createStaleReadTracker(s.engine.staleAfter ?? DEFAULT_STALE_AFTER_MS, now)
  const ledger: OrderLedger = {acknowledged: new Map(), confirmed: 0, replays: 0, soldOut: 0, notLive: 0, minSoldOutQty: undefined, staleReads: tracker.ledger}

  const builder = (type: RequestType): RequestBuilder => {
    const route = ROUTES[type]
    const reads = route.answers.length > 0 && (type !== 'browse_product' || tracksEdits)
    return (ctx) => {
      const req = drawRequest(type, ctx.random)
      const sentAt = now()
      if (type === 'remove_product') tracker.removeSent(Number(req.values.product))
      const spec: HttpRequestSpec = {method: req.method, path: req.path, headers: req.headers, ok: (status) => isOk(route, status, sent)}
      if (req.body !== undefined) spec.body = req.body
      if (reads) spec.onResponse = (status, text) => record(route, status, text, (outcome, body) => onOutcome(outcome, body, req, sentAt, ctx.intendedMs))
      return spec
    }
  }

  function onOutcome(outcome: Outcome, body: Record<string, unknown>, req: DrawnRequest, sentAt: number, atMs: number): void {
    const product = Number(req.values.product)
    const version = typeof body.version === 'number' ? body.version : undefined
    switch (outcome) {
      case 'order_acknowledged':
        recordAcknowledged(ledger, body, Number(req.values.user), req.headers[IDEMPOTENCY_HEADER])
        break
      case 'sold_out':
        ledger.soldOut++
        ledger.minSoldOutQty = Math.min(ledger.minSoldOutQty ?? Infinity, Number(req.values.qty))
        break
      case 'not_live':
        ledger.notLive++
        break
      case 'product':
        tracker.read(product, sentAt, atMs, {version})
        break
      case 'product_gone':
        if (req.type === 'browse_product') tracker.read(product, sentAt, atMs, 'gone')
        else tracker.removed(product, req.type === 'remove_product')
        break
      case 'product_edited':
        tracker.edited(product, version)
        break
      case 'product_removed':
        tracker.removed(product, true)
        break
    }
  }

  const builders = Object.fromEntries(REQUEST_TYPES.map((t) => [t, builder(t)])) as Record<RequestType, RequestBuilder>
  return {builders, ledger}
}

/** Finds the route's answer for a response (status, and the API error code where given) and passes its outcome on. */
function record(route: Route, status: number, text: string, on: (outcome: Outcome, body: Record<string, unknown>) => void): void {
  const candidates = route.answers.filter((a: Answer) => a.status === status)
  if (candidates.length === 0) return
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text)
  } catch {
    return
  }
  const code = (body?.error as {code?: unknown} | undefined)?.code
  const answer = candidates.find((a) => a.code === undefined || a.code === code)
  if (answer) on(answer.outcome, body ?? {})
}

function recordAcknowledged(ledger: OrderLedger, body: Record<string, unknown>, userId: number, key: string): void {
  if (typeof body.id !== 'number') return
  if (ledger.acknowledged.has(body.id)) ledger.replays++
  else {
    ledger.acknowledged.set(body.id, {orderId: body.id, userId, key})
    ledger.confirmed++
  }
}
