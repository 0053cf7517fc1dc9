import {randomBytes} from 'node:crypto'
import {request} from 'undici'
import {UsageError, redactUrl} from '../../core/errors.js'
import {phaseTypes} from '../load/arrivals.js'
import {reachable} from '../load/reachable.js'
import type {RequestType, Scenario} from '../scenario/schema.js'
import type {TrafficWorld} from './builders.js'
import {createCredentials} from './builders.js'
import {
  fillJson,
  fillPathQuery,
  fillString,
  placeholders,
  readPath,
  statusMatches,
  type PreparedFixture,
  type Profile,
  type ProfileCall,
  type ProfileStatusSpec,
  type ProfileTarget,
  type Values,
} from './profile.js'
import {ROUTES} from './routes.js'

/** One answer of the target, read whole (fixture calls, logins, `profile check`). */
export interface TargetAnswer {
  status: number
  headers: Record<string, string>
  text: string
  /** The body as JSON, or undefined when it is not JSON. */
  json: unknown
  ms: number
}

/** Setup and login calls wait this long for an answer. */
const CALL_TIMEOUT_MS = 10_000
/** Logins in flight at once before a run. */
const LOGIN_CONCURRENCY = 16
/** A run's drop ends this long after its phases when the scenario gives it no duration (the {endsAt} value). */
const DROP_END_MARGIN_MS = 3_600_000

/** One call to the target: path and query are appended to the target's base path. */
export async function callTarget(target: string, call: {method: string; path: string; headers?: Record<string, string>; body?: unknown}): Promise<TargetAnswer> {
  const base = new URL(target)
  const url = new URL(base.pathname.replace(/\/$/, '') + call.path, base)
  const headers: Record<string, string> = {...call.headers}
  let body: string | undefined
  if (call.body !== undefined) {
    body = typeof call.body === 'string' ? call.body : JSON.stringify(call.body)
    if (typeof call.body !== 'string') headers['content-type'] = 'application/json'
  }
  const started = performance.now()
  const res = await request(url, {method: call.method as 'GET', headers, body, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS})
  const text = await res.body.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  const flat = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]))
  return {status: res.statusCode, headers: flat, text, json, ms: performance.now() - started}
}

/** A call of the profile with its templates filled. */
export function writeCall(call: ProfileCall, values: Values): {method: string; path: string; headers: Record<string, string>; body: unknown} {
  const headers = Object.fromEntries(Object.entries(call.headers ?? {}).map(([k, v]) => [k, String(fillString(v, values))]))
  return {method: call.method, path: fillPathQuery(call, values), headers, body: call.body === undefined ? undefined : fillJson(call.body, values)}
}

export interface PrepareOptions {
  /** Validated and scaled: its drop's stock and times fill {stock}, {startsAt}, {endsAt}; its dataset sizes the populations. */
  scenario: Scenario
  target: string
  /** Fixture values given on the command line (--fixture name=value): their setup steps are skipped. */
  given?: Record<string, string>
  /** For jwt auth: the target's token secret. */
  secret?: string
  /** The request types to be sent (default: those the scenario sends). */
  types?: readonly RequestType[]
}

/** `"42"` → 42: ids and the stock given on the command line are numbers when they look like one. */
const asValue = (v: string): string | number => (/^(0|[1-9][0-9]{0,14})$/.test(v) ? Number(v) : v)

/**
 * Prepares a profile run before any load: makes the fixture's setup calls (skipping those whose
 * values were given), logs the users in, and sizes the populations from what it found. Exit 3 when
 * the target is unreachable; a usage error (exit 2) naming the call when a setup or login call is
 * not answered as the profile says, or when a value a request needs is missing.
 */
export async function prepareProfile(profile: Profile, o: PrepareOptions): Promise<{target: ProfileTarget; world: TrafficWorld}> {
  const s = o.scenario
  await reachable(new URL(o.target))
  const now = Date.now()
  const runMs = s.phases.reduce((ms, p) => ms + p.duration, 0)
  const startsAt = now + s.drop.startOffset
  const values: Record<string, string | number> = {
    runId: randomBytes(4).toString('hex'),
    stock: s.drop.stock,
    now: new Date(now).toISOString(),
    startsAt: new Date(startsAt).toISOString(),
    endsAt: new Date(startsAt + (s.drop.duration ?? runMs + DROP_END_MARGIN_MS)).toISOString(),
    ...profile.fixture.values,
    ...Object.fromEntries(Object.entries(o.given ?? {}).map(([k, v]) => [k, asValue(v)])),
  }
  const fixture: PreparedFixture = {values, lists: {}, users: {}}
  const secret = o.secret ?? ''
  const login = async (n: number) => {
    if (profile.auth.type !== 'login' || fixture.users[n]) return
    const res = await callTarget(o.target, writeCall(profile.auth.request, {...values, user: n}))
    const token = readPath(res.json, profile.auth.token)
    if (res.status >= 400 || typeof token !== 'string') {
      throw new UsageError('auth.request', `the login of user ${n} (${profile.auth.request.method} ${redactUrl(o.target)}${profile.auth.request.path}) answered ${res.status} ${cut(res.text)}${typeof token === 'string' ? '' : `, with no token at ${profile.auth.token}`}`, {
        hint: 'Check auth.request and auth.token in the profile (`livedrop profile check` shows the answers).',
      })
    }
    const id = profile.auth.userId === undefined ? undefined : readPath(res.json, profile.auth.userId)
    fixture.users[n] = {token, ...(typeof id === 'string' || typeof id === 'number' ? {id} : {})}
  }

  for (const [i, step] of profile.fixture.setup.entries()) {
    const saves = Object.entries(step.save ?? {})
    if (saves.length > 0 && saves.every(([name]) => o.given?.[name] !== undefined)) continue
    const call = writeCall(step, values)
    if (step.as !== undefined) {
      await login(step.as)
      Object.assign(call.headers, createCredentials(profile.auth, fixture, secret)(step.as, values))
    }
    const res = await callTarget(o.target, call)
    const ok: ProfileStatusSpec[] = step.ok ?? [[200, 299]]
    if (!ok.some((spec) => statusMatches(spec, res.status))) {
      throw new UsageError(`fixture.setup[${i}]`, `${call.method} ${call.path} answered ${res.status} ${cut(res.text)}`, {hint: 'Check the setup step in the profile, or give its values with --fixture name=value.'})
    }
    for (const [name, path] of saves) {
      const v = readPath(res.json, path)
      if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) fixture.lists[name] = v
      else if (typeof v === 'string' || typeof v === 'number') values[name] = v
      else throw new UsageError(`fixture.setup[${i}].save.${name}`, `${call.method} ${call.path} answered no value at ${path}: ${cut(res.text)}`, {hint: 'Fix the dotted path (`livedrop profile check` shows the answers).'})
    }
  }

  const types = o.types ?? [...new Set(s.phases.flatMap((p) => phaseTypes(p) as RequestType[]))]
  const missingTypes = types.filter((t) => !profile.requests[t])
  if (missingTypes.length > 0) {
    throw new UsageError('--profile', `the scenario sends ${missingTypes.join(', ')} but the profile "${profile.name}" describes no such request`, {hint: 'Add them under requests: in the profile, or run a scenario without them.'})
  }
  const known = new Set<string>([...Object.keys(values), ...Object.keys(fixture.lists), 'token'])
  for (const t of types) {
    const r = profile.requests[t]!
    const drawn = new Set([...ROUTES[t].draws.map(([n]) => n), 'celebrity', 'key'])
    const missing = [...new Set(placeholders([r.path, r.query, r.headers, r.body]))].filter((n) => !drawn.has(n) && !known.has(n))
    if (missing.length > 0) {
      throw new UsageError(`requests.${t}`, `needs ${missing.map((n) => `{${n}}`).join(', ')}, which no setup step saved and no --fixture gave`, {hint: `Pass --fixture ${missing[0]}=… or add a setup step that saves it.`})
    }
  }

  const count = (plural: string, single: string, otherwise: number) => fixture.lists[plural]?.length ?? (values[single] !== undefined ? 1 : otherwise)
  const creators = count('creators', 'creator', s.dataset.creators)
  const products = count('products', 'product', s.dataset.creators * s.dataset.productsPerCreator)
  const users = profile.auth.type === 'login' ? creators + profile.auth.users : s.dataset.users
  if (profile.auth.type === 'login') {
    // the fans (users past the creators) and the celebrity, who edits its products
    const numbers = [1, ...Array.from({length: profile.auth.users}, (_, i) => creators + 1 + i)]
    for (let i = 0; i < numbers.length; i += LOGIN_CONCURRENCY) await Promise.all(numbers.slice(i, i + LOGIN_CONCURRENCY).map(login))
  }
  const world: TrafficWorld = {users, creators, products, dropId: typeof values.drop === 'number' ? values.drop : 0, secret}
  return {target: {profile, fixture}, world}
}

const cut = (text: string, n = 200) => (text.length > n ? `${text.slice(0, n)}…` : text)
