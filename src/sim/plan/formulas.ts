/**
 * The plan's formulas, pure: each takes measured costs and targets and returns numbers. The
 * sentences that show them with their inputs are written in plan.ts.
 */
import {PARTITION_DAYS_AHEAD} from '../../core/db/migrate.js'
import type {Component, GroupCosts, PlanGroup} from './inputs.js'

export type GroupRates = Record<PlanGroup, number>

/** Cores a component spends at these rates: Σ cost_g × rate_g ÷ 1000 (costs in CPU-seconds per 1,000 requests). */
export function coreDemand(costs: GroupCosts, rates: GroupRates): number {
  let cores = 0
  for (const g of Object.keys(rates) as PlanGroup[]) if (rates[g] > 0) cores += ((costs[g] ?? 0) * rates[g]) / 1000
  return cores
}

/** Cores to provision so the demand leaves `headroom` free: demand ÷ (1 − headroom). */
export const withHeadroom = (demand: number, headroom: number): number => demand / (1 - headroom)

export interface ServeSizing {
  coresNeeded: number
  /** One Node.js process per core (serve --workers on node:cluster). */
  processes: number
  /** Machines of coresPerServer, plus one so a single stateless instance may fail without loss. */
  servers: number
}

/** serve: ⌈demand ÷ (1 − headroom)⌉ processes on ⌈processes ÷ coresPerServer⌉ + 1 machines. */
export function sizeServe(demand: number, headroom: number, coresPerServer: number): ServeSizing {
  const coresNeeded = withHeadroom(demand, headroom)
  const processes = Math.max(1, Math.ceil(coresNeeded))
  return {coresNeeded, processes, servers: Math.ceil(processes / coresPerServer) + 1}
}

export interface PrimarySizing {
  coresNeeded: number
  cores: number
  /** False when one primary of primaryMaxCores cannot carry it (shard or offload reads). */
  fits: boolean
}

/** Postgres primary: ⌈demand ÷ (1 − headroom)⌉ cores, which must fit one machine. */
export function sizePrimary(demand: number, headroom: number, primaryMaxCores: number): PrimarySizing {
  const coresNeeded = withHeadroom(demand, headroom)
  const cores = Math.max(1, Math.ceil(coresNeeded))
  return {coresNeeded, cores, fits: cores <= primaryMaxCores}
}

export interface HotRowSizing {
  /** Order attempts/s the stock rows must carry: target ÷ (1 − headroom). */
  needed: number
  /** True when one row (perRow orders/s) is below what is needed. */
  capped: boolean
  /** ⌈needed ÷ perRow⌉ stock buckets (rows) that carry it. */
  buckets: number
}

/** One hot row carries perRow orders/s; buckets = ⌈orders ÷ (1 − headroom) ÷ perRow⌉. */
export function sizeHotRow(orders: number, perRow: number, headroom: number): HotRowSizing {
  const needed = withHeadroom(orders, headroom)
  return {needed, capped: needed > perRow, buckets: Math.max(1, Math.ceil(needed / perRow))}
}

/**
 * Zipf exponent s whose hottest key takes `share` of requests over n keys (1 ÷ Σ k^-s = share),
 * by bisection; 0 (uniform) when the share is no more than 1/n.
 * @example zipfForHottestShare(2, 2 / 3) → 1 (1 ÷ (1 + 1/2) = 2/3)
 */
export function zipfForHottestShare(n: number, share: number): number {
  if (share <= 1 / n) return 0
  const hottest = (s: number) => {
    let h = 0
    for (let k = 1; k <= n; k++) h += k ** -s
    return 1 / h
  }
  let lo = 0
  let hi = 1
  // the share grows with s toward 1: widen until it passes the target (s = 64 is "all on one key")
  while (hottest(hi) < share && hi < 64) hi *= 2
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2
    if (hottest(mid) < share) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/**
 * The busiest cache node's share of requests: the hot key's share split over its replicas, plus
 * the other keys' share spread over n nodes with the ring's max/avg imbalance.
 * @example hottestNodeShare(0.3, 3, 4, 1.1) → 0.1 + 0.7 × 1.1 / 4 = 0.2925
 */
export function hottestNodeShare(hotKeyShare: number, replicas: number, nodes: number, maxOverAvg: number): number {
  return hotKeyShare / Math.min(replicas, nodes) + ((1 - hotKeyShare) * maxOverAvg) / nodes
}

/** Nodes for the key space: ⌈keys × bytes per key ÷ (node memory × fill)⌉. */
export function cacheNodesForMemory(keys: number, bytesPerKey: number, nodeBytes: number, fill: number): number {
  return Math.max(1, Math.ceil((keys * bytesPerKey) / (nodeBytes * fill)))
}

export interface FanoutSizing {
  /** Rows/s into notifications to meet the deadline: followers ÷ deadline. */
  rowsPerSecond: number
  /** ⌈followers ÷ (rows/s per worker × deadline s)⌉. */
  workers: number
  /** followers × bytes per notification row (one event). */
  bytesPerEvent: number | null
}

/** Push fan-out of one event to every follower within the deadline. */
export function sizePushFanout(followers: number, deadlineS: number, rowsPerWorker: number, bytesPerRow: number | null): FanoutSizing {
  return {
    rowsPerSecond: followers / deadlineS,
    workers: Math.max(1, Math.ceil(followers / (rowsPerWorker * deadlineS))),
    bytesPerEvent: bytesPerRow === null ? null : followers * bytesPerRow,
  }
}

/** Follower events of a drop that are pushed: drop started, stock low, sold out. */
export const PUSHED_EVENTS_PER_DROP = 3
/** Outbox rows per drop besides order confirmations: drop started, stock low, sold out, drop ended. */
export const OUTBOX_EVENTS_PER_DROP = 4

export interface DailyRows {
  orders: number
  idempotency_keys: number
  outbox: number
  notifications: number
}

/**
 * Rows written per day: orders = drops × stock ÷ units per order; a key per attempt; the outbox
 * gets each drop's events and each order's confirmation; notifications get one per order and one
 * per pushed follower per follower event (a creator above the pull threshold pushes none).
 */
export function dailyRows(t: {dropsPerDay: number; stockPerDrop: number; attemptsPerOrder: number; users: number; followsPerUser: number; creators: number; pullThreshold: number}, unitsPerOrder: number): DailyRows {
  const orders = (t.dropsPerDay * t.stockPerDrop) / unitsPerOrder
  const avgFollowers = t.creators > 0 ? (t.users * t.followsPerUser) / t.creators : 0
  const pushed = avgFollowers > t.pullThreshold ? 0 : avgFollowers
  return {
    orders,
    idempotency_keys: orders * t.attemptsPerOrder,
    outbox: t.dropsPerDay * OUTBOX_EVENTS_PER_DROP + orders,
    notifications: orders + t.dropsPerDay * PUSHED_EVENTS_PER_DROP * pushed,
  }
}

export interface KeyRetention {
  /** Keys kept at most: a day's partition goes once the whole day is past the retention. */
  keysRetained: number
  /** Run the purge at least this often (days), or new days' keys land in the default partition. */
  purgeEveryDays: number
  /** Day partitions dropped per purge run at that cadence. */
  partitionsPerPurge: number
}

/** Idempotency keys retained = keys/day × (⌈retention days⌉ + 1); purge daily, at most every PARTITION_DAYS_AHEAD days. */
export function keyRetention(keysPerDay: number, retentionMs: number): KeyRetention {
  const days = Math.ceil(retentionMs / 86_400_000)
  return {keysRetained: keysPerDay * (days + 1), purgeEveryDays: PARTITION_DAYS_AHEAD, partitionsPerPurge: PARTITION_DAYS_AHEAD}
}

/** CPU-seconds per 1,000 requests of each group, per component (null: not measured). */
export type ComponentCosts = Partial<Record<Component | string, GroupCosts | null>>

export interface CapacityPrediction {
  /** × the mix's rates at which the first CPU runs out. */
  scale: number
  /** Σ of the mix's rates × scale. */
  reqPerSec: number
  /** The component that runs out first; `machine` when all share one machine's cores. */
  limitedBy: string
  /** Cores each component spends at ×1 (not measured ones left out). */
  demand: Record<string, number>
}

/**
 * The highest rate scale of `mix` the CPU carries at 100%: with one machine's cores shared by all
 * components, scale = cores ÷ Σ demand (limitedBy `machine`); with cores per component, the least
 * cores_c ÷ demand_c. A component with no measured cost is left out (it cannot limit what is unknown).
 * @example predictCapacity({server: {read: 1, order: 4, write: null}}, {read: 100, order: 50, write: 0}, 2) → scale 2 / 0.3 ≈ 6.67
 */
export function predictCapacity(costs: ComponentCosts, mix: GroupRates, cores: number | Record<string, number>): CapacityPrediction {
  const demand: Record<string, number> = {}
  for (const [name, c] of Object.entries(costs)) if (c) demand[name] = coreDemand(c, mix)
  const total = Object.values(demand).reduce((a, b) => a + b, 0)
  const rate = Object.values(mix).reduce((a, b) => a + b, 0)
  if (typeof cores === 'number') {
    const scale = total > 0 ? cores / total : Infinity
    return {scale, reqPerSec: scale * rate, limitedBy: 'machine', demand}
  }
  let scale = Infinity
  let limitedBy = 'none'
  for (const [name, d] of Object.entries(demand)) {
    const s = d > 0 ? (cores[name] ?? 0) / d : Infinity
    if (s < scale) [scale, limitedBy] = [s, name]
  }
  return {scale, reqPerSec: scale * rate, limitedBy, demand}
}

/** Utilisation at ×1 of each component → the first to reach 100% as load grows, and at what load. */
export function firstToBreak(utilisation: Record<string, number>): {component: string; atLoad: number} | null {
  let best: {component: string; atLoad: number} | null = null
  for (const [component, u] of Object.entries(utilisation)) {
    if (!(u > 0)) continue
    const atLoad = 1 / u
    if (!best || atLoad < best.atLoad) best = {component, atLoad}
  }
  return best
}
