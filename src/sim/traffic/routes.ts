import type {RequestType} from '../scenario/schema.js'

/**
 * THE one description of every request a scenario sends. The in-process generator's builders
 * (./builders.ts) interpret it, the k6 export (../export/k6.ts) embeds it in the script and
 * interprets it the same way, and the README's request-type table is rendered from it
 * (renderRouteTable). A new request type is one entry here (plus its name in the scenario schema).
 *
 * Both interpreters take the values of a request from the run's random source in the order of
 * `draws`, one random() call per draw, so the same seed gives the same requests in both.
 */

/** Id ranges values are drawn from; their bounds come from the dataset (see populations). */
export type Population = 'products' | 'creators' | 'fans' | 'celebrityProducts' | 'celebrityProductsButFirst'

/** How one value of a request is drawn (each takes exactly one random() call). */
export type Draw =
  /** rank 1 (the population's lowest id: the celebrity's) most often, P(k) ∝ 1/k^zipf.exponent */
  | {zipf: Population}
  | {uniform: Population}
  /** a whole number in [min, max] */
  | {int: readonly [number, number]}
  /** one of the strings, each equally likely */
  | {pick: readonly string[]}
  /** a quantity from the scenario's order.qty weights */
  | {qty: true}

/** A value a body fills in: `{$: 'qty'}` is the request's value named qty. */
export type Template = string | number | boolean | null | {$: string} | {[key: string]: Template}

/** A status, or an inclusive range of statuses. */
export type StatusSpec = number | readonly [number, number]

/** What an answer means to the generator's ledger. */
export type Outcome = 'order_acknowledged' | 'sold_out' | 'not_live' | 'product' | 'product_gone' | 'product_edited' | 'product_removed'

export interface Answer {
  status: number
  /** The API error code (body.error.code) that must match too. */
  code?: string
  outcome: Outcome
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  /** Path with `{name}` placeholders: a drawn value, or a constant (`drop`: the drop's id, `celebrity`: user 1). */
  path: string
  /** Fixed query parameters, in this order. */
  query: Readonly<Record<string, string | number>>
  /** JSON body (with `{$: name}` placeholders), or null for none. */
  body: Template | null
  /** Threshold group (`read.p95 < 200ms`); orders are measured on their own. */
  group: 'read' | 'write' | null
  /** Whose bearer token: the name of a value holding a user id, or null for an anonymous request. */
  auth: string | null
  /** The request's values, drawn in this order. */
  draws: ReadonlyArray<readonly [string, Draw]>
  /**
   * Each attempt carries an Idempotency-Key; a retryRate share (order.retryRate) of attempts repeats
   * an earlier attempt (its key and every drawn value), as a client retrying after a timeout does.
   */
  idempotent: boolean
  /** Statuses that are answers, not failures. */
  ok: readonly StatusSpec[]
  /** Statuses that are answers too when the scenario also sends one of these types. */
  okWhenSent?: {types: readonly RequestType[]; statuses: readonly number[]}
  /** How the generator reads the answer (the first match counts); types without answers are not read. */
  answers: readonly Answer[]
  /** A listing's paging: the next page's cursor is the answer's `field`, sent back as query `param`; the rows are `items`. */
  paging?: {param: string; field: string; items: string}
  /** One line for the docs: who sends it and why. */
  about: string
}

/** Header names as sent (HTTP header names are case-insensitive; k6 shows them as given). */
export const AUTH_HEADER = 'Authorization'
export const IDEMPOTENCY_HEADER = 'Idempotency-Key'

/** The user id of the celebrity (creator 1 is user 1), whose token edits its products. */
export const CELEBRITY_USER = 1

/** Earlier attempts an idempotent route remembers for retries (per generator; per VU in k6). */
export const RETRY_MEMORY = 1000

/**
 * A page of a celebrity's followers: the server's default page (FOLLOW_PAGE, 100). The generator
 * always sent 100 and every measured figure was taken with it; the k6 export's 50 was the drift.
 */
const FOLLOWER_PAGE = 100
/** The inbox page the notifications screen shows. */
const INBOX_PAGE = 20
/** Prices an edit sets, in cents: the seed's range. */
const EDIT_PRICE_CENTS = [500, 50_000] as const

const READ_OK: readonly StatusSpec[] = [[200, 399]]

export const ROUTES: Readonly<Record<RequestType, Route>> = {
  browse_product: {
    method: 'GET',
    path: '/products/{product}',
    query: {},
    body: null,
    group: 'read',
    auth: null,
    draws: [['product', {zipf: 'products'}]],
    idempotent: false,
    ok: READ_OK,
    // a removed product's 404 is the right answer (in this run or an earlier one on the same data)
    okWhenSent: {types: ['remove_product'], statuses: [404]},
    answers: [
      {status: 200, outcome: 'product'},
      {status: 404, outcome: 'product_gone'},
    ],
    about: 'a product page, Zipf toward the celebrity’s; checked against the edits (no_stale_reads)',
  },
  browse_drop: {
    method: 'GET',
    path: '/drops/{drop}{page}',
    query: {},
    body: null,
    group: 'read',
    auth: null,
    // the drop page, and the stock figure a page polls (authoritative after sold out)
    draws: [['page', {pick: ['', '/stock']}]],
    idempotent: false,
    ok: READ_OK,
    answers: [],
    about: 'the drop page or its live stock count, half each',
  },
  list_followers: {
    method: 'GET',
    path: '/creators/{creator}/followers',
    query: {limit: FOLLOWER_PAGE},
    body: null,
    group: 'read',
    auth: null,
    draws: [['creator', {zipf: 'creators'}]],
    idempotent: false,
    ok: READ_OK,
    answers: [],
    paging: {param: 'cursor', field: 'nextCursor', items: 'items'},
    about: 'the first page of a creator’s followers, Zipf toward the celebrity',
  },
  follow: {
    method: 'POST',
    path: '/creators/{creator}/follow',
    query: {},
    // no `notify`: the server's default (off), as most follows are; sending a value would also
    // rewrite the setting of everyone who already follows (the notify sample among them)
    body: {},
    group: 'write',
    auth: 'user',
    draws: [
      ['creator', {zipf: 'creators'}],
      ['user', {uniform: 'fans'}],
    ],
    idempotent: false,
    ok: READ_OK,
    answers: [],
    about: 'a fan follows a creator (Zipf toward the celebrity)',
  },
  unfollow: {
    method: 'DELETE',
    path: '/creators/{creator}/follow',
    query: {},
    body: null,
    group: 'write',
    auth: 'user',
    draws: [
      ['creator', {zipf: 'creators'}],
      ['user', {uniform: 'fans'}],
    ],
    idempotent: false,
    ok: READ_OK,
    answers: [],
    about: 'a fan unfollows a creator',
  },
  order: {
    method: 'POST',
    path: '/orders',
    query: {},
    body: {dropId: {$: 'drop'}, qty: {$: 'qty'}},
    group: null,
    auth: 'user',
    draws: [
      ['user', {uniform: 'fans'}],
      ['qty', {qty: true}],
    ],
    idempotent: true,
    // sold out, not live yet and "in flight, retry" (409) are answers the platform gives, not failures
    ok: [201, 409],
    answers: [
      {status: 201, outcome: 'order_acknowledged'},
      {status: 409, code: 'SOLD_OUT', outcome: 'sold_out'},
      {status: 409, code: 'DROP_NOT_LIVE', outcome: 'not_live'},
    ],
    about: 'a fan orders from the drop with an Idempotency-Key; a retryRate share retries an earlier attempt',
  },
  notifications: {
    method: 'GET',
    path: '/me/notifications',
    query: {limit: INBOX_PAGE},
    body: null,
    group: 'read',
    auth: 'user',
    draws: [['user', {uniform: 'fans'}]],
    idempotent: false,
    ok: READ_OK,
    answers: [],
    about: 'a fan’s inbox',
  },
  edit_product: {
    method: 'PATCH',
    path: '/products/{product}',
    query: {},
    body: {priceCents: {$: 'price'}},
    group: 'write',
    auth: 'celebrity',
    draws: [
      ['product', {zipf: 'celebrityProducts'}],
      ['price', {int: EDIT_PRICE_CENTS}],
    ],
    idempotent: false,
    // 404: the product was removed (by this run's remove_product): gone is an answer
    ok: [[200, 299], 404],
    answers: [
      {status: 200, outcome: 'product_edited'},
      {status: 404, outcome: 'product_gone'},
    ],
    about: 'the celebrity changes the price of one of its products (Zipf: its hottest most) while the crowd reads them',
  },
  remove_product: {
    method: 'DELETE',
    path: '/products/{product}',
    query: {},
    body: null,
    group: 'write',
    auth: 'celebrity',
    // never the first: the drop's product (removing it would empty the drop page)
    draws: [['product', {uniform: 'celebrityProductsButFirst'}]],
    idempotent: false,
    ok: [[200, 299], 404],
    answers: [
      {status: 200, outcome: 'product_removed'},
      {status: 404, outcome: 'product_gone'},
    ],
    about: 'the celebrity removes one of its products other than the drop’s (rarely); reads of it must then answer 404',
  },
}

/** What the populations are measured from: the seeded ids. */
export interface TrafficShape {
  users: number
  creators: number
  /** Products in id order, the celebrity's (creator 1) first. */
  products: number
  /** The celebrity's products: ids 1..celebrityProducts (the seed gives creator 1 the first ids). */
  celebrityProducts: number
}

/** Each population's inclusive id range. Fans are the users who are not creators (creator k is user k). */
export function populations(w: TrafficShape): Record<Population, readonly [number, number]> {
  const products = Math.max(1, w.products)
  const celebrity = Math.max(1, Math.min(w.celebrityProducts, products))
  return {
    products: [1, products],
    creators: [1, Math.max(1, w.creators)],
    fans: [Math.min(w.creators + 1, w.users), w.users],
    celebrityProducts: [1, celebrity],
    celebrityProductsButFirst: [Math.min(2, celebrity), celebrity],
  }
}

/** `?limit=100`, or '' for none. */
export function queryString(route: Route): string {
  const q = Object.entries(route.query)
  return q.length === 0 ? '' : `?${q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`
}

/** The route's path with its values filled in: `/products/{product}` → `/products/7`. */
export function fillPath(path: string, values: Readonly<Record<string, string | number>>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name]))
}

/** The body with its `{$: name}` placeholders filled in. */
export function fillTemplate(t: Template, values: Readonly<Record<string, string | number>>): unknown {
  if (t === null || typeof t !== 'object') return t
  if ('$' in t && typeof t.$ === 'string') return values[t.$]
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, fillTemplate(v as Template, values)]))
}

/** The route's statuses that are answers as one list, given what else the scenario sends. */
export function okStatuses(route: Route, sent: ReadonlySet<RequestType>): StatusSpec[] {
  const extra = route.okWhenSent && route.okWhenSent.types.some((t) => sent.has(t)) ? route.okWhenSent.statuses : []
  return [...route.ok, ...extra]
}

const drawText = (d: Draw): string =>
  'zipf' in d ? `Zipf over ${d.zipf}` : 'uniform' in d ? `any of ${d.uniform}` : 'int' in d ? `${d.int[0]}–${d.int[1]}` : 'pick' in d ? d.pick.map((p) => JSON.stringify(p)).join(' or ') : 'order.qty weights'

/** A body template as the docs show it: `{"dropId":{drop},"qty":{qty}}`. */
const templateText = (t: Template): string => {
  if (t === null || typeof t !== 'object') return JSON.stringify(t)
  if ('$' in t && typeof t.$ === 'string') return `{${t.$}}`
  return `{${Object.entries(t).map(([k, v]) => `${JSON.stringify(k)}:${templateText(v as Template)}`).join(',')}}`
}

const statusText = (s: readonly StatusSpec[]) => s.map((x) => (typeof x === 'number' ? String(x) : `${x[0]}–${x[1]}`)).join(', ')

/** The README's request-type table, in Markdown, from the route table. */
export function renderRouteTable(routes: Readonly<Record<string, Route>> = ROUTES): string {
  const cell = (s: string) => s.replaceAll('|', '\\|')
  const lines = [
    '| type | group | request | values | token | answers (not failures) | what it is |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const [type, r] of Object.entries(routes)) {
    const request = `\`${r.method} ${r.path}${queryString(r)}\`${r.body === null ? '' : ` \`${templateText(r.body)}\``}${r.idempotent ? ' + Idempotency-Key' : ''}`
    const values = r.draws.map(([name, d]) => `${name}: ${drawText(d)}`).join('; ') || '—'
    const token = r.auth === null ? '—' : r.auth === 'celebrity' ? 'the celebrity (user 1)' : `the ${r.auth === 'user' ? 'fan' : r.auth}`
    const answers = statusText(r.ok) + (r.okWhenSent ? `; ${r.okWhenSent.statuses.join(', ')} when the scenario sends ${r.okWhenSent.types.join(', ')}` : '')
    lines.push(`| ${[type, r.group ?? 'own', request, values, token, answers, r.about].map(cell).join(' | ')} |`)
  }
  return lines.join('\n') + '\n'
}
