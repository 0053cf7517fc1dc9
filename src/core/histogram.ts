import * as hdr from 'hdr-histogram-js'

/** Highest latency tracked: one hour in microseconds; longer values are clamped to it. */
const HIGHEST_US = 3_600_000_000

/**
 * A latency histogram in microseconds (HDR, 3 significant digits) that reports milliseconds,
 * encodes to a compact string for run files, and merges exactly (counts add).
 */
export class LatencyHistogram {
  private readonly h: hdr.Histogram

  constructor(from?: hdr.Histogram) {
    this.h = from ?? hdr.build({lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, useWebAssembly: false})
  }

  /**
   * A cheaper histogram (2 significant digits, ~1% value error) for short-lived uses such as
   * one second of a time series: a tenth of the memory, faster percentiles. Merges only with
   * other coarse histograms.
   */
  static coarse(): LatencyHistogram {
    return new LatencyHistogram(hdr.build({lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 2, useWebAssembly: false}))
  }

  /** Records one latency given in milliseconds (fractions kept to the microsecond). */
  recordMs(ms: number): void {
    this.h.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000))))
  }

  get count(): number {
    return this.h.totalCount
  }

  /** The latency at a percentile (0–100) in ms; 0 when empty. */
  percentileMs(p: number): number {
    return this.count === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000
  }

  /** The largest value's bucket bound, so a histogram and its decoded copy agree exactly. */
  get maxMs(): number {
    return this.percentileMs(100)
  }

  get meanMs(): number {
    return this.count === 0 ? 0 : this.h.mean / 1000
  }

  /** p50/p90/p95/p99/max in ms, the shape reports print. */
  summary(): LatencySummary {
    return {
      count: this.count,
      p50: this.percentileMs(50),
      p90: this.percentileMs(90),
      p95: this.percentileMs(95),
      p99: this.percentileMs(99),
      max: this.maxMs,
      mean: this.meanMs,
    }
  }

  /** Adds another histogram's counts into this one (exact merge across generators). */
  add(other: LatencyHistogram): void {
    this.h.add(other.h)
  }

  /** The percentile spectrum: [percentile, ms] points for charts. */
  spectrum(): Array<[number, number]> {
    const points: Array<[number, number]> = []
    for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]) points.push([p, this.percentileMs(p)])
    return points
  }

  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.h)
  }

  static decode(encoded: string): LatencyHistogram {
    return new LatencyHistogram(hdr.decodeFromCompressedBase64(encoded, 32, false) as hdr.Histogram)
  }
}

export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p95: number
  p99: number
  max: number
  mean: number
}
