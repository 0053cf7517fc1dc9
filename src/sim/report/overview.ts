import {LatencyHistogram} from '../../core/histogram.js'
import type {RunResult, SeriesPoint, SeriesTypePoint} from '../metrics/result.js'
import {REQUEST_GROUPS} from '../scenario/schema.js'

/**
 * One second of the overview chart, the same for the HTML report (from result.series) and the
 * live dashboard (from each 'second' event): offered vs achieved rate, p50/p99 of reads and of
 * orders, errors, answers by status, stock. A latency is null in a second with no completed
 * request of its kind (a gap, not a zero).
 */
export interface OverviewPoint {
  t: number
  phase: string
  /** Offered: the scenario's target rate this second, req/s. */
  offered: number
  /** Responses completed this second. */
  achieved: number
  sent: number
  readP50: number | null
  readP99: number | null
  orderP50: number | null
  orderP99: number | null
  errors: number
  /** Answers by HTTP status this second, all request types (empty in older run files). */
  statuses: Record<string, number>
  /** Units left, when the run knows. */
  stock: number | null
}

/** The request types the overview plots as "reads" and as "orders". */
export const OVERVIEW_GROUPS = {reads: REQUEST_GROUPS.read, orders: ['order']} as const

/**
 * p50 and p99 of a group of request types in one second: the exact merge of their per-second
 * histograms. A run file without them (older versions) gives the worst member's figure instead,
 * an upper bound.
 */
function groupLatency(point: SeriesPoint, members: readonly string[]): {p50: number | null; p99: number | null} {
  const parts = members.map((m) => point.types[m]).filter((p): p is SeriesTypePoint => Boolean(p?.done))
  if (!parts.length) return {p50: null, p99: null}
  if (parts.length === 1) return {p50: parts[0].p50, p99: parts[0].p99}
  if (parts.every((p) => p.histograms)) {
    const h = LatencyHistogram.coarse()
    for (const p of parts) h.add(LatencyHistogram.decode(p.histograms!.corrected))
    return {p50: round3(h.percentileMs(50)), p99: round3(h.percentileMs(99))}
  }
  return {p50: Math.max(...parts.map((p) => p.p50)), p99: Math.max(...parts.map((p) => p.p99))}
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

export function overviewPoint(point: SeriesPoint): OverviewPoint {
  const all = point.types.all
  const reads = groupLatency(point, OVERVIEW_GROUPS.reads)
  const orders = groupLatency(point, OVERVIEW_GROUPS.orders)
  return {
    t: point.t,
    phase: point.phase,
    offered: point.target,
    achieved: all?.done ?? 0,
    sent: all?.sent ?? 0,
    readP50: reads.p50,
    readP99: reads.p99,
    orderP50: orders.p50,
    orderP99: orders.p99,
    errors: all?.errors ?? 0,
    statuses: all?.statuses ?? {},
    stock: point.stock ?? null,
  }
}

/** Markers drawn across the overview: drop open, sold out, faults (each fault's start, and its end when it has one), seconds of the run. */
export interface OverviewMarker {
  t: number
  label: string
  kind: 'drop' | 'soldout' | 'fault'
}

export function overviewMarkers(result: Pick<RunResult, 'stats' | 'faults'>): OverviewMarker[] {
  const out: OverviewMarker[] = []
  const at = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v / 1000 : null)
  const open = at(result.stats.dropLiveAtMs)
  if (open !== null) out.push({t: open, label: 'drop opens', kind: 'drop'})
  const soldOut = at(result.stats.soldOutAtMs)
  if (soldOut !== null) out.push({t: soldOut, label: 'sold out', kind: 'soldout'})
  for (const f of result.faults ?? []) {
    out.push({t: f.atMs / 1000, label: f.kind, kind: 'fault'})
    if (f.endMs !== undefined) out.push({t: f.endMs / 1000, label: `${f.kind} ends`, kind: 'fault'})
  }
  return out.sort((a, b) => a.t - b.t)
}

/**
 * Stock over time for the overview: the per-second `stock` of the series where the run recorded
 * it, else the sampled `stats.stockSeries` ([{t, remaining}] or [[t, remaining]]), mapped to the
 * seconds of the series (the last sample at or before each second).
 */
export function stockBySecond(result: RunResult): Array<number | null> {
  if (result.series.some((p) => p.stock !== undefined)) return result.series.map((p) => p.stock ?? null)
  const raw = result.stats.stockSeries
  if (!Array.isArray(raw) || raw.length === 0) return result.series.map(() => null)
  const samples = raw
    .map((p) => (Array.isArray(p) ? {t: Number(p[0]), remaining: Number(p[1])} : {t: Number((p as {t: unknown}).t), remaining: Number((p as {remaining: unknown}).remaining)}))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.remaining))
    .sort((a, b) => a.t - b.t)
  return result.series.map((p) => {
    let v: number | null = null
    for (const s of samples) if (s.t <= p.t + 1) v = s.remaining
    return v
  })
}

/** The overview of a finished run, one point per second of its series. */
export function overviewOf(result: RunResult): OverviewPoint[] {
  const stock = stockBySecond(result)
  return result.series.map((p, i) => ({...overviewPoint(p), stock: stock[i]}))
}

