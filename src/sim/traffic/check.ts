import {createRandom} from '../../core/random.js'
import {REQUEST_TYPES, type RequestType, type Scenario} from '../scenario/schema.js'
import {createRequestWriter, createValueDrawer} from './builders.js'
import {callTarget, prepareProfile, type TargetAnswer} from './fixture.js'
import {matchAnswer, profileOk, readPath, type Profile, type ProfileRequest, type ProfileTarget, type Values} from './profile.js'

/** What one request of a profile check sent, got and read. */
export interface CheckedRequest {
  /** The request type, with " (replay)" or " (page 2)" for the follow-up requests. */
  type: string
  method: string
  path: string
  body: unknown
  status: number
  ms: number
  /** Counts as an answer (the profile's ok statuses), not a failure. */
  ok: boolean
  /** The answer the profile's answers matched, or null. */
  outcome: string | null
  /** Values read from the answer by the profile's paths (items as a count); undefined where the path found nothing. */
  read: Record<string, unknown>
  /** The next page's cursor or page number, when the request pages. */
  next?: unknown
  /** What does not look right, in words; empty when all is well. */
  problems: string[]
  /** The answer's body, cut. */
  answer: string
}

export interface ProfileCheck {
  profile: string
  target: string
  /** The fixture values the run would use (setup answers, --fixture, built-ins). */
  fixture: Record<string, string | number>
  /** Saved lists and how many ids each holds. */
  lists: Record<string, number>
  /** Users logged in before the requests. */
  usersLoggedIn: number
  requests: CheckedRequest[]
  /** Requests with a problem. */
  failed: number
}

export interface CheckOptions {
  profile: Profile
  /** Supplies the draws (quantities, dataset sizes) and the drop's stock and times. */
  scenario: Scenario
  target: string
  given?: Record<string, string>
  secret?: string
  /** Seeds the drawn values. Default 1. */
  seed?: number
}

const ANSWER_CHARS = 160

/**
 * `livedrop profile check`: prepares the fixture as a run would, then makes one request of each type
 * the profile describes (plus a replay of the order, and the second page of a paged listing) and
 * reports what the profile read from each answer, so a profile can be written in minutes.
 */
export async function checkProfile(o: CheckOptions): Promise<ProfileCheck> {
  const types = REQUEST_TYPES.filter((t) => o.profile.requests[t])
  // the drop a check makes is live at once: its one order must meet a live drop
  const scenario = {...o.scenario, drop: {...o.scenario.drop, startOffset: 0}}
  const {target, world} = await prepareProfile(o.profile, {scenario, target: o.target, given: o.given, secret: o.secret, types})
  const draw = createValueDrawer(scenario, world, {keyPrefix: `check-${target.fixture.values.runId}`})
  const write = createRequestWriter(o.profile, target.fixture, world.secret)
  const random = createRandom(o.seed ?? 1)
  const sent = new Set<RequestType>(types)
  const requests: CheckedRequest[] = []
  for (const type of types) {
    const r = o.profile.requests[type]!
    const drawn = draw(type, random)
    const req = write(type, drawn)
    const first = await checkOne(o.target, type, r, req, sent)
    requests.push(first)
    // a retry with the same key: the replay the black-box invariants compare
    if (drawn.key !== undefined) requests.push(await checkOne(o.target, `${type} (replay)`, r, write(type, drawn), sent, first))
    if (r.paging && first.next !== undefined && first.next !== null) {
      const param = 'cursor' in r.paging ? r.paging.cursor.param : r.paging.page.param
      const [pathname, search = ''] = req.path.split('?')
      const query = new URLSearchParams(search)
      query.set(param, String(first.next))
      requests.push(await checkOne(o.target, `${type} (page 2)`, r, {...req, path: `${pathname}?${query}`}, sent))
    }
  }
  return summary(o, target, requests)
}

function summary(o: CheckOptions, target: ProfileTarget, requests: CheckedRequest[]): ProfileCheck {
  return {
    profile: o.profile.name,
    target: o.target,
    fixture: target.fixture.values,
    lists: Object.fromEntries(Object.entries(target.fixture.lists).map(([k, v]) => [k, v.length])),
    usersLoggedIn: Object.keys(target.fixture.users).length,
    requests,
    failed: requests.filter((r) => r.problems.length > 0).length,
  }
}

async function checkOne(
  base: string,
  type: string,
  r: ProfileRequest,
  req: {method: string; path: string; headers: Record<string, string>; body: unknown; values: Values},
  sent: ReadonlySet<RequestType>,
  firstAttempt?: CheckedRequest,
): Promise<CheckedRequest> {
  const problems: string[] = []
  let res: TargetAnswer
  try {
    res = await callTarget(base, req)
  } catch (err) {
    return {type, method: req.method, path: req.path, body: req.body, status: 0, ms: 0, ok: false, outcome: null, read: {}, problems: [`no answer: ${(err as Error).message}`], answer: ''}
  }
  const ok = profileOk(r, sent)(res.status)
  if (!ok) problems.push(`status ${res.status} is not among the answers the profile accepts (ok)`)
  const answer = r.answers && r.answers.length > 0 ? matchAnswer(r.answers, res.status, res.json) : undefined
  if (r.answers && r.answers.length > 0 && !answer) problems.push(`no answer in the profile matches ${res.status}`)
  const read: Record<string, unknown> = {}
  // a sold-out or not-live answer is an error body: the order's fields are read from successes only
  const refused = answer?.outcome === 'sold_out' || answer?.outcome === 'not_live'
  for (const [name, path] of refused ? [] : Object.entries(r.read ?? {})) {
    const v = readPath(res.json, path)
    // a page's rows as their number: the rows themselves would fill the table
    read[name] = name === 'items' && Array.isArray(v) ? v.length : v
    if (v === undefined) problems.push(`read.${name}: nothing at ${path}`)
  }
  let next: unknown
  if (r.paging && 'cursor' in r.paging) {
    const c = r.paging.cursor
    next = c.header !== undefined ? res.headers[c.header.toLowerCase()] : c.field !== undefined ? readPath(res.json, c.field) : undefined
  } else if (r.paging) {
    const current = Number(new URLSearchParams(req.path.split('?')[1] ?? '').get(r.paging.page.param) ?? r.paging.page.first)
    next = current + 1
  }
  if (firstAttempt && firstAttempt.outcome === 'success' && res.text !== undefined) {
    const same = JSON.stringify(read.orderId) === JSON.stringify(firstAttempt.read.orderId)
    if (!same) problems.push(`the replay answered order ${JSON.stringify(read.orderId)}, the first attempt ${JSON.stringify(firstAttempt.read.orderId)}`)
  }
  const text = res.text.length > ANSWER_CHARS ? `${res.text.slice(0, ANSWER_CHARS)}…` : res.text
  return {type, method: req.method, path: req.path, body: req.body, status: res.status, ms: Math.round(res.ms * 10) / 10, ok, outcome: answer?.outcome ?? null, read, ...(r.paging ? {next} : {}), problems, answer: text}
}
