/**
 * The measured inputs of a plan, read from one run file: CPU per 1,000 requests of each request
 * group per component, the order rate one hot row carried, the cache hit ratio, the hottest key's
 * share, units per order and bytes per row. Every figure says where it came from; a figure the
 * run does not hold is null ("not measured"), never made up.
 */
import type {StorageReport} from '../../core/audit/storage.js'
import {intervalStartS, runStartS, type CpuReport} from '../metrics/cpu.js'
import type {RunResult} from '../metrics/result.js'
import {REQUEST_GROUPS} from '../scenario/schema.js'

/** The request groups a plan sizes: the scenario's read and write groups, and orders. */
export const PLAN_GROUPS: Record<string, readonly string[]> = {read: REQUEST_GROUPS.read, order: ['order'], write: REQUEST_GROUPS.write}
export type PlanGroup = 'read' | 'order' | 'write'
export const GROUP_NAMES: PlanGroup[] = ['read', 'order', 'write']

/** The run's CPU components (src/sim/metrics/cpu.ts names) by the platform part they are. */
export const COMPONENTS = {serve: 'server', postgres: 'database', redis: 'redis', generator: 'generator'} as const
export type Component = keyof typeof COMPONENTS

/** CPU-seconds per 1,000 requests of each group; null: not measured. */
export type GroupCosts = Record<PlanGroup, number | null>

export interface CpuCosts {
  /** Per component (serve, postgres, redis, generator); absent or null costs: not measured. */
  components: Partial<Record<Component, GroupCosts | null>>
  /**
   * How the run's CPU was split over groups: `fit` — least squares over the run's intervals
   * (cpu-seconds = Σ cost × requests), which needs the mix to vary between intervals; `mix` —
   * one cost for every request (the run's mix could not separate them).
   */
  method: 'fit' | 'mix'
  /** Intervals used by the fit. */
  intervals: number
  /** Why a component is not measured (from the CPU report). */
  notes: Record<string, string>
}

/**
 * A component's costs with every group `rates` sends but the run did not cost filled with the mean
 * of its costed groups (noted in `assumed`), so such requests are never priced at zero.
 */
export function completeGroupCosts(part: string, costs: GroupCosts, rates: Record<PlanGroup, number>, assumed: string[]): GroupCosts {
  const known = GROUP_NAMES.filter((g) => costs[g] !== null).map((g) => costs[g]!)
  const out = {...costs}
  for (const g of GROUP_NAMES) {
    if (rates[g] > 0 && costs[g] === null && known.length) {
      out[g] = round4(known.reduce((a, b) => a + b, 0) / known.length)
      assumed.push(`${part} CPU per 1,000 ${g} requests: the measured run sent too few; the mean of its other groups (${out[g]} CPU-s) is used`)
    }
  }
  return out
}

/** Requests (completed) per group over the run. */
export type GroupCounts = Record<PlanGroup, number>

/** Requests completed in each second of the run, per group. */
function perSecond(run: RunResult): Array<{t: number} & GroupCounts> {
  return run.series.map((p) => {
    const row = {t: p.t, read: 0, order: 0, write: 0}
    for (const g of GROUP_NAMES) for (const type of PLAN_GROUPS[g]) row[g] += p.types[type]?.done ?? 0
    return row
  })
}

export function groupTotals(run: RunResult): GroupCounts {
  const out: GroupCounts = {read: 0, order: 0, write: 0}
  for (const p of run.phases) for (const g of GROUP_NAMES) for (const type of PLAN_GROUPS[g]) out[g] += p.requests[type]?.completed ?? 0
  return out
}

/**
 * Requests per group in each CPU interval: the run's seconds overlapping it, weighted by the
 * overlap. The sampler's clock starts at cpu.startedAt, the run's seconds at run.startedAt.
 */
export function requestsPerInterval(run: RunResult, cpu: CpuReport): GroupCounts[] {
  const runStart = runStartS(cpu, run.startedAt)
  const seconds = perSecond(run)
  return cpu.t.map((end, i) => {
    const from = intervalStartS(cpu, i) - runStart
    const to = end - runStart
    const out: GroupCounts = {read: 0, order: 0, write: 0}
    for (const s of seconds) {
      const overlap = Math.max(0, Math.min(to, s.t + 1) - Math.max(from, s.t))
      if (overlap > 0) for (const g of GROUP_NAMES) out[g] += s[g] * overlap
    }
    return out
  })
}

/** Smallest pivot (of the normalised normal equations) a fit accepts: below it the groups are collinear. */
const MIN_PIVOT = 0.05

/**
 * Least squares without intercept, y ≈ X·b, on columns scaled to unit length; null when the
 * columns are (nearly) collinear or a coefficient comes out negative (the mix cannot separate them).
 * @example fitCosts([[1, 0], [0, 1], [1, 1]], [2, 3, 5]) → [2, 3]
 */
export function fitCosts(x: number[][], y: number[]): number[] | null {
  const k = x[0]?.length ?? 0
  if (k === 0 || x.length < k) return null
  const norms = Array.from({length: k}, (_, j) => Math.sqrt(x.reduce((s, r) => s + r[j] ** 2, 0)))
  if (norms.some((n) => n === 0)) return null
  // A = XᵀX and c = Xᵀy on scaled columns
  const a = Array.from({length: k}, (_, i) => Array.from({length: k}, (_, j) => x.reduce((s, r) => s + (r[i] / norms[i]) * (r[j] / norms[j]), 0)))
  const c = Array.from({length: k}, (_, i) => x.reduce((s, r, n) => s + (r[i] / norms[i]) * y[n], 0))
  // Gaussian elimination with partial pivoting
  for (let col = 0; col < k; col++) {
    let p = col
    for (let r = col + 1; r < k; r++) if (Math.abs(a[r][col]) > Math.abs(a[p][col])) p = r
    if (Math.abs(a[p][col]) < MIN_PIVOT) return null
    ;[a[col], a[p]] = [a[p], a[col]]
    ;[c[col], c[p]] = [c[p], c[col]]
    for (let r = col + 1; r < k; r++) {
      const f = a[r][col] / a[col][col]
      for (let j = col; j < k; j++) a[r][j] -= f * a[col][j]
      c[r] -= f * c[col]
    }
  }
  const b = new Array<number>(k).fill(0)
  for (let i = k - 1; i >= 0; i--) {
    let s = c[i]
    for (let j = i + 1; j < k; j++) s -= a[i][j] * b[j]
    b[i] = s / a[i][i]
  }
  const out = b.map((v, i) => v / norms[i])
  return out.every((v) => v >= 0) ? out : null
}

/** Groups with at least this many requests in the run are costed; fewer say nothing. */
export const MIN_GROUP_REQUESTS = 50

/**
 * CPU-seconds per 1,000 requests of each group per component. Each interval's CPU-seconds are
 * fitted as Σ cost_g × requests_g over the groups the run sent; when the mix does not vary enough
 * to separate the groups, every request is charged the mix's average (method `mix`).
 */
export function cpuCosts(run: RunResult, cpu: CpuReport): CpuCosts {
  const counts = requestsPerInterval(run, cpu)
  const totals = groupTotals(run)
  const groups = GROUP_NAMES.filter((g) => totals[g] >= MIN_GROUP_REQUESTS)
  const all = groups.reduce((s, g) => s + totals[g], 0)
  const notes: Record<string, string> = {}
  const components: CpuCosts['components'] = {}
  const fits = new Map<Component, number[] | null>()
  for (const [part, name] of Object.entries(COMPONENTS) as Array<[Component, string]>) {
    const c = cpu.components[name]
    if (!c) continue
    if (c.cpuSeconds === null || c.series === null) {
      components[part] = null
      notes[part] = c.note ?? 'not measured'
      continue
    }
    const y = c.series.map((cores, i) => cores * ((cpu.t[i] - intervalStartS(cpu, i)) || cpu.intervalMs / 1000))
    fits.set(part, groups.length ? fitCosts(counts.map((r) => groups.map((g) => r[g])), y) : null)
  }
  // one method for every component, so their costs add up over the same split
  const method = fits.size > 0 && [...fits.values()].every((f) => f !== null) ? 'fit' : 'mix'
  for (const [part, fit] of fits) {
    const c = cpu.components[COMPONENTS[part]]
    const costs: GroupCosts = {read: null, order: null, write: null}
    groups.forEach((g, i) => (costs[g] = method === 'fit' ? round4(fit![i] * 1000) : all > 0 ? round4((c.cpuSeconds! / all) * 1000) : null))
    components[part] = costs
  }
  return {components, method, intervals: counts.length, notes}
}

/** One hot row's order rate, from the run's sale. */
export interface HotRow {
  /** The strategy the run used (stats.strategy). */
  strategy: string | null
  /** Orders confirmed ÷ seconds from drop live to sold out (or the run's end): what the row carried. */
  soldRate: number | null
  /** 1000 ÷ the worst per-second p99 service time of orders while selling: an order holds the row at most about that long. */
  serviceBound: number | null
  /** The larger of the two: a lower bound of what one row carries (the run may not have pushed it to its limit). */
  perRow: number | null
  /** The most order attempts/s any phase of the sale achieved: what the row was offered. */
  offered: number | null
  /** The run's phases that overlapped the sale. */
  phases: string[]
  note: string
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/**
 * The orders/s one stock row carried. Both figures are lower bounds of its capacity: the sale
 * rate is what the run offered and got, and every order holds the row's lock for at most its
 * whole service time. Only the `row` strategy has one hot row; others report per drop.
 */
export function hotRowRate(run: RunResult): HotRow {
  const s = run.stats
  const strategy = typeof s.strategy === 'string' ? s.strategy : null
  const live = num(s.dropLiveAtMs)
  const confirmed = num(s.ordersConfirmed)
  if (live === null || confirmed === null) return {strategy, soldRate: null, serviceBound: null, perRow: null, offered: null, phases: [], note: 'the run file has no stats.dropLiveAtMs / stats.ordersConfirmed (not a drop scenario run)'}
  const soldOut = num(s.soldOutAtMs)
  const end = soldOut ?? run.durationMs
  const sellingS = (end - live) / 1000
  const soldRate = sellingS > 0 ? round1(confirmed / sellingS) : null
  const selling = run.phases.filter((p) => p.startMs < end && p.startMs + p.durationMs > live && p.requests.order?.completed)
  // the seconds of the sale: their worst p99 service time of orders bounds how long one order holds the row
  const seconds = run.series.filter((p) => p.t + 1 > live / 1000 && p.t < end / 1000 && (p.types.order?.done ?? 0) > 0)
  const holdMs = seconds.length ? Math.max(...seconds.map((p) => p.types.order.serviceP99)) : 0
  const serviceBound = holdMs > 0 ? round1(1000 / holdMs) : null
  const perRow = soldRate === null && serviceBound === null ? null : Math.max(soldRate ?? 0, serviceBound ?? 0)
  const what = strategy === 'row' ? 'one stock row' : `one drop (strategy ${strategy ?? 'unknown'}; its rows are not counted in the run file)`
  return {
    strategy,
    soldRate,
    serviceBound,
    perRow,
    offered: selling.length ? Math.max(...selling.map((p) => p.requests.order.achievedRate)) : null,
    phases: selling.map((p) => p.name),
    note: `${what} carried ${soldRate ?? '?'} orders/s while selling (${confirmed} orders in ${sellingS.toFixed(2)} s${soldOut === null ? ', not sold out' : ''}); orders' p99 service time there, ${holdMs.toFixed(1)} ms, bounds one order's hold of the lock`,
  }
}

export interface Measured {
  run: {name: string; scale: number; startedAt: string; durationS: number}
  cpu: CpuCosts | null
  /** Why cpu is null. */
  cpuMissing: string | null
  /** Request rates of the run (completed per second over the run), per group. */
  mix: GroupCounts
  hotRow: HotRow
  /** stats.cacheHitRatio; null when the run did not record it. */
  cacheHitRatio: number | null
  /** browse_drop share of reads: every browse_drop of a drop run reads the one drop's key. */
  hotKeyShare: number | null
  /** stats.unitsSold ÷ stats.ordersConfirmed. */
  unitsPerOrder: number | null
  storage: StorageReport | null
}

/** Everything a plan takes from a run file. */
export function measuredInputs(run: RunResult): Measured {
  const cpu = (run.stats.cpu ?? null) as CpuReport | null
  const durationS = run.phases.reduce((a, p) => a + p.durationMs, 0) / 1000
  const totals = groupTotals(run)
  const mix: GroupCounts = {read: 0, order: 0, write: 0}
  for (const g of GROUP_NAMES) mix[g] = durationS > 0 ? round1(totals[g] / durationS) : 0
  const browseDrop = run.phases.reduce((a, p) => a + (p.requests.browse_drop?.completed ?? 0), 0)
  const sold = num(run.stats.unitsSold)
  const orders = num(run.stats.ordersConfirmed)
  const valid = cpu && typeof cpu === 'object' && Array.isArray(cpu.t) && cpu.components && typeof cpu.components === 'object'
  return {
    run: {name: run.scenario.name, scale: run.scenario.scale, startedAt: run.startedAt, durationS},
    cpu: valid ? cpuCosts(run, cpu) : null,
    cpuMissing: valid ? null : cpu ? 'stats.cpu is not a CPU report' : 'the run file has no stats.cpu',
    mix,
    hotRow: hotRowRate(run),
    cacheHitRatio: num(run.stats.cacheHitRatio),
    hotKeyShare: totals.read > 0 && browseDrop > 0 ? round4(browseDrop / totals.read) : null,
    unitsPerOrder: sold !== null && orders ? round4(sold / orders) : null,
    storage: isStorage(run.stats.storage) ? run.stats.storage : null,
  }
}

function isStorage(v: unknown): v is StorageReport {
  return typeof v === 'object' && v !== null && typeof (v as StorageReport).tables === 'object' && (v as StorageReport).tables !== null
}

const round1 = (v: number) => Math.round(v * 10) / 10
const round4 = (v: number) => Math.round(v * 10_000) / 10_000
