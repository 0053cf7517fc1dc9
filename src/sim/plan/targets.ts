/**
 * What the plan is sized for: the platform's load and data at internet scale. Read from a YAML
 * file (validated like a scenario: every problem as file:line:column field, exit 4) and/or flags
 * (exit 2 naming the flag); flags win over the file, the file over the defaults.
 *
 * The defaults are the platform's own targets (DESIGN.md: 500 reads/s sustained with bursts to
 * 1,500/s, 150 order attempts/s, notification ≤ 2 s) and a celebrity with 50,000,000 followers.
 */
import {readFile} from 'node:fs/promises'
import {LineCounter, parseDocument} from 'yaml'
import {z} from 'zod'
import {throwUsageErrors, UsageError} from '../../core/errors.js'
import {STOCK_STRATEGIES} from '../../core/stock/index.js'
import {locateIssue, scenarioError, type ScenarioProblem} from '../scenario/loader.js'
import {PositiveDuration as Duration} from '../scenario/duration.js'

const PERCENT_RE = /^(\d+(?:\.\d+)?)%$/
/** "30%" or 0.3 → 0.3. */
export function parseShare(value: string | number): number {
  if (typeof value === 'number') return value
  const m = PERCENT_RE.exec(value)
  if (!m) throw new Error(`not a share: ${value}`)
  return Number(m[1]) / 100
}
const Share = (max: number) =>
  z
    .union([z.number(), z.string().regex(PERCENT_RE)], {error: 'expected a share such as "30%" or 0.3'})
    .transform(parseShare)
    .refine((v) => v >= 0 && v < max, {error: `must be at least 0 and below ${max * 100}%`})

const Count = (what: string) => z.number({error: `expected a number (${what})`}).int({error: 'must be a whole number'}).min(0, {error: 'must be ≥ 0'})
const Rate = (what: string) => z.number({error: `expected a number (${what})`}).min(0, {error: 'must be ≥ 0'})
const Positive = (what: string) => z.number({error: `expected a number (${what})`}).positive({error: 'must be > 0'})

/** The targets as written in a plan file; every field optional (defaults below). */
export const TargetsSchema = z.strictObject({
  readsPerSecond: Rate('reads/s').optional().describe('peak reads/s (every read request type). Default 1,500: the platform\'s burst'),
  orderAttemptsPerSecond: Rate('order attempts/s').optional().describe('peak order attempts/s. Default 150'),
  writesPerSecond: Rate('writes/s').optional().describe('peak follow/unfollow/product edits per second. Default 0'),
  users: Count('users').optional().describe('users. Default 100,000,000'),
  creators: Count('creators').optional().describe('creators. Default 1,000,000'),
  followsPerUser: Rate('follows').optional().describe('creators an average user follows. Default 20'),
  productsPerCreator: Rate('products').optional().describe('products an average creator has. Default 10'),
  celebrities: Count('celebrities').optional().describe('creators above the pull threshold. Default 1,000'),
  celebrityFollowers: Count('followers').optional().describe('followers of the biggest celebrity. Default 50,000,000'),
  dropsPerDay: Rate('drops/day').optional().describe('drops per day. Default 10,000'),
  stockPerDrop: Count('units').optional().describe('units per drop. Default 1,000'),
  attemptsPerOrder: Positive('attempts').optional().describe('order attempts (each with its own idempotency key) per confirmed order, sold-out answers included. Default 3'),
  strategy: z.enum(STOCK_STRATEGIES as [string, ...string[]]).optional().describe("stock strategy. Default: the run's"),
  notificationDeadline: Duration.optional().describe('drop started → every follower notified. Default 2s'),
  idempotencyRetention: Duration.optional().describe('how long idempotency keys are kept. Default 72h'),
  headroom: Share(1).optional().describe('CPU kept free at peak. Default 30%'),
  coresPerServer: Positive('cores').int({error: 'must be a whole number'}).optional().describe('cores of a serve or cache machine. Default 8'),
  primaryMaxCores: Positive('cores').int({error: 'must be a whole number'}).optional().describe('the most cores one Postgres primary can have. Default 64'),
  cacheNodeMemoryGiB: Positive('GiB').optional().describe('memory of one Redis cache node. Default 8'),
  cacheNodeOpsPerSecond: Positive('ops/s').optional().describe('operations/s one Redis node serves at 100% of its core. Default: measured Redis CPU, else 100,000 (assumed)'),
  hotKeyReplicas: Positive('replicas').int({error: 'must be a whole number'}).optional().describe('copies of a hot cache key on distinct nodes. Default 3 (the catalog cache\'s)'),
  fanoutRowsPerWorker: Positive('rows/s').optional().describe('notification rows/s one push fan-out worker writes. Default 124,041 (assumed: bench:fanout, bench/README.md)'),
  pullThreshold: Count('followers').optional().describe('creators with more followers are pull-delivered. Default 10,000 (the fan-out\'s)'),
})
export type TargetsInput = z.input<typeof TargetsSchema>
type Parsed = z.output<typeof TargetsSchema>

/** Resolved targets (every field set). Durations in ms, shares 0–1. */
export interface Targets {
  readsPerSecond: number
  orderAttemptsPerSecond: number
  writesPerSecond: number
  users: number
  creators: number
  followsPerUser: number
  productsPerCreator: number
  celebrities: number
  celebrityFollowers: number
  dropsPerDay: number
  stockPerDrop: number
  attemptsPerOrder: number
  /** null: the run's strategy. */
  strategy: string | null
  notificationDeadlineMs: number
  idempotencyRetentionMs: number
  headroom: number
  coresPerServer: number
  primaryMaxCores: number
  cacheNodeMemoryGiB: number
  /** null: from the run's Redis CPU, else the assumed default. */
  cacheNodeOpsPerSecond: number | null
  hotKeyReplicas: number
  /** null: the assumed default (bench:fanout). */
  fanoutRowsPerWorker: number | null
  pullThreshold: number
}

export const DEFAULT_TARGETS: Targets = {
  readsPerSecond: 1500,
  orderAttemptsPerSecond: 150,
  writesPerSecond: 0,
  users: 100_000_000,
  creators: 1_000_000,
  followsPerUser: 20,
  productsPerCreator: 10,
  celebrities: 1000,
  celebrityFollowers: 50_000_000,
  dropsPerDay: 10_000,
  stockPerDrop: 1000,
  attemptsPerOrder: 3,
  strategy: null,
  notificationDeadlineMs: 2000,
  idempotencyRetentionMs: 72 * 3_600_000,
  headroom: 0.3,
  coresPerServer: 8,
  primaryMaxCores: 64,
  cacheNodeMemoryGiB: 8,
  cacheNodeOpsPerSecond: null,
  hotKeyReplicas: 3,
  fanoutRowsPerWorker: null,
  pullThreshold: 10_000,
}

function resolve(p: Parsed): Partial<Targets> {
  const {notificationDeadline, idempotencyRetention, ...rest} = p
  const out: Partial<Targets> = {...rest}
  if (notificationDeadline !== undefined) out.notificationDeadlineMs = notificationDeadline
  if (idempotencyRetention !== undefined) out.idempotencyRetentionMs = idempotencyRetention
  return out
}

/** A plan file is a page of YAML. */
const MAX_TARGETS_BYTES = 64 * 1024

/** Validates plan-file text; every problem at once as file:line:column field: message (exit 4). */
export function parseTargets(text: string, file = '<targets>'): Partial<Targets> {
  const hint = 'Fix the fields named above; `livedrop plan --help` lists every target.'
  if (Buffer.byteLength(text) > MAX_TARGETS_BYTES) throw scenarioError([{file, line: 1, column: 1, field: '', message: `a targets file is at most ${MAX_TARGETS_BYTES} bytes`}], hint)
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  const at = (offset: number) => lineCounter.linePos(offset)
  const problems: ScenarioProblem[] = doc.errors.map((e) => ({file, line: at(e.pos[0]).line, column: at(e.pos[0]).col, field: '', message: e.message.split('\n')[0]}))
  if (problems.length === 0) {
    // no aliases are needed in a targets file; the cap refuses an alias bomb
    let value: unknown
    try {
      value = doc.toJS({maxAliasCount: 10})
    } catch (err) {
      throw scenarioError([{file, line: 1, column: 1, field: '', message: (err as Error).message}], hint)
    }
    const parsed = TargetsSchema.safeParse(value ?? {})
    if (parsed.success) return resolve(parsed.data)
    for (const issue of parsed.error.issues) problems.push(...locateIssue(issue, doc, file, at))
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column)
  throw scenarioError(problems, hint)
}

export async function loadTargets(file: string): Promise<Partial<Targets>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw scenarioError([{file, line: 1, column: 1, field: '', message: `cannot read the targets file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`}], 'Check the path.')
  }
  return parseTargets(text, file)
}

/** The targets' flags: name → the schema field it sets. Values are text, as typed. */
export const TARGET_FLAGS = {
  reads: 'readsPerSecond',
  orders: 'orderAttemptsPerSecond',
  writes: 'writesPerSecond',
  users: 'users',
  creators: 'creators',
  celebrities: 'celebrities',
  followers: 'celebrityFollowers',
  'drops-per-day': 'dropsPerDay',
  stock: 'stockPerDrop',
  strategy: 'strategy',
  deadline: 'notificationDeadline',
  retention: 'idempotencyRetention',
  headroom: 'headroom',
  cores: 'coresPerServer',
} as const satisfies Record<string, keyof TargetsInput>

/**
 * Validates flag values (text as typed; "50,000,000" and "50_000_000" are numbers) against the
 * same schema; every bad flag at once as a UsageError naming it (exit 2).
 */
export function targetsFromFlags(flags: Partial<Record<keyof typeof TARGET_FLAGS, string>>): Partial<Targets> {
  const input: Record<string, unknown> = {}
  for (const [flag, field] of Object.entries(TARGET_FLAGS)) {
    const raw = flags[flag as keyof typeof TARGET_FLAGS]
    if (raw === undefined) continue
    const plain = raw.replace(/[,_]/g, '')
    // numbers stay numbers; durations, shares and names stay text for the schema to judge
    input[field] = plain !== '' && Number.isFinite(Number(plain)) ? Number(plain) : raw
  }
  const parsed = TargetsSchema.safeParse(input)
  if (parsed.success) return resolve(parsed.data)
  const byField = Object.fromEntries(Object.entries(TARGET_FLAGS).map(([f, k]) => [k, f]))
  const errors = parsed.error.issues.map((i) => new UsageError(`--${byField[String(i.path[0])]}`, `${i.message} (got ${JSON.stringify(flags[byField[String(i.path[0])] as keyof typeof TARGET_FLAGS])})`))
  throwUsageErrors(errors)
  return {}
}

/** Defaults < file < flags. */
export function resolveTargets(file: Partial<Targets> = {}, flags: Partial<Targets> = {}): Targets {
  const defined = (o: Partial<Targets>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
  return {...DEFAULT_TARGETS, ...defined(file), ...defined(flags)}
}
