import {EventEmitter} from 'node:events'
import type {FastifyInstance} from 'fastify'
import {request} from 'undici'
import {createDrop, endDrop, startDrop} from '../core/catalog/drops.js'
import {datasetFingerprint, seed, seededFingerprint} from '../core/catalog/seed.js'
import {holdsData} from '../core/db/migrate.js'
import type {Db, DbTarget} from '../core/db/types.js'
import {createEngine, type Engine} from '../core/engine.js'
import {SecretRejectedError, UsageError, redactUrl} from '../core/errors.js'
import {availableStock} from '../core/stock/index.js'
import {buildServer} from '../server/app.js'
import {mintToken} from '../server/auth.js'
import {checkDropInvariants} from './invariants/index.js'
import {LatencyHistogram} from './metrics/histogram.js'
import type {InvariantResult, RunResult} from './metrics/result.js'
import {finalizeRun, REQUEST_GROUPS, startRun, type PhaseEvent, type RunProgress} from './run.js'
import {startGenerator} from './load/generator.js'
import {reachable} from './load/reachable.js'
import {saturate, saturationPlan, type SaturateResult, type SaturateStep} from './load/saturate.js'
import {createBuilders} from './scenario/builders.js'
import type {Scenario} from './scenario/schema.js'

export interface ScenarioRunOptions {
  /** A validated, already scaled scenario. */
  scenario: Scenario
  /** Recorded in the result. */
  file?: string | null
  scale?: number
  /** Drive this running deployment; otherwise the whole stack starts in-process. */
  target?: string | null
  /** The database: the in-process stack's, or the deployment's (for the drop and the invariants). */
  db: DbTarget
  redisUrl?: string | null
  /** Cache nodes of the in-process stack. Default: the scenario's engine.cache. */
  cache?: string
  /** Token secret: the deployment's with --target. */
  secret: string
  /** Wipe a non-empty database and seed afresh; otherwise an already seeded one is reused. */
  reset?: boolean
  /** The database is the scenario's own (the embedded default): data a dead seed left is replaced. */
  ownDatabase?: boolean
  generator?: Partial<Scenario['generator']>
  signal?: AbortSignal
  /** Runs right after the drop goes live. Tests use it to sabotage the engine and see the run catch it. */
  onDropLive?: (ctx: {db: Db; dropId: number}) => Promise<void>
}

export type Stage = 'prepare' | 'seed' | 'run' | 'verify'

export interface ScenarioRunHandle extends EventEmitter {
  readonly result: Promise<RunResult>
  abort(): void
  on(event: 'stage', listener: (stage: Stage, detail: string) => void): this
  on(event: 'progress', listener: (p: RunProgress) => void): this
  on(event: 'phase', listener: (p: PhaseEvent) => void): this
}

/**
 * The main job: seeds (unless the database already holds the dataset), starts the stack
 * in-process (or uses --target), creates the drop, replays the scenario as an open model while
 * the drop goes live on schedule, measures drop start → event on followers' SSE streams, samples
 * the stock, then checks the invariants against the database.
 */
export function runScenarioStack(opts: ScenarioRunOptions): ScenarioRunHandle {
  return startRun<ScenarioRunHandle>(opts.signal, (emitter, signal) => execute(opts, emitter, signal))
}

interface Stack {
  engine: Engine
  target: string
  world: PreparedData
  dropId: number
}

/** Opens the engine, seeds or reuses the data, serves it in-process unless --target, creates the drop. */
async function withStack<T>(opts: ScenarioRunOptions, stage: (s: Stage, d: string) => void, fn: (stack: Stack) => Promise<T>): Promise<T> {
  const s = opts.scenario
  // a --target with nothing listening is exit 3 before anything is opened or seeded, and before
  // the generator's SSE watchers would connect to it (their ECONNREFUSED was an internal error)
  if (opts.target) await reachable(new URL(opts.target))
  stage('prepare', 'opening the database')
  const engine = await createEngine({
    db: opts.db,
    redisUrl: opts.redisUrl,
    cache: opts.cache ?? s.engine.cache,
    migrate: true,
    // in-process the stack delivers notifications itself; a --target deployment runs its own workers
    fanoutWorkers: opts.target ? 0 : 2,
    fanout: {pollMs: 25},
  })
  let app: FastifyInstance | undefined
  try {
    const world = await prepareData(engine, s, opts, stage)
    if (opts.target) await checkSecret(opts.target, opts.secret)
    let target = opts.target
    if (!target) {
      ;({app} = await buildServer(engine, {secret: opts.secret, rateLimitPerSecond: 1e6, rateLimitBurst: 1e6, log: false}))
      target = await app.listen({port: 0, host: '127.0.0.1'})
    }
    const totalMs = s.phases.reduce((sum, p) => sum + p.duration, 0)
    const now = Date.now()
    const drop = await createDrop(engine.deps, {
      creatorId: 1,
      productId: world.celebrityProduct,
      stock: s.drop.stock,
      startsAt: new Date(now + s.drop.startOffset),
      endsAt: new Date(now + (s.drop.duration !== undefined ? s.drop.startOffset + s.drop.duration : totalMs + 3_600_000)),
      lowStockThreshold: s.drop.lowStock ?? Math.floor(s.drop.stock / 10),
      strategy: s.engine.strategy,
      buckets: s.engine.buckets,
    })
    return await fn({engine, target, world, dropId: drop.id})
  } finally {
    await app?.close()
    await engine.close()
  }
}

async function execute(opts: ScenarioRunOptions, emitter: EventEmitter, signal: AbortSignal): Promise<RunResult> {
  const s = opts.scenario
  const stage = (name: Stage, detail: string) => emitter.emit('stage', name, detail)
  return withStack(opts, stage, async ({engine, target, world, dropId}) => {
    const cleanups: Array<() => void> = []
    try {
      const sample = s.notify.sample > 0 ? await engine.db.query<{user_id: number}>(`SELECT user_id FROM follows WHERE creator_id = 1 ORDER BY user_id LIMIT $1`, [s.notify.sample]) : {rows: []}
      stage('run', `${s.name} against ${target}`)
      const generator = startGenerator({
        scenario: s,
        target,
        world: {users: world.users, creators: world.creators, products: world.products, dropId, secret: opts.secret},
        file: opts.file ?? null,
        scale: opts.scale ?? 1,
        generator: opts.generator,
        notifyUsers: sample.rows.map((r) => Number(r.user_id)),
      })
      const abort = () => generator.abort()
      signal.addEventListener('abort', abort, {once: true})
      cleanups.push(() => signal.removeEventListener('abort', abort))

      const stock: Array<{t: number; remaining: number}> = []
      let runStart = 0
      let soldOutAtMs: number | null = null
      let dropLiveAtMs: number | null = null
      let openFailure: unknown = null
      generator.on('progress', (p) => emitter.emit('progress', p))
      generator.on('phase', (p) => {
        emitter.emit('phase', p)
        if (runStart) return
        // the run's clock starts with its first phase: the drop opens startOffset later
        runStart = performance.now()
        const sampleStock = async () => {
          const remaining = (await availableStock(engine.db, dropId)) ?? 0
          const t = (performance.now() - runStart) / 1000
          stock.push({t: Number(t.toFixed(3)), remaining})
          if (remaining === 0 && soldOutAtMs === null) soldOutAtMs = Math.round(t * 1000)
        }
        const sampler = setInterval(() => void sampleStock().catch(() => {}), 1000)
        cleanups.push(() => clearInterval(sampler))
        const opener = setTimeout(() => {
          generator.mark()
          void startDrop(engine.deps, dropId)
            .then(async () => {
              dropLiveAtMs = Math.round(performance.now() - runStart)
              engine.fanout?.wake()
              await opts.onDropLive?.({db: engine.db, dropId})
            })
            .catch((err) => {
              // the drop never opened: the run means nothing, stop it and report why
              openFailure = err
              generator.abort()
            })
        }, s.drop.startOffset)
        cleanups.push(() => clearTimeout(opener))
        if (s.drop.duration !== undefined) {
          const closer = setTimeout(() => void endDrop(engine.deps, dropId).catch(() => {}), s.drop.startOffset + s.drop.duration)
          cleanups.push(() => clearTimeout(closer))
        }
      })
      const {result, ledger, notify} = await generator.done
      if (openFailure) throw openFailure
      for (const c of cleanups.splice(0)) c()

      stage('verify', 'checking invariants against the database')
      const checks = await checkDropInvariants(engine.db, dropId, ledger.acknowledged, {minSoldOutQty: ledger.minSoldOutQty})
      const wanted = new Set<string>([...s.invariants, 'stock_conserved'])
      const invariants: InvariantResult[] = checks
        .filter((c) => wanted.has(c.name))
        .map((c) => ({name: c.name, pass: c.ok, detail: c.ok ? undefined : JSON.stringify(c.details), data: c.details}))
      const status = await engine.db.query<{status: string; sold: number}>(
        `SELECT d.status, (SELECT coalesce(sum(qty), 0)::int FROM orders o WHERE o.drop_id = d.id) AS sold FROM drops d WHERE d.id = $1`,
        [dropId],
      )
      const stats = {
        dropId,
        strategy: s.engine.strategy,
        stock: s.drop.stock,
        unitsSold: Number(status.rows[0].sold),
        dropStatus: status.rows[0].status,
        ordersConfirmed: ledger.confirmed,
        soldOutAnswers: ledger.soldOut,
        notLiveAnswers: ledger.notLive,
        replays: ledger.replays,
        cacheHitRatio: opts.target ? await remoteHitRatio(opts.target) : engine.catalog.stats().hitRatio,
        dropLiveAtMs,
        soldOutAtMs,
        stockSeries: stock,
        notifySampled: notify.sampled,
        notifyMissed: notify.missed,
      }
      const metrics: Record<string, LatencyHistogram> = notify.sampled > 0 ? {notify: LatencyHistogram.decode(notify.histogram)} : {}
      return finalizeRun(result, REQUEST_GROUPS, {invariants, stats, metrics})
    } finally {
      for (const c of cleanups) c()
    }
  })
}

/**
 * `--mode saturate`: the same stack, then autocannon climbs through connection counts with the
 * scenario's read mix and reports the highest throughput at which the read thresholds hold.
 */
export async function saturateScenarioStack(
  opts: ScenarioRunOptions & {stepSeconds?: number},
  onStep?: (step: SaturateStep) => void,
  onStage?: (s: Stage, d: string) => void,
): Promise<SaturateResult> {
  const s = opts.scenario
  return withStack(opts, onStage ?? (() => {}), async ({engine, target, world, dropId}) => {
    await startDrop(engine.deps, dropId)
    const {builders} = createBuilders(s, {users: world.users, creators: world.creators, products: world.products, dropId, secret: opts.secret})
    const plan = saturationPlan(s, REQUEST_GROUPS.read)
    onStage?.('run', `saturating ${target}`)
    return saturate({target, builders, weights: plan.weights, thresholds: plan.thresholds, seed: s.dataset.seed, stepSeconds: opts.stepSeconds, onStep})
  })
}

interface PreparedData {
  users: number
  creators: number
  products: number
  celebrityProduct: number
}

/**
 * Reuses data this scenario's dataset already seeded (same fingerprint); seeds an empty database,
 * one whose own seed died half-way, or any with reset; reuses other data as it is.
 */
async function prepareData(engine: Engine, s: Scenario, opts: ScenarioRunOptions, stage: (s: Stage, d: string) => void): Promise<PreparedData> {
  const seeded = await seededFingerprint(engine.db)
  const fingerprint = datasetFingerprint(s.dataset)
  if (seeded === fingerprint && !opts.reset) {
    stage('seed', `reusing the dataset seeded earlier (${fingerprint})`)
  } else if (opts.reset || (opts.ownDatabase && seeded === null) || !(await holdsData(engine.db))) {
    stage('seed', `${s.dataset.users} users, ${s.dataset.celebrityFollowers} celebrity followers`)
    await seed(engine.db, {...s.dataset, reset: true})
  }
  const {rows} = await engine.db.query<{users: number; creators: number; products: number; product: number | null; celebrity: boolean | null}>(
    `SELECT (SELECT max(id) FROM users) AS users, (SELECT max(id) FROM creators) AS creators, (SELECT max(id) FROM products) AS products,
      (SELECT min(id) FROM products WHERE creator_id = 1 AND deleted_at IS NULL) AS product`,
  )
  const r = rows[0]
  if (r.product === null) throw new UsageError('--db', `creator 1 has no product to drop in ${engine.db.label}`, {hint: 'Seed with --products-per-creator ≥ 1, or add --reset.'})
  return {users: Number(r.users), creators: Number(r.creators), products: Number(r.products), celebrityProduct: Number(r.product)}
}

/** The deployment's cache hit ratio from its /metrics (one process's view behind a balancer). */
async function remoteHitRatio(target: string): Promise<number | null> {
  try {
    const res = await request(`${target}/metrics`)
    const text = await res.body.text()
    const m = /^livedrop_cache_hit_ratio (\S+)$/m.exec(text)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** A deployment serving with another secret answers every token 401: say so before the run, naming --secret. */
async function checkSecret(target: string, secret: string): Promise<void> {
  // user 1 is creator 1, present in every prepared dataset
  const res = await request(`${target.replace(/\/$/, '')}/me/following?limit=1`, {headers: {authorization: `Bearer ${mintToken(1, secret)}`}})
  await res.body.dump()
  if (res.statusCode === 401) {
    throw new SecretRejectedError('--secret', `${redactUrl(target)} refused a token signed with this secret (GET /me/following answered 401)`, {
      hint: 'Pass the secret the deployment serves with (its --secret or LIVEDROP_SECRET).',
    })
  }
}
