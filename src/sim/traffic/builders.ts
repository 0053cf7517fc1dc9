import {performance} from 'node:perf_hooks'
import {mintToken} from '../../core/tokens.js'
import {createZipf} from '../../core/random.js'
import type {AcknowledgedOrder} from '../../core/audit/drop.js'
import type {HttpRequestSpec, RequestBuilder} from '../executors/open-model/index.js'
import {phaseTypes, type Segment} from '../load/arrivals.js'
import {createQtyPicker, createRetryKeys} from '../scenario/sampling.js'
import {UsageError} from '../../core/errors.js'
import {createBlackBoxTracker, type BlackBoxLedger} from '../invariants/black-box.js'
import type {RequestType, Scenario} from '../scenario/schema.js'
import {
  defaultProfile,
  fillJson,
  fillPathQuery,
  fillString,
  matchAnswer,
  profileOk,
  readPath,
  type PreparedFixture,
  type Profile,
  type ProfileAuth,
  type ProfileOutcome,
  type ProfileRequest,
  type ProfileTarget,
  type Values,
} from './profile.js'
import {AUTH_HEADER, CELEBRITY_USER, IDEMPOTENCY_HEADER, RETRY_MEMORY, ROUTES, fillPath, fillTemplate, populations, queryString, type Draw, type Route, type TrafficShape} from './routes.js'
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
  /** Every order answer as the black-box invariants need it (checkBlackBox). */
  blackBox: BlackBoxLedger
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
  /** Idempotency keys are `${keyPrefix}-o1`, `-o2`…; unique per run on the target. Default `d${dropId}`. */
  keyPrefix?: string
  /**
   * This generator's segment of a split run (`--segment i/n`): its idempotency keys are numbered
   * i, i+n, i+2n… and its buyers are the i-th of every n users of the population, so two segments
   * never send one key, nor one buyer's orders. Default: all keys and users.
   */
  segment?: Segment
}

/** A request's drawn values, before any API shape is put on them. */
export interface DrawnValues {
  values: Record<string, number | string>
  /** Idempotent routes: the attempt's key and whether it repeats an earlier attempt. */
  key?: string
  retry?: boolean
}

/**
 * Draws the values of requests from the route table with the run's seeded random source, in the
 * order of each route's `draws`. Idempotent routes (orders) remember earlier attempts so a
 * retryRate share repeats one (its key and values). The constants drop and celebrity are added.
 */
export function createValueDrawer(s: Scenario, world: TrafficWorld, options: DrawOptions = {}): (type: RequestType, random: () => number) => DrawnValues {
  const shape: TrafficShape = {users: world.users, creators: world.creators, products: world.products, celebrityProducts: options.celebrityProducts ?? s.dataset.productsPerCreator}
  const ranges = populations(shape)
  const zipfs = new Map<string, (random: () => number) => number>()
  const qty = createQtyPicker(s.order.qty)
  const constants = {drop: world.dropId, celebrity: CELEBRITY_USER}
  const keyPrefix = options.keyPrefix ?? `d${world.dropId}`
  const seg = options.segment ?? {index: 1, count: 1}

  /** The segment's part of a population: every count-th id from lo + index − 1 (the whole range when it has too few). */
  const segmentRange = ([lo, hi]: readonly [number, number]): {first: number; step: number; size: number} => {
    const size = Math.floor((hi - lo - (seg.index - 1)) / seg.count) + 1
    return size >= 1 ? {first: lo + seg.index - 1, step: seg.count, size} : {first: lo, step: 1, size: hi - lo + 1}
  }
  /** A draw over the segment's ids (the acting user of an idempotent route); one random() as every draw. */
  const drawOwn = (d: Draw, random: () => number): number | string => {
    if (!('zipf' in d) && !('uniform' in d)) return draw(d, random)
    const name = 'zipf' in d ? d.zipf : d.uniform
    const {first, step, size} = segmentRange(ranges[name])
    if ('uniform' in d) return first + Math.floor(random() * size) * step
    let z = zipfs.get(`${name}/segment`)
    if (!z) zipfs.set(`${name}/segment`, (z = createZipf(size, s.zipf.exponent)))
    return first + (z(random) - 1) * step
  }

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
  // an idempotent route's acting user (the buyer) comes from the segment's users
  const drawAttempt = (r: Route, random: () => number) => Object.fromEntries(r.draws.map(([name, d]) => [name, name === r.auth ? drawOwn(d, random) : draw(d, random)]))

  // keys are per drop (or run), so a later run on the same database never reuses an earlier run's keys
  let keySeq = 0
  const retries = new Map<RequestType, ReturnType<typeof createRetryKeys<Record<string, number | string>>>>()

  return (type, random) => {
    const r = ROUTES[type]
    if (!r.idempotent) return {values: {...constants, ...drawAll(r, random)}}
    let retryKeys = retries.get(type)
    if (!retryKeys) retries.set(type, (retryKeys = createRetryKeys(s.order.retryRate, RETRY_MEMORY)))
    // segment i of n numbers its keys i, i+n, i+2n… (1, 2, 3… unsplit)
    const attempt = retryKeys(random, () => ({key: `${keyPrefix}-o${keySeq++ * seg.count + seg.index}`, value: drawAttempt(r, random)}))
    return {values: {...constants, ...attempt.value}, key: attempt.key, retry: attempt.retry}
  }
}

/**
 * Draws requests as the route table writes them (livedrop serve's paths, its tokens): one
 * function per request type, see createValueDrawer.
 */
export function createRequestDrawer(s: Scenario, world: TrafficWorld, options: DrawOptions = {}): (type: RequestType, random: () => number) => DrawnRequest {
  const drawValues = createValueDrawer(s, world, options)
  const tokens = new Map<number, string>()
  const token = (user: number) => {
    let t = tokens.get(user)
    if (!t) tokens.set(user, (t = mintToken(user, world.secret)))
    return t
  }
  return (type, random) => {
    const r = ROUTES[type]
    const {values, key, retry} = drawValues(type, random)
    const headers: Record<string, string> = {}
    if (key !== undefined) headers[IDEMPOTENCY_HEADER] = key
    if (r.auth !== null) headers[AUTH_HEADER] = `Bearer ${token(Number(values[r.auth]))}`
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
  /** The API's shape and the fixture it was prepared with. Default: livedrop's own (defaultProfile), the drop world.dropId. */
  profile?: ProfileTarget
}

let builtIn: Profile | undefined
/** livedrop's own profile, generated once from the route table. */
const livedropProfile = () => (builtIn ??= defaultProfile())

/**
 * Request builders, one per request type the profile describes, drawn from the route table
 * (./routes.ts) and written as the profile says (livedrop serve's own API by default). The ledger
 * records what the answers said: orders acknowledged, sold out, replayed, not live (and the
 * black-box invariants' record of them); product edits and removals, and every product read
 * checked against them (no_stale_reads) when the scenario edits or removes products.
 */
export function createBuilders(s: Scenario, world: TrafficWorld, options: BuilderOptions = {}): {builders: Record<RequestType, RequestBuilder>; ledger: OrderLedger} {
  const now = options.now ?? (() => performance.now())
  const profile = options.profile?.profile ?? livedropProfile()
  const fixture: PreparedFixture = options.profile?.fixture ?? {values: {drop: world.dropId}, lists: {}, users: {}}
  // a profile run's keys carry its run id: the target may keep keys of earlier runs on the same drop
  const drawValues = createValueDrawer(s, world, {...options, keyPrefix: options.keyPrefix ?? (fixture.values.runId !== undefined ? `r${fixture.values.runId}` : undefined)})
  const sent = new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))
  // reads are read (their bodies parsed) only when there are edits to hold them to
  const tracksEdits = sent.has('edit_product') || sent.has('remove_product')
  const tracker = createStaleReadTracker(s.engine.staleAfter ?? DEFAULT_STALE_AFTER_MS, now)
  const stock = typeof fixture.values.stock === 'number' ? fixture.values.stock : s.drop.stock
  const blackBox = createBlackBoxTracker(stock)
  const ledger: OrderLedger = {
    acknowledged: new Map(),
    confirmed: 0,
    replays: 0,
    soldOut: 0,
    notLive: 0,
    minSoldOutQty: undefined,
    staleReads: tracker.ledger,
    blackBox: blackBox.ledger,
  }
  const write = createRequestWriter(profile, fixture, world.secret)

  const builder = (type: RequestType, request: ProfileRequest): RequestBuilder => {
    const reads = (request.answers?.length ?? 0) > 0 && (type !== 'browse_product' || tracksEdits)
    const ok = profileOk(request, sent)
    return (ctx) => {
      const drawn = drawValues(type, ctx.random)
      const req = write(type, drawn)
      const sentAt = now()
      if (type === 'remove_product') tracker.removeSent(Number(drawn.values.product))
      const spec: HttpRequestSpec = {method: req.method, path: req.path, headers: req.headers, ok}
      if (req.body !== undefined) spec.body = req.body
      if (reads) {
        spec.onResponse = (status, text) => {
          let body: unknown
          try {
            body = JSON.parse(text)
          } catch {
            body = undefined
          }
          const answer = matchAnswer(request.answers!, status, body)
          if (answer) onOutcome(type, answer.outcome, {status, text, body}, request, drawn, req.values, ctx.intendedMs, sentAt)
        }
      }
      return spec
    }
  }

  function onOutcome(type: RequestType, outcome: ProfileOutcome, res: {status: number; text: string; body: unknown}, request: ProfileRequest, drawn: DrawnValues, values: Values, atMs: number, sentAt: number): void {
    const product = Number(drawn.values.product)
    const read = (path: string | undefined) => (path === undefined ? undefined : readPath(res.body, path))
    const v = read(request.read?.version)
    const version = typeof v === 'number' ? v : undefined
    switch (outcome) {
      case 'success':
      case 'replay':
      case 'sold_out':
      case 'not_live': {
        const id = read(request.read?.orderId)
        const units = read(request.read?.units)
        const orderId = typeof id === 'number' || typeof id === 'string' ? id : null
        if (outcome === 'success') recordAcknowledged(ledger, orderId, Number(drawn.values.user), drawn.key ?? '')
        else if (outcome === 'replay') ledger.replays++
        else if (outcome === 'sold_out') {
          ledger.soldOut++
          ledger.minSoldOutQty = Math.min(ledger.minSoldOutQty ?? Infinity, Number(drawn.values.qty))
        } else ledger.notLive++
        const answeredMs = atMs + (now() - sentAt)
        blackBox.record(
          {atMs, answeredMs, user: values.user ?? drawn.values.user, key: drawn.key ?? null, status: res.status, outcome, orderId, units: typeof units === 'number' ? units : Number(drawn.values.qty)},
          res.text,
        )
        break
      }
      case 'product':
        tracker.read(product, sentAt, atMs, {version})
        break
      case 'product_gone':
        if (type === 'browse_product') tracker.read(product, sentAt, atMs, 'gone')
        else tracker.removed(product, type === 'remove_product')
        break
      case 'product_edited':
        tracker.edited(product, version)
        break
      case 'product_removed':
        tracker.removed(product, true)
        break
    }
  }

  const builders = Object.fromEntries((Object.entries(profile.requests) as Array<[RequestType, ProfileRequest]>).map(([t, r]) => [t, builder(t, r)])) as Record<RequestType, RequestBuilder>
  return {builders, ledger}
}

/** One request as written on the wire for a profile. */
export interface WrittenRequest {
  method: string
  /** Path and query. */
  path: string
  headers: Record<string, string>
  body: unknown
  /** The values the templates were filled with (ids as the target knows them). */
  values: Values
}

/**
 * Writes drawn values as the profile's request: ids mapped to the target's (the fixture's lists,
 * the logged-in users'), templates filled, the acting user's credentials added.
 */
export function createRequestWriter(profile: Profile, fixture: PreparedFixture, secret: string): (type: RequestType, drawn: DrawnValues) => WrittenRequest {
  const credentials = createCredentials(profile.auth, fixture, secret)
  const list = (plural: string, single: string) => fixture.lists[plural] ?? (fixture.values[single] !== undefined ? [fixture.values[single]] : undefined)
  const products = list('products', 'product')
  const creators = list('creators', 'creator')
  const userId = (n: number | string) => fixture.users[Number(n)]?.id ?? n
  const pick = (ids: ReadonlyArray<string | number> | undefined, n: number | string) => (ids ? ids[(Number(n) - 1) % ids.length] : n)
  return (type, drawn) => {
    const r = profile.requests[type]
    if (!r) throw new UsageError(type, `the profile "${profile.name}" has no request for ${type}`)
    const route = ROUTES[type]
    const d = drawn.values
    const values: Record<string, string | number> = {...fixture.values, ...d, drop: fixture.values.drop ?? d.drop}
    if (d.product !== undefined) values.product = pick(products, d.product)
    if (d.creator !== undefined) values.creator = pick(creators, d.creator)
    if (d.user !== undefined) values.user = userId(d.user)
    values.celebrity = userId(d.celebrity)
    if (drawn.key !== undefined) values.key = drawn.key
    const headers: Record<string, string> = {}
    for (const [name, t] of Object.entries(r.headers ?? {})) headers[name] = String(fillString(t, values))
    if ((r.auth ?? route.auth !== null) && route.auth !== null) Object.assign(headers, credentials(Number(d[route.auth]), values))
    return {method: r.method, path: fillPathQuery(r, values), headers, body: r.body === undefined ? undefined : fillJson(r.body, values), values}
  }
}

/** The headers that make a request the given user's (by number), per the profile's auth. */
export function createCredentials(auth: ProfileAuth, fixture: PreparedFixture, secret: string): (user: number, values: Values) => Record<string, string> {
  switch (auth.type) {
    case 'none':
      return () => ({})
    case 'header':
      return (_user, values) => ({[auth.name]: String(fillString(auth.value, values))})
    case 'login':
      return (user) => {
        const token = fixture.users[user]?.token
        return token === undefined ? {} : {[auth.header]: `${auth.prefix}${token}`}
      }
    case 'jwt': {
      const tokens = new Map<number, string>()
      return (user) => {
        const id = Number(fixture.users[user]?.id ?? user)
        let t = tokens.get(id)
        if (!t) tokens.set(id, (t = mintToken(id, secret)))
        return {[auth.header]: `${auth.prefix}${t}`}
      }
    }
  }
}

/** An acknowledged order in the database-check ledger (livedrop's numeric ids; another API's are only in the black-box record). */
function recordAcknowledged(ledger: OrderLedger, id: string | number | null, userId: number, key: string): void {
  if (typeof id !== 'number') {
    ledger.confirmed++
    return
  }
  if (ledger.acknowledged.has(id)) ledger.replays++
  else {
    ledger.acknowledged.set(id, {orderId: id, userId, key})
    ledger.confirmed++
  }
}
