import {readFile} from 'node:fs/promises'
import {Document, LineCounter, isScalar, isSeq, parseDocument, visit} from 'yaml'
import {z} from 'zod'
import {locateIssue, scenarioError, type ScenarioProblem} from '../scenario/loader.js'
import {REQUEST_TYPES, type RequestType} from '../scenario/schema.js'
import {IDEMPOTENCY_HEADER, ROUTES, type Outcome, type Route, type StatusSpec as RouteStatusSpec} from './routes.js'

/**
 * Target profiles: how the scenario's request types look on another API (its paths, ids, auth,
 * answers). The traffic itself (which values each request draws, retries, keys) stays the route
 * table's (./routes.ts); a profile only says how a drawn request is written on the wire and how
 * its answer is read. livedrop's own API is the built-in profile, generated from the route table
 * (defaultProfile), so there is still one description of each request.
 *
 * Templates: a string "{name}" is replaced by the value named (a number stays a number); "{a}-{b}"
 * interpolates. Names: the route's drawn values (user, qty, product, creator, price, page), drop,
 * celebrity, key (the Idempotency-Key), and every fixture value (setup answers, --fixture flags,
 * stock, runId, now, startsAt, endsAt). product/creator/user are the target's ids when the fixture
 * or the login gave them.
 */

/** A profile is a page of YAML; a bigger file is a mistake. */
export const MAX_PROFILE_BYTES = 1 << 20

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
/** `data.items.*.id`: keys, array indexes, `*` for every element. */
const PATH_RE = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$*-]+)*$/
const DottedPath = z.string().regex(PATH_RE, {error: 'expected a dotted path into the JSON answer, e.g. data.order.id or items.*.id'})

export type TemplateValue = string | number | boolean | null | TemplateValue[] | {[key: string]: TemplateValue}
const TemplateSchema: z.ZodType<TemplateValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(TemplateSchema), z.record(z.string(), TemplateSchema)]),
)

const Status = z.number().int().min(100).max(599)
const StatusSpec = z.union([Status, z.tuple([Status, Status])]).describe('a status, or an inclusive range [200, 299]')
export type ProfileStatusSpec = z.output<typeof StatusSpec>

/** What an answer means; success/replay/sold_out/not_live are the order outcomes the black-box invariants read. */
export const PROFILE_OUTCOMES = ['success', 'replay', 'sold_out', 'not_live', 'product', 'product_gone', 'product_edited', 'product_removed'] as const
export type ProfileOutcome = (typeof PROFILE_OUTCOMES)[number]

const AnswerSchema = z.strictObject({
  status: StatusSpec,
  when: z
    .record(DottedPath, z.union([z.string(), z.number(), z.boolean(), z.null()]))
    .optional()
    .describe('fields the JSON answer must hold too, e.g. {error.code: SOLD_OUT}'),
  outcome: z.enum(PROFILE_OUTCOMES),
})

const Method = z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])
const Query = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).describe('query parameters in this order; values may be templates')
const Headers = z.record(z.string(), z.string()).describe('extra headers; values may be templates ("{key}")')

/** One HTTP call: a request type's, a setup step's, the login's. */
const CallShape = {
  method: Method,
  path: z.string().regex(/^\//, {error: 'a path starts with /'}).describe('path template, e.g. /drops/{drop}'),
  query: Query.optional(),
  headers: Headers.optional(),
  body: TemplateSchema.optional().describe('JSON body template; absent: no body'),
}

const PagingSchema = z
  .union([
    z.strictObject({cursor: z.strictObject({param: z.string().describe('query parameter the next page takes'), field: DottedPath.optional(), header: z.string().optional()})}),
    z.strictObject({page: z.strictObject({param: z.string().describe('the page number parameter'), first: z.number().int().default(1)})}),
  ])
  .describe('how the next page is asked for: a cursor read from an answer field or header, or page numbers (limit in query)')

const ReadSchema = z
  .strictObject({
    orderId: DottedPath.optional().describe("the order's id in a success answer"),
    units: DottedPath.optional().describe('units the answer acknowledges (default: the qty sent)'),
    stock: DottedPath.optional().describe('stock left, as the answer shows it'),
    version: DottedPath.optional().describe("a product's version (no_stale_reads)"),
    items: DottedPath.optional().describe('the list in a page'),
  })
  .describe('where to read values in the JSON answer')

const RequestSchema = z.strictObject({
  ...CallShape,
  auth: z.boolean().optional().describe("send the acting user's credentials (default: when the request type acts as a user)"),
  ok: z.array(StatusSpec).optional().describe('statuses that are answers, not failures (default 200–399)'),
  okIfSent: z.partialRecord(z.enum(REQUEST_TYPES), z.array(Status)).optional().describe('statuses that are answers too when the scenario also sends these types'),
  answers: z.array(AnswerSchema).optional().describe('how answers are read, the first match counts'),
  read: ReadSchema.optional(),
  paging: PagingSchema.optional(),
})

const LoginSchema = z.strictObject({
  type: z.literal('login'),
  request: z.strictObject(CallShape).describe('the login call for user {user} (1, 2, …)'),
  token: DottedPath.describe('where the token is in the answer'),
  userId: DottedPath.optional().describe("where the user's id is in the answer (then {user} in requests is that id)"),
  header: z.string().default('Authorization'),
  prefix: z.string().default('Bearer '),
  users: z.number().int().min(1).max(100_000).default(50).describe('fans logged in before the run (the fan population)'),
})

const AuthSchema = z
  .discriminatedUnion('type', [
    z.strictObject({type: z.literal('none')}),
    z.strictObject({type: z.literal('header'), name: z.string(), value: z.string().describe('sent as is on every request that acts as a user; may be a template')}),
    LoginSchema,
    z.strictObject({type: z.literal('jwt'), header: z.string().default('Authorization'), prefix: z.string().default('Bearer ')}).describe('an HS256 JWT per user (sub = user id) signed with --secret: livedrop’s own'),
  ])
  .prefault({type: 'none'})

const SetupStep = z.strictObject({
  ...CallShape,
  as: z.number().int().min(1).optional().describe('act as this user (its credentials)'),
  ok: z.array(StatusSpec).optional(),
  save: z.record(z.string().regex(NAME_RE), DottedPath).optional().describe('fixture values read from the answer: {drop: data.id}; a path with * saves a list'),
})

export const ProfileSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  auth: AuthSchema,
  fixture: z
    .strictObject({
      setup: z.array(SetupStep).default([]).describe('calls made in order before the run; a step whose saved values were all given as --fixture name=value is skipped'),
      values: z.record(z.string().regex(NAME_RE), z.union([z.string(), z.number()])).optional().describe('fixed fixture values'),
    })
    .prefault({}),
  requests: z
    .strictObject(Object.fromEntries(REQUEST_TYPES.map((t) => [t, RequestSchema.optional()])) as Record<RequestType, z.ZodOptional<typeof RequestSchema>>)
    .describe('how each request type the scenario sends looks on this API'),
})

export type Profile = z.output<typeof ProfileSchema>
export type ProfileRequest = NonNullable<Profile['requests'][RequestType]>
export type ProfileAuth = Profile['auth']
export type ProfileCall = Pick<ProfileRequest, 'method' | 'path' | 'query' | 'headers' | 'body'>
export type ProfileAnswer = z.output<typeof AnswerSchema>

/** What the fixture gave the run (plain data: it crosses to the generator thread). */
export interface PreparedFixture {
  /** drop, stock, runId, the setup answers' saved values, --fixture values. */
  values: Record<string, string | number>
  /** Saved lists (a path with *): products, creators. */
  lists: Record<string, Array<string | number>>
  /** Logged-in users by number (1, 2, …): their token and, when the login answers it, their id. */
  users: Record<number, {token?: string; id?: string | number}>
}

/** A profile and the fixture prepared for it: what a profile run's builders are made from. */
export interface ProfileTarget {
  profile: Profile
  fixture: PreparedFixture
}

/** The published JSON Schema (profiles/schema.json) for editors' autocompletion. */
export function profileJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ProfileSchema, {io: 'input', unrepresentable: 'any'}),
    $id: 'https://livedrop.dev/schemas/profile.json',
    title: 'livedrop target profile',
  }
}

const PROFILE_HINT = 'Fix the fields named above; profiles/schema.json describes every field (editors autocomplete with it).'

/** Reads and validates a profile file (YAML or JSON): every problem at once as file:line:column field: message, exit 4. */
export async function loadProfile(file: string): Promise<Profile> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const message = `cannot read the profile file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    throw scenarioError([{file, line: 1, column: 1, field: '', message}], 'Check the path; example profiles live in profiles/.')
  }
  return parseProfile(text, file)
}

/** Validates profile text; see loadProfile. */
export function parseProfile(text: string, file = '<profile>'): Profile {
  const problems: ScenarioProblem[] = []
  if (Buffer.byteLength(text) > MAX_PROFILE_BYTES) {
    throw scenarioError([{file, line: 1, column: 1, field: '', message: `a profile is at most ${MAX_PROFILE_BYTES.toLocaleString('en-US')} bytes`}], PROFILE_HINT)
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  const at = (offset: number) => lineCounter.linePos(offset)
  for (const e of doc.errors) {
    const pos = at(e.pos[0])
    problems.push({file, line: pos.line, column: pos.col, field: '', message: e.message.split('\n')[0]})
  }
  if (problems.length === 0) {
    let value: unknown
    try {
      value = doc.toJS({maxAliasCount: 100})
    } catch (err) {
      problems.push({file, line: 1, column: 1, field: '', message: (err as Error).message})
    }
    if (problems.length === 0) {
      const parsed = ProfileSchema.safeParse(value ?? {})
      if (parsed.success) {
        for (const p of templateProblems(parsed.data)) problems.push(...locateIssue({code: 'custom', path: p.path, message: p.message, input: undefined}, doc, file, at))
        if (problems.length === 0) return parsed.data
      } else for (const issue of parsed.error.issues) problems.push(...locateIssue(issue, doc, file, at))
    }
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column)
  throw scenarioError(problems, PROFILE_HINT)
}

/** Placeholders that name nothing a request can have: caught when the file is read, not mid-run. */
function templateProblems(p: Profile): Array<{path: Array<string | number>; message: string}> {
  const out: Array<{path: Array<string | number>; message: string}> = []
  const fixtureNames = new Set([...FIXTURE_BUILTINS, ...Object.keys(p.fixture.values ?? {}), ...p.fixture.setup.flatMap((s) => Object.keys(s.save ?? {}))])
  const check = (where: Array<string | number>, call: ProfileCall, known: (name: string) => boolean) => {
    for (const [part, value] of [['path', call.path], ['query', call.query], ['headers', call.headers], ['body', call.body]] as const) {
      for (const name of placeholders(value)) {
        if (!known(name)) out.push({path: [...where, part], message: `{${name}} names no value this request has (its values: ${[...valueNamesHint(where)].join(', ')})`})
      }
    }
  }
  const valueNamesHint = (where: Array<string | number>) => (where[0] === 'requests' ? [...ROUTES[where[1] as RequestType].draws.map(([n]) => n), 'drop', 'celebrity', 'key', 'fixture values'] : ['user', 'fixture values'])
  for (const [type, r] of Object.entries(p.requests) as Array<[RequestType, ProfileRequest]>) {
    const drawn = new Set([...ROUTES[type].draws.map(([n]) => n), 'drop', 'celebrity', 'key'])
    check(['requests', type], r, (n) => drawn.has(n) || fixtureNames.has(n) || n === 'token')
  }
  p.fixture.setup.forEach((s, i) => check(['fixture', 'setup', i], s, (n) => fixtureNames.has(n) || n === 'user'))
  if (p.auth.type === 'login') check(['auth', 'request'], p.auth.request, (n) => n === 'user' || fixtureNames.has(n))
  return out
}

/** Fixture values every run has. */
export const FIXTURE_BUILTINS = ['runId', 'stock', 'now', 'startsAt', 'endsAt'] as const

const PLACEHOLDER_RE = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g
const WHOLE_RE = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/

/** Every `{name}` in a template. */
export function placeholders(t: unknown): string[] {
  if (typeof t === 'string') return [...t.matchAll(PLACEHOLDER_RE)].map((m) => m[1])
  if (t !== null && typeof t === 'object') return Object.entries(t).flatMap(([k, v]) => [...placeholders(k), ...placeholders(v)])
  return []
}

export type Values = Readonly<Record<string, string | number>>

/** A string template: "{a}" is the value itself (a number stays a number), "x-{a}" interpolates. */
export function fillString(t: string, values: Values): string | number {
  const whole = WHOLE_RE.exec(t)
  if (whole) return values[whole[1]]
  return t.includes('{') ? t.replace(PLACEHOLDER_RE, (_, name: string) => String(values[name])) : t
}

/** A body (or any JSON) template with its placeholders filled. */
export function fillJson(t: TemplateValue | undefined, values: Values): unknown {
  if (typeof t === 'string') return fillString(t, values)
  if (Array.isArray(t)) return t.map((v) => fillJson(v, values))
  if (t !== null && typeof t === 'object') return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, fillJson(v, values)]))
  return t
}

/** Path and query: `/drops/{drop}` + `{limit: 100}` → `/drops/7?limit=100`. */
export function fillPathQuery(call: Pick<ProfileCall, 'path' | 'query'>, values: Values, extraQuery: Record<string, string | number> = {}): string {
  const path = call.path.includes('{') ? call.path.replace(PLACEHOLDER_RE, (_, name: string) => String(values[name])) : call.path
  const q = [...Object.entries(call.query ?? {}), ...Object.entries(extraQuery)]
  if (q.length === 0) return path
  return `${path}?${q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(typeof v === 'string' ? fillString(v, values) : v))}`).join('&')}`
}

/** A value in a JSON answer by dotted path (`data.items.0.id`); `*` maps over an array (`items.*.id` → the ids). */
export function readPath(value: unknown, path: string): unknown {
  const parts = path.split('.')
  const walk = (v: unknown, i: number): unknown => {
    if (i === parts.length) return v
    const part = parts[i]
    if (part === '*') return Array.isArray(v) ? v.map((x) => walk(x, i + 1)) : undefined
    if (v === null || typeof v !== 'object') return undefined
    return walk((v as Record<string, unknown>)[part], i + 1)
  }
  return walk(value, 0)
}

export const statusMatches = (s: ProfileStatusSpec, status: number) => (typeof s === 'number' ? status === s : status >= s[0] && status <= s[1])

/** The answer a response is (first match), or undefined. */
export function matchAnswer(answers: readonly ProfileAnswer[], status: number, body: unknown): ProfileAnswer | undefined {
  return answers.find((a) => statusMatches(a.status, status) && Object.entries(a.when ?? {}).every(([p, v]) => readPath(body, p) === v))
}

const DEFAULT_OK: ProfileStatusSpec[] = [[200, 399]]

/** Does the status count as an answer (not a failure), given what else the scenario sends? */
export function profileOk(r: ProfileRequest, sent: ReadonlySet<RequestType>): (status: number) => boolean {
  // decided once per request type: the check runs on every answer of the run
  const ok = r.ok ?? DEFAULT_OK
  const ifSent = Object.entries(r.okIfSent ?? {}).flatMap(([t, statuses]) => (sent.has(t as RequestType) ? statuses! : []))
  return (status) => ok.some((s) => statusMatches(s, status)) || ifSent.includes(status)
}

// ---- livedrop's own API, from the route table ----

const OUTCOME_NAMES: Record<Outcome, ProfileOutcome> = {
  order_acknowledged: 'success',
  sold_out: 'sold_out',
  not_live: 'not_live',
  product: 'product',
  product_gone: 'product_gone',
  product_edited: 'product_edited',
  product_removed: 'product_removed',
}

/** A route-table body template (`{$: 'qty'}`) as a profile template (`"{qty}"`). */
function routeTemplate(t: Route['body']): TemplateValue {
  if (t === null || typeof t !== 'object') return t
  if ('$' in t && typeof t.$ === 'string') return `{${t.$}}`
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, routeTemplate(v as Route['body'])]))
}

const statusSpec = (s: RouteStatusSpec): ProfileStatusSpec => (typeof s === 'number' ? s : [s[0], s[1]])

/** One route of the table as a profile request. */
export function routeProfileRequest(r: Route): ProfileRequest {
  const out: ProfileRequest = {method: r.method, path: r.path, auth: r.auth !== null, ok: r.ok.map(statusSpec)}
  if (Object.keys(r.query).length > 0) out.query = {...r.query}
  if (r.idempotent) out.headers = {[IDEMPOTENCY_HEADER]: '{key}'}
  if (r.body !== null) out.body = routeTemplate(r.body)
  if (r.okWhenSent) out.okIfSent = Object.fromEntries(r.okWhenSent.types.map((t) => [t, [...r.okWhenSent!.statuses]]))
  if (r.answers.length > 0) {
    out.answers = r.answers.map((a) => ({status: a.status, ...(a.code === undefined ? {} : {when: {'error.code': a.code}}), outcome: OUTCOME_NAMES[a.outcome]}))
  }
  const outcomes = new Set(r.answers.map((a) => a.outcome))
  if (outcomes.has('order_acknowledged')) out.read = {orderId: 'id', units: 'qty'}
  if (outcomes.has('product') || outcomes.has('product_edited')) out.read = {version: 'version'}
  if (r.paging) {
    out.paging = {cursor: {param: r.paging.param, field: r.paging.field}}
    out.read = {items: r.paging.items}
  }
  return out
}

/**
 * livedrop's own API as a profile, generated from the route table: every request type, tokens
 * minted with the secret (jwt), the drop's id from the run (fixture value drop).
 */
export function defaultProfile(): Profile {
  return {
    name: 'livedrop',
    description: 'livedrop serve’s own API (generated from the route table, src/sim/traffic/routes.ts)',
    auth: {type: 'jwt', header: 'Authorization', prefix: 'Bearer '},
    fixture: {setup: []},
    requests: Object.fromEntries(REQUEST_TYPES.map((t) => [t, routeProfileRequest(ROUTES[t])])),
  }
}

/** The shipped profiles/livedrop.yaml: livedrop's own profile as a file to copy and adapt (the drop's id from --fixture drop=ID). */
export function livedropProfileYaml(): string {
  const header = [
    '# yaml-language-server: $schema=./schema.json',
    "# livedrop serve's own API, generated from the route table (src/sim/traffic/routes.ts): do not edit,",
    '# copy it. Run with --fixture drop=ID (a live drop) and --secret (the tokens are minted with it).',
    '',
  ].join('\n')
  const doc = new Document(defaultProfile())
  // lists of plain values ([200, 399], [404]) on one line, as a person writes them
  visit(doc, {
    Seq(_key, node) {
      if (node.items.every((i) => isScalar(i) || (isSeq(i) && i.items.every(isScalar)))) node.flow = true
    },
  })
  return header + doc.toString({lineWidth: 0, flowCollectionPadding: false})
}
