import {createHmac} from 'node:crypto'
import vm from 'node:vm'
import ts from 'typescript'
import {describe, expect, it} from 'vitest'
import {createRandom} from '../src/core/random.js'
import {verifyToken} from '../src/core/tokens.js'
import {exportK6} from '../src/sim/export/k6.js'
import type {HttpRequestSpec} from '../src/sim/executors/open-model/index.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {REQUEST_GROUPS, REQUEST_TYPES, type RequestType, type Scenario} from '../src/sim/scenario/schema.js'
import {createBuilders, createRequestDrawer} from '../src/sim/traffic/builders.js'
import {loadProfile} from '../src/sim/traffic/profile.js'
import {ROUTES, renderRouteTable} from '../src/sim/traffic/routes.js'

const SECRET = 'parity-secret-0123456789'
const DROP_ID = 7
const BASE = 'http://k6.test:9'
/** Requests compared per type: enough for every draw's range and, for orders, retries. */
const PER_TYPE = 400

/** Every request type at once, retries frequent, quantities weighted. */
const scenario: Scenario = parseScenario(`
name: parity
dataset: {users: 5000, creators: 40, productsPerCreator: 3}
drop: {stock: 100}
zipf: {exponent: 1.1}
order: {retryRate: 0.3, qty: {1: 0.7, 2: 0.2, 3: 0.1}}
phases:
  - name: all
    duration: 10s
    rates: {${REQUEST_TYPES.map((t) => `${t}: 5`).join(', ')}}
`)

/** What matters of one request: what the target sees. */
interface Sent {
  method: string
  path: string
  body: unknown
  /** The user the bearer token names, or null. */
  user: number | null
  /** The Idempotency-Key, or null. */
  key: string | null
  /** Is the body declared JSON (when there is one)? */
  json: boolean | null
  /** Which statuses are answers: checked over 200, 201, 404, 409, 500. */
  ok: number[]
}

const PROBE_STATUSES = [200, 201, 204, 404, 409, 500]
const userOf = (authorization: string | undefined) => (authorization === undefined ? null : verifyToken(authorization.replace(/^Bearer /, ''), SECRET))
const header = (h: Record<string, string> | undefined, name: string) => Object.entries(h ?? {}).find(([k]) => k.toLowerCase() === name)?.[1]

/** The generator's requests: the builders `scenario run` uses, with the run's seeded random source. */
function generatorRequests(s: Scenario, type: RequestType, seed: number): Sent[] {
  const {builders} = createBuilders(s, {users: s.dataset.users, creators: s.dataset.creators, products: s.dataset.creators * s.dataset.productsPerCreator, dropId: DROP_ID, secret: SECRET})
  const random = createRandom(seed)
  return Array.from({length: PER_TYPE}, (_, seq) => {
    const spec: HttpRequestSpec = builders[type]({type, phase: 'all', seq, intendedMs: seq, random})
    return {
      method: spec.method ?? 'GET',
      path: spec.path,
      body: spec.body ?? null,
      user: userOf(header(spec.headers, 'authorization')),
      key: header(spec.headers, 'idempotency-key') ?? null,
      // the generator declares JSON for every non-string body (executors/open-model)
      json: spec.body === undefined ? null : typeof spec.body !== 'string',
      ok: PROBE_STATUSES.filter((st) => (spec.ok ?? ((x: number) => x >= 200 && x < 400))(st)),
    }
  })
}

interface K6Call {
  method: string
  url: string
  body: string | null
  params: {headers: Record<string, string>; tags: Record<string, string>; responseCallback: {ok: number[]}}
}

/**
 * The k6 script's requests: the generated script, transpiled and run in a vm context with small
 * stand-ins for the k6 modules, its Math.random the same seeded source as the generator's.
 */
function k6Requests(s: Scenario, type: RequestType, seed: number): {sent: Sent[]; calls: K6Call[]} {
  const js = ts.transpileModule(exportK6(s), {compilerOptions: {module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true}}).outputText
  const calls: K6Call[] = []
  const rec = (method: string) => (url: string, body: string | null, params: K6Call['params']) => void calls.push({method, url, body: body ?? null, params})
  let iteration = 0
  const modules: Record<string, unknown> = {
    'k6/http': {
      get: (url: string, params: K6Call['params']) => rec('GET')(url, null, params),
      post: rec('POST'),
      patch: rec('PATCH'),
      del: rec('DELETE'),
      expectedStatuses: (...a: Array<number | {min: number; max: number}>) => ({ok: a.flatMap((x) => (typeof x === 'number' ? [x] : Array.from({length: x.max - x.min + 1}, (_, i) => x.min + i)))}),
    },
    'k6/crypto': {hmac: (alg: string, key: string, data: string, enc: string) => (enc === 'base64rawurl' ? createHmac(alg, key).update(data).digest('base64url') : 'bad-encoding')},
    'k6/encoding': {b64encode: (v: string, enc: string) => (enc === 'rawurl' ? Buffer.from(v).toString('base64url') : 'bad-encoding')},
    'k6/execution': {scenario: {startTime: Date.now()}, vu: {idInTest: 1, get iterationInInstance() {
      return iteration++
    }}},
  }
  const exports: Record<string, unknown> = {}
  const context = vm.createContext({
    exports,
    require: (name: string) => ({__esModule: true, default: modules[name]}),
    __ENV: {TARGET: BASE, DROP_ID: String(DROP_ID), LIVEDROP_SECRET: SECRET},
    __random: createRandom(seed),
  })
  vm.runInContext('Math.random = __random', context)
  vm.runInContext(js, context)
  const data = (exports.setup as () => {runId: string})()
  const fn = exports[type] as (d: {runId: string}) => void
  for (let i = 0; i < PER_TYPE; i++) fn(data)
  const sent = calls.map((c) => ({
    method: c.method,
    path: c.url.slice(BASE.length),
    body: c.body === null ? null : JSON.parse(c.body),
    user: userOf(c.params.headers.Authorization),
    key: c.params.headers['Idempotency-Key'] ?? null,
    json: c.body === null ? null : c.params.headers['Content-Type'] === 'application/json',
    ok: PROBE_STATUSES.filter((st) => c.params.responseCallback.ok.includes(st)),
  }))
  return {sent, calls}
}

/** Keys differ by design (the generator's are per drop, k6's per run and VU); which requests share one must not. */
function keyPattern(sent: Sent[]): Array<number | null> {
  const first = new Map<string, number>()
  return sent.map((r, i) => {
    if (r.key === null) return null
    if (!first.has(r.key)) first.set(r.key, i)
    return first.get(r.key)!
  })
}

const comparable = (sent: Sent[]) => sent.map(({key: _key, ...rest}) => rest)

describe('one traffic model: the generator and the k6 script send the same requests', () => {
  for (const type of REQUEST_TYPES) {
    it(`${type}: same method, path, query, body, token, key reuse and answers, request by request from one seed`, () => {
      const mine = generatorRequests(scenario, type, 42)
      const {sent: theirs, calls} = k6Requests(scenario, type, 42)
      expect(theirs).toHaveLength(PER_TYPE)
      expect(comparable(theirs)).toEqual(comparable(mine))
      expect(keyPattern(theirs)).toEqual(keyPattern(mine))
      // k6's tags put the request in the same threshold group as the generator's REQUEST_GROUPS
      const group = Object.entries(REQUEST_GROUPS).find(([g, members]) => g !== 'all' && members.includes(type))?.[0]
      expect(calls[0].params.tags.req_group).toBe(group)
      expect(ROUTES[type].group ?? undefined).toBe(group)
      // the draws vary: a comparison of constants would prove nothing
      expect(new Set(mine.map((r) => JSON.stringify([r.path, r.body, r.user]))).size).toBeGreaterThan(1)
    })
  }

  it('orders retry: some keys repeat with the same user and body in both', () => {
    const mine = generatorRequests(scenario, 'order', 42)
    const pattern = keyPattern(mine)
    const retries = pattern.filter((first, i) => first !== i).length
    expect(retries / PER_TYPE).toBeGreaterThan(0.15)
    for (const [i, first] of pattern.entries()) if (first !== null && first !== i) expect(mine[i]).toMatchObject({user: mine[first].user, body: mine[first].body})
  })

  it('the comparison can fail: another seed, or a drifted scenario, gives other requests', () => {
    for (const type of ['browse_product', 'order', 'edit_product'] as const) {
      expect(comparable(k6Requests(scenario, type, 43).sent)).not.toEqual(comparable(generatorRequests(scenario, type, 42)))
    }
    const drifted = {...scenario, zipf: {exponent: 2}}
    expect(comparable(k6Requests(drifted, 'list_followers', 42).sent)).not.toEqual(comparable(generatorRequests(scenario, 'list_followers', 42)))
  })

  it('renders the README request-type table from the route table', () => {
    const table = renderRouteTable()
    const rows = table.trim().split('\n').slice(2)
    expect(rows.map((r) => r.split(' | ')[0].slice(2))).toEqual([...REQUEST_TYPES])
    expect(table).toContain('`GET /creators/{creator}/followers?limit=100`')
    expect(table).toContain('`PATCH /products/{product}` `{"priceCents":{price}}`')
  })
})

describe("livedrop's own API through its built-in profile: the same request stream as the route table", () => {
  const world = {users: scenario.dataset.users, creators: scenario.dataset.creators, products: scenario.dataset.creators * scenario.dataset.productsPerCreator, dropId: DROP_ID, secret: SECRET}
  /** Headers with the token as the user it names: a token minted a second later differs in its iat. */
  const sameSecond = (h: Record<string, string> | undefined) => {
    const {Authorization: auth, ...rest} = h ?? {}
    return auth === undefined ? rest : {...rest, Authorization: userOf(auth)}
  }
  /** The route table written directly (how every request was built before profiles). */
  const direct = (type: RequestType, seed: number) => {
    const draw = createRequestDrawer(scenario, world)
    const random = createRandom(seed)
    return Array.from({length: PER_TYPE}, () => {
      const r = draw(type, random)
      return {method: r.method, path: r.path, headers: sameSecond(r.headers), body: r.body}
    })
  }
  const viaBuilders = (type: RequestType, seed: number, built: ReturnType<typeof createBuilders>) => {
    const random = createRandom(seed)
    return Array.from({length: PER_TYPE}, (_, seq) => {
      const spec = built.builders[type]({type, phase: 'all', seq, intendedMs: seq, random})
      return {method: spec.method, path: spec.path, headers: sameSecond(spec.headers), body: spec.body}
    })
  }

  for (const type of REQUEST_TYPES) {
    it(`${type}: same method, path, query, body and headers by default and through profiles/livedrop.yaml`, async () => {
      const before = direct(type, 42)
      expect(viaBuilders(type, 42, createBuilders(scenario, world))).toEqual(before)
      const file = await loadProfile('profiles/livedrop.yaml')
      expect(viaBuilders(type, 42, createBuilders(scenario, world, {profile: {profile: file, fixture: {values: {drop: DROP_ID}, lists: {}, users: {}}}}))).toEqual(before)
      expect(new Set(before.map((r) => JSON.stringify(r))).size).toBeGreaterThan(1)
    })
  }

  it('the comparison can fail: a profile that moves one path is seen', async () => {
    const file = await loadProfile('profiles/livedrop.yaml')
    const moved = {...file, requests: {...file.requests, order: {...file.requests.order!, path: '/v2/orders'}}}
    expect(viaBuilders('order', 42, createBuilders(scenario, world, {profile: {profile: moved, fixture: {values: {drop: DROP_ID}, lists: {}, users: {}}}}))).not.toEqual(direct('order', 42))
  })
})
