import {DEFAULT_TOKEN_TTL_SECONDS} from '../../core/tokens.js'
import {parseThreshold, type Threshold} from '../metrics/thresholds.js'
import {phaseTypes, rampOf, type Segment} from '../load/arrivals.js'
import {REQUEST_GROUPS, type RequestType, type Scenario} from '../scenario/schema.js'
import {AUTH_HEADER, CELEBRITY_USER, IDEMPOTENCY_HEADER, RETRY_MEMORY, ROUTES, okStatuses, populations, queryString, type StatusSpec} from '../traffic/routes.js'

/**
 * Generates a TypeScript k6 script (typed with @types/k6) that drives the same traffic as a
 * scenario against `livedrop serve`, for k6 or k6-operator across machines:
 *
 * - the requests from the route table (src/sim/traffic/routes.ts), embedded as data with one
 *   interpreter that draws values as the generator's builders do (test/traffic-parity.test.ts
 *   compares the two request by request from one seed);
 * - one k6 scenario per request type; its arrival rate follows the phases (constant-arrival-rate
 *   when the rate never changes, else ramping-arrival-rate with instant steps at phase starts);
 * - the scenario's thresholds translated to k6 metrics (http_req_duration, http_req_failed,
 *   http_reqs) filtered by the tags every request carries (req_type, req_group, phase);
 * - bearer tokens minted exactly as src/core/tokens.ts does (HMAC-SHA256 with k6/crypto);
 * - orders with an Idempotency-Key each, a retryRate share of attempts repeating an earlier
 *   key with the same body, quantities drawn from the file's weights;
 * - Zipf popularity toward the celebrity (rank 1) for products and creators.
 *
 * - split across instances with k6's own execution segments (k6-operator's parallelism, or
 *   --segment i/n baked into options.executionSegment): k6 stripes each arrival-rate scenario's
 *   iterations over the segments, and the script gives each equal segment the same share of buyers
 *   as `scenario run --segment i/n` (read from exec.test.options at run time).
 *
 * k6 has no Poisson arrivals and measures latency from the actual send (no coordinated-omission
 * correction: late iterations are dropped and counted in dropped_iterations instead). Thresholds
 * k6 cannot measure (notify, late) are listed in the script as not translated.
 */
export interface K6ExportOptions {
  /** Recorded in the header comment. Default none. */
  file?: string
  /** Default base URL of the target (the script reads TARGET first). Default http://127.0.0.1:8080. */
  target?: string
  /** This instance's part of a split test: options.executionSegment and executionSegmentSequence for n equal segments. Default: none (k6-operator sets them per runner). */
  segment?: Segment
}

/** i/n as k6 writes a segment bound: 0, 1, or a reduced fraction (1/2, 2/3). */
function fraction(i: number, n: number): string {
  if (i === 0) return '0'
  if (i === n) return '1'
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
  const g = gcd(i, n)
  return `${i / g}/${n / g}`
}

/**
 * k6's execution-segment options for segment i of n equal ones: {executionSegment: '1/3:2/3',
 * executionSegmentSequence: '0,1/3,2/3,1'}. With the whole sequence given, k6 stripes iterations
 * so that the n instances together run each iteration exactly once.
 */
export function k6ExecutionSegment(s: Segment): {executionSegment: string; executionSegmentSequence: string} {
  return {
    executionSegment: `${fraction(s.index - 1, s.count)}:${fraction(s.index, s.count)}`,
    executionSegmentSequence: Array.from({length: s.count + 1}, (_, i) => fraction(i, s.count)).join(','),
  }
}

/** Which tag a threshold metric filters on: a request type, a group, or everything. */
function filterFor(metric: string): Record<string, string> | null {
  if (metric === 'all') return {}
  if (metric in REQUEST_GROUPS) return {req_group: metric}
  if ((REQUEST_GROUPS.all as readonly string[]).includes(metric)) return {req_type: metric}
  return null
}

const num = (n: number) => String(Number(n.toPrecision(12)))
const K6_OP: Record<Threshold['op'], string> = {'<': '<', '<=': '<=', '>': '>', '>=': '>=', '==': '=='}

/** One livedrop threshold as a k6 threshold: `{key: 'http_req_duration{req_group:read}', condition: 'p(95)<200'}`, or why not. */
export function translateThreshold(expression: string, phase: string | null): {key: string; condition: string} | {skipped: string} {
  const t = parseThreshold(expression)
  const filter = filterFor(t.metric)
  if (!filter) return {skipped: `${t.metric} is measured by livedrop itself (not an HTTP request k6 sends)`}
  if (t.stat === 'late') return {skipped: 'k6 drops late iterations (dropped_iterations) instead of sending them late; no share to compare'}
  if (t.windowS !== null) return {skipped: 'k6 thresholds hold for the whole test only, not per window (grafana/k6 issue 2379)'}
  // an optional threshold (`order.p95? < 500ms`) has no k6 spelling: k6 passes every threshold without data
  const tags = {...filter, ...(phase ? {phase} : {})}
  const tagText = Object.entries(tags)
    .map(([k, v]) => `${k}:${v}`)
    .join(',')
  const metricKey = (m: string) => (tagText ? `${m}{${tagText}}` : m)
  const op = K6_OP[t.op]
  if (t.kind === 'latency') {
    const stat = t.stat === 'max' ? 'max' : t.stat === 'mean' ? 'avg' : `p(${t.stat.slice(1)})`
    return {key: metricKey('http_req_duration'), condition: `${stat}${op}${num(t.limit)}`}
  }
  if (t.stat === 'errors') return {key: metricKey('http_req_failed'), condition: `rate${op}${num(t.limit)}`}
  if (t.stat === 'rate') return {key: metricKey('http_reqs'), condition: `rate${op}${num(t.limit)}`}
  return {key: metricKey('http_reqs'), condition: `count${op}${num(t.limit)}`}
}

/** JSON as a script literal: short values on one line, long ones broken up with indentation. */
function pretty(v: unknown, indent = ''): string {
  const flat = JSON.stringify(v)
  if (v === null || typeof v !== 'object' || flat.length + indent.length <= 100) return flat
  const next = indent + '  '
  if (Array.isArray(v)) return `[\n${v.map((x) => next + pretty(x, next)).join(',\n')},\n${indent}]`
  const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k))
  return `{\n${Object.entries(v).map(([k, x]) => `${next}${key(k)}: ${pretty(x, next)}`).join(',\n')},\n${indent}}`
}

/** The smallest k6 timeUnit (1s, 10s, 100s, 1000s) in which every rate is a whole number of iterations. */
function timeUnitFor(rates: number[]): number {
  for (const unit of [1, 10, 100, 1000]) if (rates.every((r) => Math.abs(r * unit - Math.round(r * unit)) < 1e-9)) return unit
  return 1000
}

/** A status list as expectedStatuses arguments: 201, {min: 200, max: 399}. */
const expectedArgs = (statuses: StatusSpec[]) => statuses.map((x) => (typeof x === 'number' ? String(x) : `{min: ${x[0]}, max: ${x[1]}}`)).join(', ')

/**
 * The request-building part of the script: the route table's entries for the exported types as
 * data (ROUTES), and one interpreter that draws each request's values in the table's order, one
 * Math.random() per draw, exactly as src/sim/traffic/builders.ts does with the seeded source.
 */
function requestCode(s: Scenario, types: RequestType[]): string {
  const sent = new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))
  const routes = Object.fromEntries(
    types.map((t) => {
      const r = ROUTES[t]
      return [t, {method: r.method, path: r.path, query: queryString(r), body: r.body, auth: r.auth, draws: r.draws, idempotent: r.idempotent, group: r.group}]
    }),
  )
  const d = s.dataset
  const ranges = populations({users: d.users, creators: d.creators, products: d.creators * d.productsPerCreator, celebrityProducts: d.productsPerCreator})
  return `type Value = number | string
interface Draw {
  readonly zipf?: string
  readonly uniform?: string
  readonly int?: readonly number[]
  readonly pick?: readonly string[]
  readonly qty?: boolean
}
interface Route {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly body: unknown
  readonly auth: string | null
  readonly draws: ReadonlyArray<readonly [string, Draw]>
  readonly idempotent: boolean
  readonly group: string | null
}

/** The route table (src/sim/traffic/routes.ts) for the request types this scenario sends. */
const ROUTES: Record<string, Route> = ${pretty(routes)}

/** Id ranges values are drawn from, inclusive: fans are the users who are not creators. */
const POPULATIONS: Record<string, readonly [number, number]> = ${pretty(ranges)}

/** Statuses that are answers, not failures (a sold-out order's 409, a removed product's 404). */
const EXPECTED: Record<string, ReturnType<typeof http.expectedStatuses>> = {
${types.map((t) => `  ${t}: http.expectedStatuses(${expectedArgs(okStatuses(ROUTES[t], sent))}),`).join('\n')}
}

const CONSTANTS: Record<string, Value> = {drop: DROP_ID, celebrity: ${CELEBRITY_USER}}

/** Cumulative Zipf weights over ranks 1..n; rank 1 (the celebrity) is the most popular. */
function zipfCdf(n: number): number[] {
  const cdf: number[] = []
  let sum = 0
  for (let k = 1; k <= n; k++) cdf.push((sum += 1 / Math.pow(k, SCENARIO.zipfExponent)))
  return cdf.map((c) => c / sum)
}

const CDFS: Record<string, number[]> = {}

function zipfRank(cdf: number[], u: number): number {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (cdf[mid] < u) lo = mid + 1
    else hi = mid
  }
  return lo + 1
}

const QTY_TOTAL = SCENARIO.qty.reduce((s, [, w]) => s + w, 0)

/** One value, one Math.random() call. */
function draw(d: Draw): Value {
  if (d.zipf !== undefined) {
    const [lo, hi] = POPULATIONS[d.zipf]
    let cdf = CDFS[d.zipf]
    if (cdf === undefined) cdf = CDFS[d.zipf] = zipfCdf(hi - lo + 1)
    return lo + zipfRank(cdf, Math.random()) - 1
  }
  if (d.uniform !== undefined) {
    const [lo, hi] = POPULATIONS[d.uniform]
    return lo + Math.floor(Math.random() * (hi - lo + 1))
  }
  if (d.int !== undefined) return d.int[0] + Math.floor(Math.random() * (d.int[1] - d.int[0] + 1))
  if (d.pick !== undefined) return d.pick[Math.floor(Math.random() * d.pick.length)]
  let u = Math.random() * QTY_TOTAL
  for (const [q, w] of SCENARIO.qty) if ((u -= w) < 0) return q
  return SCENARIO.qty[SCENARIO.qty.length - 1][0]
}

function drawAll(route: Route): Record<string, Value> {
  const values: Record<string, Value> = {}
  for (const [name, d] of route.draws) values[name] = draw(d)
  return values
}

/** A segment bound as k6 writes it: '2/3', '0.5' or '50%'. */
function rational(x: string): number {
  if (x.endsWith('%')) return Number(x.slice(0, -1)) / 100
  const [n, d] = x.split('/')
  return d === undefined ? Number(n) : Number(n) / Number(d)
}

let SEGMENT: readonly [number, number] | undefined
/**
 * This instance's segment as [index, count] (1-based) when k6 runs it as one of count equal
 * execution segments (--execution-segment, k6-operator's parallelism, or options); [1, 1] otherwise
 * (unequal segments keep every buyer; their keys still differ by VU). Read once, in a VU.
 */
function segment(): readonly [number, number] {
  if (SEGMENT !== undefined) return SEGMENT
  // exec.test is absent outside k6 (the parity test's stand-in for k6/execution)
  const text = (exec.test ? exec.test.options.executionSegment : undefined) || '0:1'
  const [from, to] = text.includes(':') ? text.split(':').map(rational) : [0, rational(text)]
  const count = Math.round(1 / (to - from))
  const index = Math.round(from * count) + 1
  const equal = Math.abs(count * (to - from) - 1) < 1e-9 && Math.abs((index - 1) / count - from) < 1e-9
  return (SEGMENT = equal ? [index, count] : [1, 1])
}

/** A draw over this segment's ids: every count-th one from lo + index − 1 (the acting user of an idempotent route), as the generator's --segment. */
function drawOwn(d: Draw): Value {
  const [index, count] = segment()
  const name = d.zipf !== undefined ? d.zipf : d.uniform
  if (count === 1 || name === undefined) return draw(d)
  const [lo, hi] = POPULATIONS[name]
  let first = lo + index - 1
  let step = count
  let size = Math.floor((hi - lo - (index - 1)) / count) + 1
  if (size < 1) {
    first = lo
    step = 1
    size = hi - lo + 1
  }
  if (d.uniform !== undefined) return first + Math.floor(Math.random() * size) * step
  const key = name + '/segment'
  let cdf = CDFS[key]
  if (cdf === undefined) cdf = CDFS[key] = zipfCdf(size)
  return first + (zipfRank(cdf, Math.random()) - 1) * step
}

/** An idempotent route's values: its acting user (the buyer) from this segment's users. */
function drawAttempt(route: Route): Record<string, Value> {
  const values: Record<string, Value> = {}
  for (const [name, d] of route.draws) values[name] = name === route.auth ? drawOwn(d) : draw(d)
  return values
}

function fill(t: unknown, values: Record<string, Value>): unknown {
  if (t === null || typeof t !== 'object') return t
  const o = t as Record<string, unknown>
  if (typeof o.$ === 'string') return values[o.$]
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(o)) out[k] = fill(o[k], values)
  return out
}

interface Attempt {
  key: string
  values: Record<string, Value>
}
/** This VU's earlier attempts of idempotent routes (at most ${RETRY_MEMORY} each), for retries. */
const PAST: Record<string, {attempts: Attempt[]; next: number}> = {}

/** Sends one request of a type, as the route table describes it. */
function send(type: string, data: {runId: string}): void {
  const route = ROUTES[type]
  const headers: Record<string, string> = {'Content-Type': 'application/json'}
  let drawn: Record<string, Value>
  if (route.idempotent) {
    // a retryRate share of attempts repeats an earlier attempt: same user, body and ${IDEMPOTENCY_HEADER}
    let past = PAST[type]
    if (past === undefined) past = PAST[type] = {attempts: [], next: 0}
    let attempt: Attempt
    if (past.attempts.length > 0 && Math.random() < SCENARIO.retryRate) attempt = past.attempts[Math.floor(Math.random() * past.attempts.length)]
    else {
      // idInTest is unique across instances: segments never share a key
      attempt = {key: \`k6-\${data.runId}-\${exec.vu.idInTest}-\${exec.vu.iterationInInstance}\`, values: drawAttempt(route)}
      if (past.attempts.length < ${RETRY_MEMORY}) past.attempts.push(attempt)
      else past.attempts[past.next++ % ${RETRY_MEMORY}] = attempt
    }
    drawn = attempt.values
    headers['${IDEMPOTENCY_HEADER}'] = attempt.key
  } else drawn = drawAll(route)
  const values: Record<string, Value> = {...CONSTANTS, ...drawn}
  if (route.auth !== null) headers['${AUTH_HEADER}'] = \`Bearer \${token(Number(values[route.auth]))}\`
  const url = BASE + route.path.replace(/\\{(\\w+)\\}/g, (_, name: string) => String(values[name])) + route.query
  const body = route.body === null ? null : JSON.stringify(fill(route.body, values))
  const tags: Record<string, string> = {req_type: type, phase: phaseNow()}
  if (route.group !== null) tags.req_group = route.group
  const params: RefinedParams<ResponseType | undefined> = {headers, tags, responseCallback: EXPECTED[type]}
  if (route.method === 'GET') http.get(url, params)
  else if (route.method === 'POST') http.post(url, body, params)
  else if (route.method === 'PATCH') http.patch(url, body, params)
  else http.del(url, body, params)
}
`
}

/** The k6 script for a validated (already scaled) scenario. */
export function exportK6(s: Scenario, options: K6ExportOptions = {}): string {
  const types = (REQUEST_GROUPS.all as readonly RequestType[]).filter((t) => s.phases.some((p) => phaseTypes(p).includes(t)))
  const totalMs = s.phases.reduce((n, p) => n + p.duration, 0)

  // one k6 scenario per request type, its rate stepping at phase boundaries and ramping within a phase (rampTo)
  const scenarios: Record<string, Record<string, unknown>> = {}
  for (const type of types) {
    const ramps = s.phases.map((p) => rampOf(p, type))
    const rates = ramps.flat()
    const unit = timeUnitFor(rates)
    const peak = Math.max(...rates)
    const vus = {preAllocatedVUs: Math.max(2, Math.min(s.generator.connections, Math.ceil(peak * 0.1))), maxVUs: s.generator.connections}
    scenarios[type] = rates.every((r) => r === rates[0])
      ? {executor: 'constant-arrival-rate', exec: type, rate: Math.round(rates[0] * unit), timeUnit: `${unit}s`, duration: `${totalMs}ms`, ...vus}
      : {
          executor: 'ramping-arrival-rate',
          exec: type,
          startRate: Math.round(rates[0] * unit),
          timeUnit: `${unit}s`,
          stages: s.phases.flatMap((p, i) => [
            {target: Math.round(ramps[i][0] * unit), duration: '0s'},
            {target: Math.round(ramps[i][1] * unit), duration: `${p.duration}ms`},
          ]),
          ...vus,
        }
  }

  const thresholds: Record<string, Array<string | {threshold: string; abortOnFail: true; delayAbortEval?: string}>> = {}
  const skipped: string[] = []
  const add = (expr: string, phase: string | null, index: number, startMs: number) => {
    const t = translateThreshold(expr, phase)
    if ('skipped' in t) return void skipped.push(`${expr}${phase ? ` [${phase}]` : ''}: ${t.skipped}`)
    const rule = s.abortRules?.find((r) => r.scope === (phase ?? 'run') && r.index === index)
    // k6 counts delayAbortEval from the test's start: a phase threshold's delay counts from its phase's start
    const delayMs = rule ? startMs + rule.delayMs : 0
    ;(thresholds[t.key] ??= []).push(rule ? {threshold: t.condition, abortOnFail: true, ...(delayMs ? {delayAbortEval: `${delayMs}ms`} : {})} : t.condition)
  }
  s.thresholds.forEach((e, i) => add(e, null, i, 0))
  let phaseStart = 0
  for (const p of s.phases) {
    p.thresholds?.forEach((e, i) => add(e, p.name, i, phaseStart))
    phaseStart += p.duration
  }

  const split = options.segment && options.segment.count > 1 ? k6ExecutionSegment(options.segment) : null
  const d = s.dataset
  const config = {
    name: s.name,
    users: d.users,
    creators: d.creators,
    celebrities: d.celebrities,
    products: d.creators * d.productsPerCreator,
    zipfExponent: s.zipf.exponent,
    retryRate: s.order.retryRate,
    qty: Object.entries(s.order.qty).map(([q, w]) => [Number(q), w]),
    phases: s.phases.reduce<Array<{name: string; startMs: number; endMs: number}>>((acc, p) => {
      const startMs = acc.length ? acc[acc.length - 1].endMs : 0
      return [...acc, {name: p.name, startMs, endMs: startMs + p.duration}]
    }, []),
  }

  return `// Generated by \`livedrop scenario export${options.file ? ` ${options.file}` : ''} --format k6\` from scenario "${s.name}".
// Runs the same traffic as \`livedrop scenario run\` against \`livedrop serve\`, on k6 or k6-operator:
//   k6 run -e TARGET=http://host:8080 -e DROP_ID=1 -e LIVEDROP_SECRET=… drop.k6.ts
${split ? `// This script is segment ${options.segment!.index} of ${options.segment!.count} (options.executionSegment): run the other ${options.segment!.count - 1} from their own exports.\n` : `// Split across N machines: k6-operator's TestRun with parallelism: N (it gives each runner its
// execution segment), or k6 run --execution-segment i-1/N:i/N --execution-segment-sequence 0,1/N,…,1
// on each machine (or export with --segment i/N).\n`}// Seed the target with the scenario's dataset first (users ${d.users}, creators ${d.creators}, products per creator ${d.productsPerCreator}, seed ${d.seed}).
// Differences from livedrop's own generator: k6 spaces arrivals evenly (no Poisson), measures latency
// from the actual send (no coordinated-omission correction; late iterations become dropped_iterations),
// does not watch notification streams, and does not check no_stale_reads (its VUs share no memory of edits).
${s.arrival === 'poisson' || s.phases.some((p) => p.arrival === 'poisson') ? '// This scenario asks for Poisson arrivals; k6 sends at a constant rate instead.\n' : ''}${skipped.map((x) => `// Threshold not translated: ${x}\n`).join('')}
import http from 'k6/http'
import crypto from 'k6/crypto'
import encoding from 'k6/encoding'
import exec from 'k6/execution'
import type {Options} from 'k6/options'
import type {RefinedParams, ResponseType} from 'k6/http'

const BASE: string = (__ENV.TARGET || ${JSON.stringify(options.target ?? 'http://127.0.0.1:8080')}).replace(/\\/$/, '')
const DROP_ID: number = Number(__ENV.DROP_ID || 1)
/** The secret \`livedrop serve\` signs tokens with (LIVEDROP_SECRET there too). */
const SECRET: string = __ENV.LIVEDROP_SECRET || 'livedrop-dev-secret'

const SCENARIO = ${pretty(config)} as const

export const options: Options = {
${split ? `  // segment ${options.segment!.index} of ${options.segment!.count}: this instance runs its share of every scenario's iterations\n  executionSegment: ${JSON.stringify(split.executionSegment)},\n  executionSegmentSequence: ${JSON.stringify(split.executionSegmentSequence)},\n` : ''}  scenarios: ${pretty(scenarios, '  ')},
  thresholds: ${pretty(thresholds, '  ')},
}

export function setup(): {runId: string} {
  // makes Idempotency-Keys unique to this run
  return {runId: Date.now().toString(36)}
}

const tokens = new Map<number, string>()
const ISSUED_AT = Math.floor(Date.now() / 1000)

const TOKEN_HEADER = encoding.b64encode(JSON.stringify({alg: 'HS256', typ: 'JWT'}), 'rawurl')

/** A JWT (HS256) valid for ${DEFAULT_TOKEN_TTL_SECONDS} s, as src/core/tokens.ts mints: header.claims.HMAC-SHA256. */
export function mintToken(userId: number, secret: string, issuedAt: number): string {
  const claims = encoding.b64encode(JSON.stringify({sub: String(userId), iat: issuedAt, exp: issuedAt + ${DEFAULT_TOKEN_TTL_SECONDS}}), 'rawurl')
  return \`\${TOKEN_HEADER}.\${claims}.\${crypto.hmac('sha256', secret, \`\${TOKEN_HEADER}.\${claims}\`, 'base64rawurl')}\`
}

function token(userId: number): string {
  let t = tokens.get(userId)
  if (t === undefined) tokens.set(userId, (t = mintToken(userId, SECRET, ISSUED_AT)))
  return t
}

/** The phase running now, from the scenario's start (every scenario starts at 0s). */
function phaseNow(): string {
  const elapsed = Date.now() - exec.scenario.startTime
  for (const p of SCENARIO.phases) if (elapsed < p.endMs) return p.name
  return SCENARIO.phases[SCENARIO.phases.length - 1].name
}

${requestCode(s, types)}${types.map((t) => `\nexport function ${t}(data: {runId: string}): void {\n  send('${t}', data)\n}\n`).join('')}`
}
