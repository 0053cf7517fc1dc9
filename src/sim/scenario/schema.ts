import {z} from 'zod'
import {FaultsSchema} from '../faults/schema.js'
import {Duration, PositiveDuration} from './duration.js'
import {parseThreshold} from '../metrics/thresholds.js'
import {STOCK_STRATEGIES, isStockStrategy, strategyFor, type StockStrategyName} from '../../core/stock/index.js'

/** The request types a scenario drives; each maps to one HTTP route of `livedrop serve`. */
export const REQUEST_TYPES = ['browse_product', 'browse_drop', 'list_followers', 'follow', 'unfollow', 'order', 'notifications', 'edit_product', 'remove_product'] as const
export type RequestType = (typeof REQUEST_TYPES)[number]

/** Threshold groups: `read.p95 < 200ms` covers every read request type. */
export const REQUEST_GROUPS: Record<string, readonly RequestType[]> = {
  read: ['browse_product', 'browse_drop', 'list_followers', 'notifications'],
  write: ['follow', 'unfollow', 'edit_product', 'remove_product'],
  all: REQUEST_TYPES,
}

/** Metrics other parts add to a run (end-to-end notification latency), usable in thresholds. */
export const EXTRA_METRICS = ['notify'] as const

export const INVARIANTS = ['no_oversell', 'no_duplicate_orders', 'every_ack_persisted'] as const

const Arrival = z.enum(['constant', 'poisson']).describe('constant: evenly spaced sends; poisson: exponential gaps (bursty, as independent users are)')

const knownMetrics = new Set<string>([...REQUEST_TYPES, ...Object.keys(REQUEST_GROUPS), ...EXTRA_METRICS, 'errors'])
const ThresholdText = z
  .string()
  .describe(
    'k6-like: "read.p95 < 200ms", "order.service.p99 < 300ms", "errors.rate < 0.1%", "browse_product.rate > 95/s"; with no samples it fails unless optional, written with ? after the stat: "order.p95? < 500ms"; "read.p99 < 300ms over 5s" holds in every 5 s window',
  )
  .superRefine((text, ctx) => {
    try {
      const t = parseThreshold(text)
      if (!knownMetrics.has(t.metric)) ctx.addIssue({code: 'custom', message: `unknown metric "${t.metric}" (known: ${[...knownMetrics].join(', ')})`})
      // extra metrics have no per-second series to cut into windows
      else if (t.windowS !== null && (EXTRA_METRICS as readonly string[]).includes(t.metric)) ctx.addIssue({code: 'custom', message: `"over" windows apply to request types and groups, not ${t.metric}`})
    } catch (err) {
      ctx.addIssue({code: 'custom', message: (err as Error).message})
    }
  })

/**
 * What the run can watch while it goes: the per-second series holds latency, answers and errors
 * of request types, not late sends nor extra metrics (notify); and a phase's count or rate is
 * only known once the run has ended (its seconds hold the answers completed then, not the
 * requests the phase scheduled), so neither can stop a run.
 */
function abortProblem(expression: string, scope: 'run' | 'phase'): string | null {
  let t
  try {
    t = parseThreshold(expression)
  } catch {
    return null // the expression's own issue says what is wrong
  }
  if ((EXTRA_METRICS as readonly string[]).includes(t.metric)) return `${t.metric} is measured once the run is over, so it cannot stop the run`
  if (t.stat === 'late') return 'late sends are counted once the run is over, so they cannot stop the run'
  if (scope === 'phase' && (t.kind === 'count' || t.kind === 'rate')) return "a phase's count or rate is known once the run is over: put it in the run's thresholds, where it stops the run as soon as it can no longer pass"
  return null
}

/** The object form, with k6's names: {threshold: "read.p95 < 200ms", abortOnFail: true, delayAbortEval: 10s}. */
const thresholdObject = (scope: 'run' | 'phase') =>
  z
    .strictObject({
      threshold: ThresholdText,
      abortOnFail: z.boolean().default(false).describe('stop the run as soon as this threshold fails (exit 99); as k6'),
      delayAbortEval: Duration.optional().describe(
        `wait this long before judging it for abortOnFail, from the ${scope === 'run' ? "run's" : "phase's"} start (default 0s); a count or error share that can no longer pass stops the run at once`,
      ),
    })
    .superRefine((o, ctx) => {
      if (o.delayAbortEval !== undefined && !o.abortOnFail) ctx.addIssue({code: 'custom', path: ['delayAbortEval'], message: 'only applies with abortOnFail: true'})
      const problem = o.abortOnFail ? abortProblem(o.threshold, scope) : null
      if (problem) ctx.addIssue({code: 'custom', path: ['abortOnFail'], message: problem})
    })

const thresholdEntry = (scope: 'run' | 'phase') =>
  z.union([ThresholdText, thresholdObject(scope)], {
    error: (issue) => (issue.code === 'invalid_union' ? 'expected a threshold: "read.p95 < 200ms", or {threshold: "read.p95 < 200ms", abortOnFail: true, delayAbortEval: 10s}' : undefined),
  })

/**
 * A threshold with abortOnFail, by its place: scope `run` is the scenario's thresholds[index],
 * else the phase of that name's thresholds[index]. By place rather than by text, so a capacity
 * step that rewrites a count's limit still finds it.
 */
export interface AbortRule {
  scope: string
  index: number
  /** delayAbortEval in ms, from the run's start (scope run) or the phase's start. 0 when not given. */
  delayMs: number
}

const rateShape = Object.fromEntries(
  REQUEST_TYPES.map((t) => [t, z.number().nonnegative().optional().describe(`${t} requests per second (open model)`)]),
) as Record<RequestType, z.ZodOptional<z.ZodNumber>>
const Rates = z.strictObject(rateShape).describe('Arrival rate per request type in requests/second; omitted types send nothing')

const Phase = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, {error: 'letters, digits, _ and - only'}),
  duration: PositiveDuration.describe('how long the phase lasts'),
  arrival: Arrival.optional().describe('overrides the scenario-wide arrival process'),
  rates: Rates,
  rampTo: Rates.optional().describe('rates at the phase end, reached linearly from rates (a type missing here keeps its rate), as k6 ramping-arrival-rate'),
  thresholds: z.array(thresholdEntry('phase')).optional().describe('thresholds evaluated on this phase alone'),
})

export const ScenarioSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().min(1),
    description: z.string().optional(),
    dataset: z
      .strictObject({
        users: z.number().int().min(1).default(20_000),
        creators: z.number().int().min(1).default(50),
        celebrities: z.number().int().min(0).default(1),
        celebrityFollowers: z.number().int().min(0).default(10_000),
        productsPerCreator: z.number().int().min(0).default(3),
        seed: z.number().int().min(0).default(42),
      })
      .prefault({})
      .describe('the data seeded before the run (see `livedrop seed`)'),
    engine: z
      .strictObject({
        strategy: z.enum(STOCK_STRATEGIES as [StockStrategyName, ...StockStrategyName[]]).default('row'),
        buckets: z.number().int().min(1).optional().describe('stock buckets for the buckets strategy'),
        cache: z
          .string()
          .default('memory:3')
          .describe('cache nodes: memory[:N], redis://a,redis://b, redis-cluster://h:7000, or local-redis:N (N redis-servers livedrop starts for the run)'),
        workers: z
          .number()
          .int()
          .min(1)
          .max(16)
          .optional()
          .describe('serve the in-process stack from N worker processes (serve --workers N) instead of the CLI process, so a fault can kill one'),
        redis: z.literal('local').optional().describe('local: start a redis-server of the run\'s own (gate, invalidation, SSE), which faults may restart'),
        // optional rather than defaulted here, so files and results without edits stay as they were
        staleAfter: PositiveDuration.optional().describe(
          'the staleness bound (default 1s): a product read sent longer than this after an edit was acknowledged must show that edit (invariant no_stale_reads)',
        ),
      })
      .prefault({}),
    drop: z
      .strictObject({
        stock: z.number().int().min(1),
        startOffset: Duration.prefault('0s').describe('when the drop goes live, from the start of the run'),
        duration: PositiveDuration.optional().describe('how long the drop stays live (default: to the end of the run)'),
        lowStock: z.number().int().min(0).optional().describe('low-stock notification threshold (default 10% of stock)'),
      })
      .describe('the drop the orders race for'),
    arrival: Arrival.default('constant'),
    zipf: z
      .strictObject({exponent: z.number().positive().default(1.1).describe('Zipf exponent of product/creator popularity; rank 1 is the celebrity')})
      .prefault({}),
    order: z
      .strictObject({
        retryRate: z.number().min(0).max(1).default(0.05).describe('share of order attempts that repeat an earlier Idempotency-Key'),
        qty: z
          .record(z.string().regex(/^[1-9][0-9]*$/, {error: 'quantities are whole numbers ≥ 1'}), z.number().positive())
          .default({'1': 1})
          .describe('quantity → relative weight, e.g. {1: 0.9, 2: 0.1}'),
      })
      .prefault({}),
    notify: z
      .strictObject({sample: z.number().int().min(0).default(20).describe('followers whose drop_started latency is measured end to end')})
      .prefault({}),
    phases: z.array(Phase).min(1),
    thresholds: z.array(thresholdEntry('run')).default([]).describe('thresholds evaluated on the whole run'),
    invariants: z.array(z.enum(INVARIANTS)).default([...INVARIANTS]),
    faults: FaultsSchema.optional(),
    generator: z
      .strictObject({
        connections: z.number().int().min(1).default(256).describe('keep-alive connections, also the most requests in flight'),
        slackMs: z.number().nonnegative().default(10).describe('a request sent later than this after its intended time counts as late'),
        timeout: PositiveDuration.prefault('10s').describe('per-request timeout'),
        maxLateFraction: z.number().min(0).max(1).default(0.01).describe('ignored since late sends no longer void a run (kept so older files load)'),
        maxLagMs: z.number().positive().default(500).describe('no send for longer than this while requests are due (a stalled generator) stops the run, which is void'),
      })
      .prefault({}),
  })
  .superRefine(
    (s, ctx) => {
      // runs even when other fields failed (when: always), so every problem shows at once
      const phases = Array.isArray(s?.phases) ? s.phases : []
      const seen = new Map<string, number>()
      phases.forEach((p, i) => {
        if (typeof p?.name !== 'string') return
        if (seen.has(p.name)) ctx.addIssue({code: 'custom', path: ['phases', i, 'name'], message: `duplicate phase name "${p.name}" (also phases[${seen.get(p.name)}])`})
        seen.set(p.name, i)
      })
      // the drop's product (the celebrity's first) is never removed, so removing needs a second one
      if (phases.some((p) => p?.rates?.remove_product || p?.rampTo?.remove_product) && s?.dataset && s.dataset.productsPerCreator < 2) {
        ctx.addIssue({code: 'custom', path: ['dataset', 'productsPerCreator'], message: 'remove_product needs at least 2 (the first product is the drop’s and is never removed)'})
      }
      if (s?.engine && s.engine.buckets !== undefined && isStockStrategy(s.engine.strategy) && !strategyFor(s.engine.strategy).bucketed) {
        ctx.addIssue({code: 'custom', path: ['engine', 'buckets'], message: `only used with strategy: ${STOCK_STRATEGIES.filter((n) => strategyFor(n).bucketed).join(', ')}`})
      }
    },
    {when: () => true},
  )
  .transform(splitAbortRules)

type ThresholdEntry = string | {threshold: string; abortOnFail: boolean; delayAbortEval?: number}

/**
 * Thresholds as expressions (what every part judges, exports and records), and those written with
 * abortOnFail as rules beside them (abortRules, absent when none): the run watches those seconds by second.
 */
function splitAbortRules<S extends {thresholds: ThresholdEntry[]; phases: Array<{name: string; thresholds?: ThresholdEntry[]}>}>(s: S) {
  const abortRules: AbortRule[] = []
  const texts = (entries: ThresholdEntry[], scope: string) =>
    entries.map((e, index) => {
      if (typeof e === 'string') return e
      if (e.abortOnFail) abortRules.push({scope, index, delayMs: e.delayAbortEval ?? 0})
      return e.threshold
    })
  type Phase = Omit<S['phases'][number], 'thresholds'> & {thresholds?: string[]}
  const phases = s.phases.map(({thresholds, ...p}) => (thresholds ? {...p, thresholds: texts(thresholds, p.name)} : p) as Phase)
  const thresholds = texts(s.thresholds, 'run')
  const out: Omit<S, 'thresholds' | 'phases'> & {thresholds: string[]; phases: Phase[]; abortRules?: AbortRule[]} = {...s, thresholds, phases}
  if (abortRules.length) out.abortRules = abortRules
  return out
}

/** A validated scenario: durations in milliseconds, defaults filled in. */
export type Scenario = z.output<typeof ScenarioSchema>
export type ScenarioPhase = Scenario['phases'][number]
/** The published JSON Schema (scenarios/schema.json) for editors' autocompletion. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ScenarioSchema, {io: 'input', unrepresentable: 'any'}),
    $id: 'https://livedrop.dev/schemas/scenario.json',
    title: 'livedrop scenario',
  }
}

const scaleRates = (rates: ScenarioPhase['rates'], factor: number) =>
  Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, v === undefined ? v : v * factor])) as ScenarioPhase['rates']

/**
 * Multiplies rates and sizes (users, creators, celebrity followers, stock) by `factor`;
 * durations stay, so a scaled run takes as long and pushes `factor`× the traffic.
 */
export function scaleScenario(s: Scenario, factor: number): Scenario {
  if (!(factor > 0)) throw new RangeError(`scale must be > 0, got ${factor}`)
  if (factor === 1) return s
  const n = (v: number, min = 1) => Math.max(min, Math.round(v * factor))
  return {
    ...s,
    dataset: {...s.dataset, users: n(s.dataset.users), creators: n(s.dataset.creators), celebrityFollowers: n(s.dataset.celebrityFollowers, 0)},
    drop: {...s.drop, stock: n(s.drop.stock), lowStock: s.drop.lowStock === undefined ? undefined : n(s.drop.lowStock, 0)},
    phases: s.phases.map((p) => ({
      ...p,
      rates: scaleRates(p.rates, factor),
      rampTo: p.rampTo && scaleRates(p.rampTo, factor),
    })),
  }
}

const HOUR_MS = 3_600_000

/**
 * Upper bounds that fit one machine of the kind livedrop runs on (2 cores, 24 GiB) running the
 * generator and the whole stack; checked after --scale. Past them a run cannot be what it claims
 * (the generator falls behind, the seed outgrows memory or disk), so the file is refused up front.
 */
export const SCENARIO_LIMITS = {
  /** All request types of one phase together, requests/s: far past what one generator thread sends. */
  phaseRate: 100_000,
  /** The whole run (all phases), and the drop's start offset and length. */
  durationMs: 24 * HOUR_MS,
  users: 20_000_000,
  creators: 1_000_000,
  celebrityFollowers: 20_000_000,
  /** celebrities × celebrityFollowers: rows of follows (≈130 bytes each on disk). */
  follows: 100_000_000,
  /** creators × productsPerCreator: products are built in memory before they load. */
  products: 2_000_000,
  stock: 1_000_000_000,
  buckets: 4096,
  connections: 10_000,
  notifySample: 10_000,
  timeoutMs: 5 * 60_000,
  /** slackMs and maxLagMs. */
  lagMs: 60_000,
} as const

export interface LimitProblem {
  path: Array<string | number>
  message: string
}

/** Where a (scaled) scenario goes past SCENARIO_LIMITS, or asks the seed for what it refuses. */
export function limitProblems(s: Scenario, scale = 1): LimitProblem[] {
  const L = SCENARIO_LIMITS
  const scaled = scale === 1 ? '' : ` (after --scale ${scale})`
  const n = (v: number) => v.toLocaleString('en-US')
  const out: LimitProblem[] = []
  const atMost = (path: LimitProblem['path'], value: number, max: number, unit = '', formula = '') => {
    if (value > max) out.push({path, message: `${n(value)}${unit}${formula && ` (${formula})`}${scaled}: at most ${n(max)}${unit} fit this machine class`})
  }
  const d = s.dataset
  atMost(['dataset', 'users'], d.users, L.users)
  atMost(['dataset', 'creators'], d.creators, L.creators)
  atMost(['dataset', 'celebrityFollowers'], d.celebrityFollowers, L.celebrityFollowers)
  atMost(['dataset', 'celebrities'], d.celebrities * d.celebrityFollowers, L.follows, ' follows', 'celebrities × celebrityFollowers')
  atMost(['dataset', 'productsPerCreator'], d.creators * d.productsPerCreator, L.products, ' products', 'creators × productsPerCreator')
  if (d.creators > d.users) out.push({path: ['dataset', 'creators'], message: `${n(d.creators)}${scaled} exceeds users (${n(d.users)}): every creator is a user`})
  if (d.celebrities > d.creators) out.push({path: ['dataset', 'celebrities'], message: `${n(d.celebrities)} exceeds creators (${n(d.creators)})`})
  atMost(['drop', 'stock'], s.drop.stock, L.stock)
  if (s.drop.lowStock !== undefined && s.drop.lowStock > s.drop.stock) out.push({path: ['drop', 'lowStock'], message: `${n(s.drop.lowStock)} exceeds the stock (${n(s.drop.stock)})`})
  atMost(['drop', 'startOffset'], s.drop.startOffset / 1000, L.durationMs / 1000, ' s')
  if (s.drop.duration !== undefined) atMost(['drop', 'duration'], s.drop.duration / 1000, L.durationMs / 1000, ' s')
  if (s.engine.buckets !== undefined) atMost(['engine', 'buckets'], s.engine.buckets, L.buckets)
  atMost(['phases'], s.phases.reduce((ms, p) => ms + p.duration, 0) / 1000, L.durationMs / 1000, ' s', 'all phases')
  const sum = (rates: ScenarioPhase['rates']) => Object.values(rates).reduce<number>((a, r) => a + (r ?? 0), 0)
  s.phases.forEach((p, i) => atMost(['phases', i, 'rates'], sum(p.rates), L.phaseRate, ' requests/s', 'all request types'))
  s.phases.forEach((p, i) => p.rampTo && atMost(['phases', i, 'rampTo'], sum({...p.rates, ...p.rampTo}), L.phaseRate, ' requests/s', 'all request types'))
  atMost(['notify', 'sample'], s.notify.sample, L.notifySample, ' event streams')
  atMost(['generator', 'connections'], s.generator.connections, L.connections)
  atMost(['generator', 'timeout'], s.generator.timeout / 1000, L.timeoutMs / 1000, ' s')
  atMost(['generator', 'slackMs'], s.generator.slackMs, L.lagMs, ' ms')
  atMost(['generator', 'maxLagMs'], s.generator.maxLagMs, L.lagMs, ' ms')
  return out
}

/** The whole-run and per-phase threshold expressions of a scenario, as a run file stores them. */
export interface ThresholdSpec {
  run: string[]
  phases: Record<string, string[]>
}

export function thresholdSpec(s: Scenario): ThresholdSpec {
  return {run: s.thresholds, phases: Object.fromEntries(s.phases.filter((p) => p.thresholds?.length).map((p) => [p.name, p.thresholds!]))}
}

/** The scenario's length: from the first phase's start to the last one's end, ms. */
export function scenarioDurationMs(s: Scenario): number {
  return s.phases.reduce((sum, p) => sum + p.duration, 0)
}
