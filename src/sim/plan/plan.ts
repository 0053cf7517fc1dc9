/**
 * The plan: the back-of-the-envelope estimate of a design doc, calibrated by a measured run.
 * Every answer carries its formula with the numbers put in, and each input says whether it was
 * measured in the run, set as a target, or assumed (a documented default the run cannot give).
 */
import {availableParallelism} from 'node:os'
import {UsageError} from '../../core/errors.js'
import {simulateRing, type RingSimResult} from '../../core/cache/simulate.js'
import type {RunResult} from '../metrics/result.js'
import {
  cacheNodesForMemory,
  coreDemand,
  dailyRows,
  firstToBreak,
  hottestNodeShare,
  keyRetention,
  sizeHotRow,
  sizePrimary,
  sizePushFanout,
  sizeServe,
  zipfForHottestShare,
  type GroupRates,
} from './formulas.js'
import {calibratedCosts, type CalibrationSource, type CostCalibration} from './check.js'
import {completeGroupCosts, GROUP_NAMES, measuredInputs, type Component, type CpuCosts, type GroupCosts, type Measured} from './inputs.js'
import type {Targets} from './targets.js'

/** Where an input came from. */
export type Source = 'measured' | 'target' | 'assumed'

export interface PlanInput {
  name: string
  /** null: not measured. */
  value: number | string | null
  source: Source
  /** The run file field, target or documented default it came from. */
  from: string
}

export interface Answer {
  id: 'serve' | 'postgres' | 'hot-row' | 'cache' | 'domino' | 'fanout' | 'storage' | 'purge' | 'breaks-first'
  title: string
  /** The answer in one line; "not measured: …" when an input is missing. */
  answer: string
  /** The formula with the numbers put in. */
  formula: string
  inputs: PlanInput[]
  status: 'ok' | 'warning' | 'not measured'
  data: Record<string, unknown>
}

export interface GrowthSeries {
  /** Load as a multiple of the targets. */
  load: number[]
  /** Utilisation (1 = 100%) of each sized component at each load. */
  components: Record<string, number[]>
}

export interface Plan {
  kind: 'livedrop-plan'
  version: 1
  run: Measured['run']
  targets: Targets
  measured: Measured
  /** The CPU costs the plan used: the measured ones, or those × calibration.factor. */
  costs: CpuCosts['components']
  /** The measured capacity the costs were calibrated by (--calibrate); null: the run's own costs. */
  calibration: CostCalibration | null
  answers: Answer[]
  /** Utilisation at the targets (×1) of each sized component. */
  utilisation: Record<string, number>
  breaksFirst: {component: string; atLoad: number} | null
  growth: GrowthSeries
  /** Inputs assumed because the run could not give them. */
  assumed: string[]
  /** Figures the run lacks; answers that needed them say so. */
  notMeasured: string[]
}

/** Documented defaults for what a run cannot measure (each answer marks them "assumed"). */
export const ASSUMED = {
  /** Operations/s one Redis node serves on its one core: redis-benchmark's GET/SET order of magnitude on a current core. */
  cacheNodeOpsPerSecond: 100_000,
  /** Notification rows/s one push worker wrote in bench:fanout (bench/README.md, 2026-11-21, loaded machine). */
  fanoutRowsPerWorker: 124_041,
  /** Redis's own bytes per key (dict entry, key and value objects, expiry): about 90 on 64-bit builds. */
  redisKeyOverheadBytes: 90,
  /** Share of a Redis node's memory used for data: the rest is fragmentation and fork copy-on-write room. */
  redisMemoryFill: 0.75,
  /** Units per order when the run did not sell any. */
  unitsPerOrder: 1,
} as const

/** Keys and requests of the domino check's ring simulation: enough for shares to settle, small enough to run in a blink. */
const RING_SIM_KEYS = 100_000
const RING_SIM_REQUESTS = 200_000
/** At least two cache nodes, so losing one does not send every read to Postgres. */
const MIN_CACHE_NODES = 2
/** The ring simulation's capacity multiple when there is no load at all. */
const NO_LOAD_CAPACITY = 1e9
/** Growth chart: loads from 0 to this multiple of the first break (at least ×2). */
const GROWTH_STEPS = 24

const fmt = (v: number, digits = 2) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Number(v.toFixed(digits)).toLocaleString('en-US'))
const pct = (v: number) => `${(v * 100).toFixed(1)}%`
const bytes = (b: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024
    i++
  }
  return `${b.toFixed(b >= 100 || i === 0 ? 0 : 1)} ${units[i]}`
}
const GiB = 1024 ** 3

function costLine(costs: GroupCosts, rates: GroupRates): string {
  const terms = GROUP_NAMES.filter((g) => rates[g] > 0).map((g) => `${costs[g] ?? 0} × ${fmt(rates[g])} ${g}/s`)
  return terms.length ? `(${terms.join(' + ')}) ÷ 1000` : '0'
}

/** The plan for `targets` from the figures measured in `run`. Refuses (UsageError) a run without CPU accounting. */
export function buildPlan(run: RunResult, targets: Targets, calibrateFrom: CalibrationSource | null = null): Plan {
  const m = measuredInputs(run)
  if (!m.cpu) {
    throw new UsageError('--from', `${m.cpuMissing}: the plan needs the CPU each component spent per request`, {
      hint: 'Record a run with CPU accounting (`livedrop scenario run FILE --out run.json`, embedded database) and pass that file.',
    })
  }
  const calibrated = calibrateFrom ? calibratedCosts(m.cpu, calibrateFrom, availableParallelism()) : null
  const cpu = calibrated?.costs ?? m.cpu
  const t = targets
  const assumed: string[] = []
  const notMeasured: string[] = []
  const rates: GroupRates = {read: t.readsPerSecond, order: t.orderAttemptsPerSecond, write: t.writesPerSecond}
  const answers: Answer[] = []
  const utilisation: Record<string, number> = {}
  const cpuFrom = `stats.cpu (${cpu.method === 'fit' ? `fitted per group over ${cpu.intervals} intervals` : "the run's mix average: its mix did not vary enough to separate groups"})${calibrated ? ` × ${calibrated.calibration.factor} (calibrated by ${calibrated.calibration.file})` : ''}`
  const rateInputs: PlanInput[] = GROUP_NAMES.filter((g) => rates[g] > 0).map((g) => ({name: `${g}/s`, value: rates[g], source: 'target', from: `targets.${g === 'read' ? 'readsPerSecond' : g === 'order' ? 'orderAttemptsPerSecond' : 'writesPerSecond'}`}))
  const costInputs = (part: Component, costs: GroupCosts): PlanInput[] =>
    GROUP_NAMES.filter((g) => rates[g] > 0).map((g) => ({name: `${part} CPU-s per 1,000 ${g}`, value: costs[g], source: cpu.components[part]?.[g] === null ? 'assumed' : 'measured', from: cpuFrom}))
  const componentCosts = (part: Component): GroupCosts | null => {
    const c = cpu.components[part]
    if (!c) {
      notMeasured.push(`${part} CPU (${cpu.notes[part] ?? 'not in stats.cpu'})`)
      return null
    }
    return completeGroupCosts(part, c, rates, assumed)
  }

  // ---- serve ----
  const serveCosts = componentCosts('serve')
  if (serveCosts) {
    const demand = coreDemand(serveCosts, rates)
    const s = sizeServe(demand, t.headroom, t.coresPerServer)
    utilisation.serve = demand / s.processes
    answers.push({
      id: 'serve',
      title: 'serve processes and cores',
      answer: `${s.processes} serve process${s.processes === 1 ? '' : 'es'} (one per core) on ${s.servers} machines of ${t.coresPerServer} cores (one spare: a stateless instance may fail)`,
      formula: `cores = ${costLine(serveCosts, rates)} ÷ (1 − ${t.headroom}) = ${fmt(demand, 3)} ÷ ${fmt(1 - t.headroom)} = ${fmt(s.coresNeeded, 3)} → ${s.processes} processes; machines = ⌈${s.processes} ÷ ${t.coresPerServer}⌉ + 1 = ${s.servers}`,
      inputs: [...costInputs('serve', serveCosts), ...rateInputs, {name: 'headroom', value: t.headroom, source: 'target', from: 'targets.headroom'}],
      status: 'ok',
      data: {demandCores: demand, ...s},
    })
  } else answers.push(notMeasuredAnswer('serve', 'serve processes and cores', 'serve CPU', 'stats.cpu.components.server'))

  // ---- Postgres primary ----
  const pgCosts = componentCosts('postgres')
  if (pgCosts) {
    const demand = coreDemand(pgCosts, rates)
    const p = sizePrimary(demand, t.headroom, t.primaryMaxCores)
    utilisation.postgres = demand / Math.min(p.cores, t.primaryMaxCores)
    answers.push({
      id: 'postgres',
      title: 'Postgres primary cores',
      answer: p.fits
        ? `${p.cores} core${p.cores === 1 ? '' : 's'} on the primary (at the run's cache hit ratio ${m.cacheHitRatio === null ? 'not measured' : pct(m.cacheHitRatio)})`
        : `${p.cores} cores: more than one primary of ${t.primaryMaxCores} cores — shard by creator or move reads to replicas`,
      formula: `cores = ${costLine(pgCosts, rates)} ÷ (1 − ${t.headroom}) = ${fmt(p.coresNeeded, 3)} → ${p.cores}${p.fits ? ` ≤ ${t.primaryMaxCores}` : ` > ${t.primaryMaxCores}`}`,
      inputs: [...costInputs('postgres', pgCosts), ...rateInputs, {name: 'cache hit ratio', value: m.cacheHitRatio, source: 'measured', from: 'stats.cacheHitRatio'}],
      status: p.fits ? 'ok' : 'warning',
      data: {demandCores: demand, ...p},
    })
  } else answers.push(notMeasuredAnswer('postgres', 'Postgres primary cores', 'database CPU', 'stats.cpu.components.database (an external database is not measured: run on the embedded default)'))

  // ---- the hot row ----
  const strategy = t.strategy ?? m.hotRow.strategy ?? 'row'
  const hr = m.hotRow
  if (hr.perRow !== null && hr.strategy === 'row') {
    const h = sizeHotRow(t.orderAttemptsPerSecond, hr.perRow, t.headroom)
    const rows = strategy === 'buckets' ? h.buckets : 1
    utilisation['hot row'] = t.orderAttemptsPerSecond / (hr.perRow * rows)
    answers.push({
      id: 'hot-row',
      title: 'does one hot row cap the order rate?',
      answer: h.capped
        ? `it may: one row carried at least ${fmt(hr.perRow)} orders/s (a lower bound: the run offered at most ${fmt(hr.offered ?? 0)} order attempts/s while selling) and ${fmt(h.needed)} are needed — ${h.buckets} stock buckets (strategy buckets) lift it${strategy === 'buckets' ? '' : `; with strategy ${strategy} it may cap`}. To know, measure one row offered ≥ ${fmt(h.needed)} orders/s (npm run bench:orders)`
        : `no: one row carried at least ${fmt(hr.perRow)} orders/s ≥ ${fmt(h.needed)} needed`,
      formula: `per row ≥ max(sold ${hr.soldRate ?? '?'} orders/s, 1000 ÷ p99 service ${hr.serviceBound ?? '?'}/s) = ${fmt(hr.perRow)}; needed = ${t.orderAttemptsPerSecond} ÷ (1 − ${t.headroom}) = ${fmt(h.needed)}; buckets = ⌈${fmt(h.needed)} ÷ ${fmt(hr.perRow)}⌉ = ${h.buckets}`,
      inputs: [
        {name: 'orders/s one row carried while selling', value: hr.soldRate, source: 'measured', from: 'stats.ordersConfirmed ÷ (stats.soldOutAtMs − stats.dropLiveAtMs)'},
        {name: '1000 ÷ orders p99 service ms while selling', value: hr.serviceBound, source: 'measured', from: 'series[].types.order.serviceP99'},
        {name: 'order attempts/s', value: t.orderAttemptsPerSecond, source: 'target', from: 'targets.orderAttemptsPerSecond'},
      ],
      status: h.capped && strategy !== 'buckets' ? 'warning' : 'ok',
      data: {...h, perRow: hr.perRow, strategy, lowerBound: true, note: hr.note},
    })
  } else {
    notMeasured.push(`orders/s per hot row (${hr.perRow === null ? hr.note : `the run used strategy ${hr.strategy}; measure one row with a run of strategy row`})`)
    answers.push(notMeasuredAnswer('hot-row', 'does one hot row cap the order rate?', 'orders/s per hot row', hr.perRow === null ? hr.note : `a run with strategy row (this one used ${hr.strategy})`))
  }

  // ---- cache nodes, hottest key, domino ----
  answers.push(...cacheAnswers(t, m, cpu.components.redis ?? null, rates, assumed, notMeasured, utilisation))

  // ---- fan-out ----
  const rowsPerWorker = t.fanoutRowsPerWorker ?? ASSUMED.fanoutRowsPerWorker
  if (t.fanoutRowsPerWorker === null) assumed.push(`fan-out rows/s per worker: ${ASSUMED.fanoutRowsPerWorker.toLocaleString('en-US')} (bench:fanout, bench/README.md); a scenario run does not measure it`)
  const nBytes = m.storage?.tables.notifications?.bytesPerRow ?? null
  const f = sizePushFanout(t.celebrityFollowers, t.notificationDeadlineMs / 1000, rowsPerWorker, nBytes)
  const pull = t.celebrityFollowers > t.pullThreshold
  answers.push({
    id: 'fanout',
    title: `notify a ${fmt(t.celebrityFollowers)}-follower celebrity within ${t.notificationDeadlineMs / 1000} s`,
    answer: `push: ${f.workers.toLocaleString('en-US')} workers writing ${fmt(f.rowsPerSecond)} rows/s${f.bytesPerEvent === null ? '' : ` (${bytes(f.bytesPerEvent)} per event)`}; pull: one outbox row, read at each follower's next feed read${pull ? ` — the creator is above the pull threshold (${fmt(t.pullThreshold)}), so pull` : ''}`,
    formula: `workers = ⌈${fmt(t.celebrityFollowers)} ÷ (${fmt(rowsPerWorker)} rows/s × ${t.notificationDeadlineMs / 1000} s)⌉ = ${f.workers}; rows/s = followers ÷ deadline = ${fmt(f.rowsPerSecond)}${nBytes === null ? '' : `; bytes = followers × ${nBytes} B/row`}`,
    inputs: [
      {name: 'followers', value: t.celebrityFollowers, source: 'target', from: 'targets.celebrityFollowers'},
      {name: 'deadline s', value: t.notificationDeadlineMs / 1000, source: 'target', from: 'targets.notificationDeadline'},
      {name: 'rows/s per worker', value: rowsPerWorker, source: t.fanoutRowsPerWorker === null ? 'assumed' : 'target', from: t.fanoutRowsPerWorker === null ? 'bench:fanout (bench/README.md)' : 'targets.fanoutRowsPerWorker'},
      {name: 'notification bytes/row', value: nBytes, source: 'measured', from: 'stats.storage.tables.notifications.bytesPerRow'},
    ],
    status: pull ? 'ok' : 'warning',
    data: {...f, pull, rowsPerWorker},
  })

  // ---- storage and purge ----
  answers.push(...storageAnswers(t, m, assumed, notMeasured))

  // ---- what breaks first ----
  const breaksFirst = firstToBreak(utilisation)
  const growth = growthSeries(utilisation, breaksFirst?.atLoad ?? 1)
  answers.push({
    id: 'breaks-first',
    title: 'what breaks first as load grows',
    answer: breaksFirst ? `${breaksFirst.component}${breaksFirst.component === 'hot row' ? ' (its capacity is a measured lower bound, so this is the earliest it may break)' : ''}, at ×${fmt(breaksFirst.atLoad)} the targets (${Object.entries(utilisation).map(([c, u]) => `${c} ${pct(u)}`).join(', ')} at ×1)` : 'nothing sized could be measured',
    formula: 'load at 100% = 1 ÷ utilisation at the targets, for each sized component with the plan\'s provisioned capacity; the least wins',
    inputs: Object.entries(utilisation).map(([c, u]) => ({name: `${c} utilisation at ×1`, value: Math.round(u * 1000) / 1000, source: 'measured' as const, from: `the ${c} answer`})),
    status: breaksFirst ? 'ok' : 'not measured',
    data: {utilisation, breaksFirst},
  })

  return {kind: 'livedrop-plan', version: 1, run: m.run, targets: t, measured: m, costs: cpu.components, calibration: calibrated?.calibration ?? null, answers, utilisation, breaksFirst, growth, assumed, notMeasured}
}

function notMeasuredAnswer(id: Answer['id'], title: string, what: string, measure: string): Answer {
  return {id, title, answer: `not measured: ${what}`, formula: `measure it: ${measure}`, inputs: [], status: 'not measured', data: {}}
}

/** Utilisation of each component from ×0 to past the first break. */
export function growthSeries(utilisation: Record<string, number>, firstBreak: number): GrowthSeries {
  const max = Math.max(2, Math.ceil(firstBreak * 1.25 * 2) / 2)
  const load = Array.from({length: GROWTH_STEPS + 1}, (_, i) => Math.round(((max * i) / GROWTH_STEPS) * 1000) / 1000)
  const components: Record<string, number[]> = {}
  for (const [c, u] of Object.entries(utilisation)) components[c] = load.map((k) => Math.round(k * u * 1000) / 1000)
  return {load, components}
}

function cacheAnswers(t: Targets, m: Measured, redisCosts: GroupCosts | null, rates: GroupRates, assumed: string[], notMeasured: string[], utilisation: Record<string, number>): Answer[] {
  // a Redis node has one core for commands: what one read cost in Redis CPU gives its ops/s
  const measuredOps = redisCosts?.read ? Math.round(1000 / redisCosts.read) : null
  const nodeOps = t.cacheNodeOpsPerSecond ?? measuredOps ?? ASSUMED.cacheNodeOpsPerSecond
  const opsSource: Source = t.cacheNodeOpsPerSecond !== null ? 'target' : measuredOps !== null ? 'measured' : 'assumed'
  if (opsSource === 'assumed') assumed.push(`Redis node capacity: ${ASSUMED.cacheNodeOpsPerSecond.toLocaleString('en-US')} ops/s (the run measured no Redis CPU)`)
  const hit = m.cacheHitRatio
  if (hit === null) notMeasured.push('cache hit ratio (stats.cacheHitRatio)')
  const hot = m.hotKeyShare
  if (hot === null) notMeasured.push('the hottest key\'s share of reads (the run sent no browse_drop)')
  // every read asks the cache once and every miss writes its entry back; the near cache is left out (conservative)
  const ops = rates.read * (1 + (1 - (hit ?? 0)))
  const products = t.creators * t.productsPerCreator
  const keys = products + t.creators + 2 * t.dropsPerDay
  const productBytes = m.storage?.tables.products?.bytesPerRow ?? null
  if (productBytes === null) notMeasured.push('bytes per product row (stats.storage.tables.products)')
  const perKey = productBytes === null ? null : productBytes + ASSUMED.redisKeyOverheadBytes
  const memNodes = perKey === null ? null : cacheNodesForMemory(keys, perKey, t.cacheNodeMemoryGiB * GiB, ASSUMED.redisMemoryFill)
  const hotShare = hot ?? 0
  const cap = nodeOps * (1 - t.headroom)
  const replicasNeeded = Math.max(1, Math.ceil((ops * hotShare) / cap))
  // grow the ring until the busiest node (hot key on its replicas, the rest with the ring's imbalance) fits
  let nodes = Math.max(memNodes ?? 1, Math.ceil(ops / cap), MIN_CACHE_NODES)
  let sim: RingSimResult | null = null
  const zipf = zipfForHottestShare(RING_SIM_KEYS, hotShare)
  for (let i = 0; i < 8; i++) {
    // node capacity as a multiple of the average node's load (no load: nothing can overload)
    const capacity = ops > 0 ? cap / (ops / nodes) : NO_LOAD_CAPACITY
    sim = simulateRing({nodes: nodes, keys: RING_SIM_KEYS, requests: RING_SIM_REQUESTS, zipf, fail: 1, cascade: true, capacity})
    const busiest = hottestNodeShare(hotShare, t.hotKeyReplicas, nodes, sim.spread.keys.maxOverAvg)
    // more nodes cannot help a hot key already on all its replicas
    if (ops * busiest <= cap || (nodes >= t.hotKeyReplicas && (hotShare / t.hotKeyReplicas) * ops > cap)) break
    nodes++
  }
  const busiestShare = hottestNodeShare(hotShare, t.hotKeyReplicas, nodes, sim!.spread.keys.maxOverAvg)
  utilisation['cache node'] = (ops * busiestShare) / nodeOps
  const inputs: PlanInput[] = [
    {name: 'reads/s', value: rates.read, source: 'target', from: 'targets.readsPerSecond'},
    {name: 'cache hit ratio', value: hit, source: 'measured', from: 'stats.cacheHitRatio'},
    {name: "hottest key's share of reads", value: hot, source: 'measured', from: 'browse_drop ÷ reads completed (one drop per run)'},
    {name: 'ops/s per node', value: nodeOps, source: opsSource, from: opsSource === 'measured' ? 'stats.cpu.components.redis' : opsSource === 'target' ? 'targets.cacheNodeOpsPerSecond' : 'assumed'},
    {name: 'bytes per product row', value: productBytes, source: 'measured', from: 'stats.storage.tables.products.bytesPerRow'},
  ]
  const f = sim!.failure!
  const survives = (c: {survivors: number}) => c.survivors === nodes - 1
  return [
    {
      id: 'cache',
      title: 'Redis cache nodes and the hottest key',
      answer: `${nodes} cache node${nodes === 1 ? '' : 's'}${memNodes === null ? ' (memory not measured)' : ` (${memNodes} for memory)`}; the hottest key takes ${hot === null ? 'not measured' : pct(hot)} of reads, ${fmt(ops * hotShare)} ops/s on ${Math.min(t.hotKeyReplicas, nodes)} replica${Math.min(t.hotKeyReplicas, nodes) === 1 ? '' : 's'}${replicasNeeded > t.hotKeyReplicas ? ` — needs ${replicasNeeded} replicas` : ''}; busiest node ${pct(busiestShare)} of ops`,
      formula: `ops/s = reads × (1 + miss ratio) = ${fmt(rates.read)} × ${fmt(1 + (1 - (hit ?? 0)), 3)} = ${fmt(ops)}; keys = products + creators + 2 × drops/day = ${fmt(keys)}${perKey === null ? '' : `; memory nodes = ⌈${fmt(keys)} × ${perKey} B ÷ (${t.cacheNodeMemoryGiB} GiB × ${ASSUMED.redisMemoryFill})⌉ = ${memNodes}`}; busiest node share = hot ÷ replicas + (1 − hot) × max/avg ÷ nodes = ${fmt(hotShare, 3)} ÷ ${Math.min(t.hotKeyReplicas, nodes)} + ${fmt(1 - hotShare, 3)} × ${fmt(sim!.spread.keys.maxOverAvg, 3)} ÷ ${nodes} = ${fmt(busiestShare, 3)} ≤ ${fmt(cap)} ÷ ${fmt(ops)} ops/s`,
      inputs,
      status: replicasNeeded > t.hotKeyReplicas ? 'warning' : memNodes === null || hot === null ? 'not measured' : 'ok',
      data: {nodes, memoryNodes: memNodes, keys, bytesPerKey: perKey, opsPerSecond: ops, nodeOps, hotKeyShare: hot, replicasNeeded, busiestShare, ringMaxOverAvg: sim!.spread.keys.maxOverAvg, zipf},
    },
    {
      id: 'domino',
      title: 'domino check: losing one cache node',
      answer:
        survives(f.plain) && survives(f.bounded)
          ? `holds: its successors take its load (peak ${pct(f.plain.peakLoadOverCapacity)} of a node's capacity plain, ${pct(f.bounded.peakLoadOverCapacity)} with bounded loads)`
          : `cascades: plain hashing ends with ${f.plain.survivors} of ${nodes} nodes, bounded loads (ε 0.25) with ${f.bounded.survivors} — add nodes or hot-key replicas`,
      formula: `ring simulator (cache ring): ${nodes} nodes, ${RING_SIM_KEYS.toLocaleString('en-US')} keys, Zipf s = ${fmt(zipf, 3)} (hottest key ${pct(sim!.hottestKeyShare)}), the busiest node failed, capacity = ${fmt(cap)} ops/s ÷ ${fmt(ops / nodes)} average = ${fmt(sim!.options.capacity, 3)} × average; nodes over capacity fail in rounds`,
      inputs,
      status: survives(f.plain) && survives(f.bounded) ? 'ok' : 'warning',
      data: {plain: f.plain, bounded: f.bounded, capacityMultiple: sim!.options.capacity},
    },
  ]
}

function storageAnswers(t: Targets, m: Measured, assumed: string[], notMeasured: string[]): Answer[] {
  const upo = m.unitsPerOrder ?? ASSUMED.unitsPerOrder
  if (m.unitsPerOrder === null) assumed.push(`units per order: ${ASSUMED.unitsPerOrder} (the run confirmed no order)`)
  const daily = dailyRows(t, upo)
  const per = (table: string) => m.storage?.tables[table]?.bytesPerRow ?? null
  if (!m.storage) notMeasured.push('bytes per row (stats.storage)')
  const rows = Object.entries(daily).map(([table, n]) => ({table, rowsPerDay: n, bytesPerRow: per(table), bytesPerDay: per(table) === null ? null : n * per(table)!}))
  for (const r of rows) if (r.bytesPerRow === null && m.storage) notMeasured.push(`bytes per ${r.table} row`)
  const total = rows.every((r) => r.bytesPerDay !== null) ? rows.reduce((a, r) => a + r.bytesPerDay!, 0) : null
  const follows = t.users * t.followsPerUser
  const kr = keyRetention(daily.idempotency_keys, t.idempotencyRetentionMs)
  const keyBytes = per('idempotency_keys')
  return [
    {
      id: 'storage',
      title: 'storage per day per table',
      answer: `${rows.map((r) => `${r.table} ${fmt(r.rowsPerDay)} rows${r.bytesPerDay === null ? ' (bytes not measured)' : ` ${bytes(r.bytesPerDay)}`}`).join('; ')}${total === null ? '' : `; ${bytes(total)}/day in all`}; follows ${fmt(follows)} rows${per('follows') === null ? '' : ` ${bytes(follows * per('follows')!)}`} in all`,
      formula: `orders = drops × stock ÷ units per order = ${fmt(t.dropsPerDay)} × ${fmt(t.stockPerDrop)} ÷ ${upo}; keys = orders × ${t.attemptsPerOrder} attempts; outbox = drops × 4 + orders; notifications = orders + drops × 3 × pushed followers (average followers ${fmt((t.users * t.followsPerUser) / Math.max(1, t.creators))}, none above ${fmt(t.pullThreshold)}); bytes = rows × bytes per row`,
      inputs: [
        {name: 'units per order', value: m.unitsPerOrder, source: m.unitsPerOrder === null ? 'assumed' : 'measured', from: 'stats.unitsSold ÷ stats.ordersConfirmed'},
        ...rows.map((r) => ({name: `${r.table} bytes/row`, value: r.bytesPerRow, source: 'measured' as const, from: `stats.storage.tables.${r.table}.bytesPerRow`})),
        {name: 'drops/day', value: t.dropsPerDay, source: 'target', from: 'targets.dropsPerDay'},
        {name: 'stock per drop', value: t.stockPerDrop, source: 'target', from: 'targets.stockPerDrop'},
      ],
      status: total === null ? 'not measured' : 'ok',
      data: {rows, totalBytesPerDay: total, follows},
    },
    {
      id: 'purge',
      title: 'idempotency keys: retention and purge cadence',
      answer: `purge daily (at least every ${kr.purgeEveryDays} days, or new keys land in the default partition and need batch deletes); ${fmt(kr.keysRetained)} keys retained at most${keyBytes === null ? '' : ` (${bytes(kr.keysRetained * keyBytes)})`}`,
      formula: `keys retained = ${fmt(daily.idempotency_keys)} keys/day × (⌈${t.idempotencyRetentionMs / 3_600_000} h ÷ 24 h⌉ + 1 day) = ${fmt(kr.keysRetained)}; day partitions are created ${kr.purgeEveryDays} days ahead by each purge`,
      inputs: [
        {name: 'keys/day', value: daily.idempotency_keys, source: 'target', from: 'orders/day × targets.attemptsPerOrder'},
        {name: 'retention h', value: t.idempotencyRetentionMs / 3_600_000, source: 'target', from: 'targets.idempotencyRetention'},
        {name: 'key bytes/row', value: keyBytes, source: 'measured', from: 'stats.storage.tables.idempotency_keys.bytesPerRow'},
      ],
      status: 'ok',
      data: {...kr, keysPerDay: daily.idempotency_keys, bytesRetained: keyBytes === null ? null : kr.keysRetained * keyBytes},
    },
  ]
}
