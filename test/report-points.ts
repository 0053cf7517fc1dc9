/**
 * Seconds of a run as the generator closes them (SeriesPoint with coarse HDR histograms), for
 * the streaming, remote-write and dashboard tests: latencies and statuses in, one point out.
 */
import {LatencyHistogram} from '../src/core/histogram.js'
import type {SeriesPoint, SeriesTypePoint} from '../src/sim/metrics/result.js'

export interface TypeSecond {
  /** Corrected latencies (ms) of the responses completed this second; service time is 60% of each. */
  latencies: number[]
  /** The HTTP status of each response, in the same order; default all 200. */
  statuses?: number[]
}

function typePoint(s: TypeSecond): SeriesTypePoint & {corrected: LatencyHistogram; service: LatencyHistogram} {
  const corrected = LatencyHistogram.coarse()
  const service = LatencyHistogram.coarse()
  const statuses: Record<string, number> = {}
  let errors = 0
  s.latencies.forEach((ms, i) => {
    corrected.recordMs(ms)
    service.recordMs(ms * 0.6)
    const status = s.statuses?.[i] ?? 200
    statuses[status] = (statuses[status] ?? 0) + 1
    if (status >= 400) errors++
  })
  return {
    sent: s.latencies.length,
    done: s.latencies.length,
    errors,
    p50: corrected.percentileMs(50),
    p99: corrected.percentileMs(99),
    serviceP99: service.percentileMs(99),
    histograms: {corrected: corrected.encode(), service: service.encode()},
    statuses,
    corrected,
    service,
  }
}

/** One closed second: per type, plus `all` merged from them. */
export function secondPoint(t: number, phase: string, target: number, types: Record<string, TypeSecond>, stock?: number): SeriesPoint {
  const out: Record<string, SeriesTypePoint> = {}
  const all = {latencies: [] as number[], statuses: [] as number[]}
  for (const [type, s] of Object.entries(types)) {
    const {corrected: _c, service: _s, ...p} = typePoint(s)
    out[type] = p
    all.latencies.push(...s.latencies)
    all.statuses.push(...s.latencies.map((_, i) => s.statuses?.[i] ?? 200))
  }
  const {corrected: _c, service: _s, ...a} = typePoint(all)
  out.all = a
  return {t, phase, target, types: out, ...(stock !== undefined ? {stock} : {})}
}

/** n latencies spread evenly from lo to hi ms. */
export const spread = (n: number, lo: number, hi: number) => Array.from({length: n}, (_, i) => lo + ((hi - lo) * i) / Math.max(1, n - 1))
