import type {Db} from '../../core/db/types.js'
import {availableStock} from '../../core/stock/index.js'
import {dropOutcome} from '../../core/audit/drop.js'
import {measureStorage} from '../../core/audit/storage.js'
import {followerSample} from '../../core/catalog/follows.js'
import {LatencyHistogram} from '../../core/histogram.js'
import {runInvariants} from '../invariants/index.js'
import {runFault, type FaultRecord} from '../faults/index.js'
import {startCpuSampler, stackCpuSources, type CpuSampler} from '../metrics/cpu.js'
import type {RunResult, SeriesPoint} from '../metrics/result.js'
import type {Scenario} from '../scenario/schema.js'
import {relayGenerator, startGenerator, type GeneratorOutput} from './generator.js'
import {buildRunResult} from './result.js'
import type {Emit} from './events.js'
import {createRunDrop, endDrop, startDrop, type Stack} from './stack.js'

export interface OpenRunOptions {
  /** Validated and scaled. */
  scenario: Scenario
  file: string | null
  scale: number
  signal: AbortSignal
  /** Runs right after the drop goes live. Tests use it to sabotage the engine and see the run catch it. */
  onDropLive?: (ctx: {db: Db; dropId: number}) => Promise<void>
}

// the seed's creator 1 is the celebrity whose followers the notify sample watches
const CELEBRITY = 1
// the stock is sampled once a second for the report's stock chart and the sold-out time
const STOCK_SAMPLE_MS = 1000

/**
 * One open-model run on a prepared stack: creates the drop, replays the scenario on the generator
 * thread while the drop goes live on schedule, measures drop start → event on followers' SSE
 * streams, samples the stock, then checks the invariants against the database and judges the run.
 */
export async function openRun(stack: Stack, o: OpenRunOptions, emit: Emit): Promise<RunResult> {
  const s = o.scenario
  const {engine} = stack
  const dropId = await createRunDrop(stack, s)
  const cleanups: Array<() => void> = []
  try {
    const notifyUsers = s.notify.sample > 0 ? await followerSample(engine.db, CELEBRITY, s.notify.sample) : []
    emit('stage', 'run', `${s.name} against ${stack.target}`)
    const startedAt = new Date().toISOString()
    const generator = startGenerator({
      scenario: s,
      target: stack.target,
      world: {users: stack.data.users, creators: stack.data.creators, products: stack.data.products, dropId, secret: stack.secret},
      notifyUsers,
    })

    const stock: Array<{t: number; remaining: number}> = []
    let runStart = 0
    let soldOutAtMs: number | null = null
    let dropLiveAtMs: number | null = null
    let openFailure: unknown = null
    let generatorTid: number | null = null
    let cpu = null as CpuSampler | null
    let faults: Array<Promise<FaultRecord>> = []
    const faultsOver = new AbortController()
    generator.on('thread', (tid) => (generatorTid = tid))
    // each second carries the stock left, as last sampled
    const withStock = (p: SeriesPoint) => {
      const last = stock.at(-1)
      return last ? {...p, stock: last.remaining} : p
    }
    const {watcher, detach} = relayGenerator(generator, {scenario: s, signal: o.signal, emit, decorate: withStock})
    cleanups.push(detach)
    generator.on('phase', () => {
      if (runStart) return
      // the run's clock starts with its first phase: the drop opens startOffset later
      runStart = performance.now()
      cpu = startCpuSampler(stackCpuSources({generatorTid, server: stack.serverProcesses, postmasterPid: stack.databasePid}))
      cleanups.push(() => cpu?.stop())
      // each fault is caused for real at its time; one still under way at the end is waited for (it restores what it broke)
      faults = (s.faults ?? []).map((f) =>
        runFault(f, {...stack.faultTargets, startedAt: runStart, signal: faultsOver.signal}).then((record) => {
          if (record.startedMs !== null) emit('fault', faultMarker(record))
          return record
        }),
      )
      const sampleStock = async () => {
        const remaining = (await availableStock(engine.db, dropId)) ?? 0
        const t = (performance.now() - runStart) / 1000
        stock.push({t: Number(t.toFixed(3)), remaining})
        if (remaining === 0 && soldOutAtMs === null) soldOutAtMs = Math.round(t * 1000)
      }
      const sampler = setInterval(() => void sampleStock().catch(() => {}), STOCK_SAMPLE_MS)
      cleanups.push(() => clearInterval(sampler))
      const opener = setTimeout(() => {
        generator.mark()
        void startDrop(engine.deps, dropId)
          .then(async () => {
            dropLiveAtMs = Math.round(performance.now() - runStart)
            engine.fanout?.wake()
            await o.onDropLive?.({db: engine.db, dropId})
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
    const out = await generator.done
    const cpuReport = cpu?.stop() ?? null
    faultsOver.abort()
    const faultRecords = await Promise.all(faults)
    if (openFailure) throw openFailure
    for (const c of cleanups.splice(0)) c()

    emit('stage', 'verify', 'checking invariants against the database')
    const result = buildRunResult({
      scenario: s,
      file: o.file,
      scale: o.scale,
      target: stack.target,
      startedAt,
      load: out.load,
      invariants: await runInvariants(engine.db, dropId, s, out.ledger),
      stats: await statsOf(stack, s, dropId, out, {dropLiveAtMs, soldOutAtMs, stockSeries: stock, cpu: cpuReport}),
      metrics: out.notify.sampled > 0 ? {notify: LatencyHistogram.decode(out.notify.histogram)} : {},
      abort: watcher?.fired,
    })
    if (faultRecords.length) result.faults = faultRecords.map(faultMarker)
    return result
  } finally {
    for (const c of cleanups) c()
  }
}

async function statsOf(stack: Stack, s: Scenario, dropId: number, out: GeneratorOutput, timeline: Record<string, unknown>): Promise<Record<string, unknown>> {
  const outcome = await dropOutcome(stack.engine.db, dropId)
  const {ledger, notify} = out
  return {
    dropId,
    strategy: s.engine.strategy,
    stock: s.drop.stock,
    unitsSold: outcome.unitsSold,
    dropStatus: outcome.status,
    ordersConfirmed: ledger.confirmed,
    soldOutAnswers: ledger.soldOut,
    notLiveAnswers: ledger.notLive,
    replays: ledger.replays,
    cacheHitRatio: await stack.hitRatio(),
    ...timeline,
    notifySampled: notify.sampled,
    notifyMissed: notify.missed,
    // bytes per row of each table, for `livedrop plan`'s storage estimate
    storage: await measureStorage(stack.engine.db),
  }
}

/** A fault as the run file keeps it: when it was caused and over (ms since the run's start), what was done. */
function faultMarker(f: FaultRecord): NonNullable<RunResult['faults']>[number] {
  return {atMs: f.startedMs ?? f.at, kind: f.kind, ...(f.endedMs !== null ? {endMs: f.endedMs} : {}), action: f.action, ...(f.error ? {error: f.error} : {})}
}
