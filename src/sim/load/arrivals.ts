import {createRandom} from '../../core/random.js'

export type ArrivalKind = 'constant' | 'poisson'

/**
 * One arrival stream: intended send times (ms from the run's start) in [startMs, endMs), at a
 * rate that goes linearly from `ratePerS` at startMs to `rampTo` at endMs (default: no ramp).
 * Both processes map a unit-rate stream through the inverse of the expected count
 * Λ(τ) = r0·τ + (r1 − r0)·τ²/(2D) (τ seconds into the window of D seconds):
 * constant: the k-th send at Λ⁻¹(k), k = 0, 1, 2…; poisson: at Λ⁻¹(E_k) with E_k the sums of
 * exponential gaps of mean 1 (time-rescaling, so a ramp is a non-homogeneous Poisson process).
 * Returns null once the window is exhausted. Pure and seeded: the same seed, the same times.
 */
export function createArrivals(kind: ArrivalKind, ratePerS: number, startMs: number, endMs: number, seed: number, rampTo = ratePerS): () => number | null {
  if (!(ratePerS > 0 || rampTo > 0)) return () => null
  const a = (rampTo - ratePerS) / (2 * ((endMs - startMs) / 1000))
  // Λ⁻¹(n) in ms: the root of a·τ² + r0·τ − n = 0, in the form that also holds for a = 0
  const at = (n: number) => {
    const disc = ratePerS * ratePerS + 4 * a * n
    return disc < 0 ? Number.POSITIVE_INFINITY : startMs + (2000 * n) / (ratePerS + Math.sqrt(disc))
  }
  if (kind === 'constant') {
    let k = 0
    return () => {
      // from the count k rather than the last time, so rounding does not drift over millions of sends
      const t = k === 0 ? startMs : at(k)
      if (t >= endMs) return null
      k++
      return t
    }
  }
  const random = createRandom(seed)
  let e = 0
  return () => {
    e += -Math.log(1 - random())
    const t = at(e)
    return t >= endMs ? null : t
  }
}

/** The expected number of sends in [0, τ s) of a phase ramping from r0 to r1 over D s: Λ(τ) = r0·τ + (r1 − r0)·τ²/(2D). */
export function expectedArrivals(r0: number, r1: number, durationS: number, tauS: number): number {
  return r0 * tauS + ((r1 - r0) * tauS * tauS) / (2 * durationS)
}

/**
 * One generator's part of a scenario split across n generators (`--segment i/n`): index i of
 * count n, 1-based. Segments 1/n … n/n together send every arrival exactly once.
 */
export interface Segment {
  index: number
  count: number
}

/** The share of the load a segment sends (1 without one). */
export const segmentShare = (s: Segment | undefined): number => (s ? 1 / s.count : 1)

/**
 * Keeps one segment's arrivals of a stream: the k-th arrival (k = 0, 1, 2…) when k ≡ index − 1
 * (mod count). Round-robin over each stream's own count, so in any interval a segment sends
 * ⌊m/n⌋ or ⌈m/n⌉ of the stream's m arrivals: per second and per type within ±1 of its share.
 */
export function segmentOf(stream: () => number | null, s: Segment | undefined): () => number | null {
  if (!s || s.count === 1) return stream
  let k = 0
  return () => {
    for (let t = stream(); t !== null; t = stream()) if (k++ % s.count === s.index - 1) return t
    return null
  }
}

/** A phase as the scheduler sees it: a window and a rate per request type. */
export interface LoadPhase {
  name: string
  durationMs: number
  arrival: ArrivalKind
  /** requests/second per request type; 0 or missing sends none. */
  rates: Record<string, number | undefined>
  /** Rates at the phase's end, reached linearly from `rates` (a type missing here keeps its rate). */
  rampTo?: Record<string, number | undefined>
  /**
   * This generator's segment of the phase (`--segment i/n`): it sends only its share of every
   * type's arrivals (see segmentOf) and its target rates are that share. Default: all of them.
   */
  segment?: Segment
}

/** The request types a phase sends (a rate or a ramp target above 0). */
export function phaseTypes(p: Pick<LoadPhase, 'rates' | 'rampTo'>): string[] {
  return [...new Set([...Object.keys(p.rates), ...Object.keys(p.rampTo ?? {})])].filter((t) => (p.rates[t] ?? 0) > 0 || (p.rampTo?.[t] ?? 0) > 0)
}

/** A type's rate at the phase's start and end, req/s. */
export function rampOf(p: Pick<LoadPhase, 'rates' | 'rampTo'>, type: string): [number, number] {
  const from = p.rates[type] ?? 0
  return [from, p.rampTo?.[type] ?? from]
}

/** A type's mean target rate over the phase (the ramp's midpoint; a segment's share of it), req/s. */
export function meanRate(p: Pick<LoadPhase, 'rates' | 'rampTo' | 'segment'>, type: string): number {
  const [from, to] = rampOf(p, type)
  return ((from + to) / 2) * segmentShare(p.segment)
}

export interface Arrival {
  /** Intended send time, ms from the run's start. */
  t: number
  type: string
  phase: number
}

/** Where each phase starts, ms from the run's start. */
export function phaseStarts(phases: readonly LoadPhase[]): number[] {
  const starts: number[] = []
  let t = 0
  for (const p of phases) {
    starts.push(t)
    t += p.durationMs
  }
  return starts
}

/**
 * Every request of every phase in intended-time order: the per-type streams of the current
 * phase merged (a linear scan: there are only a handful of types). Each stream is seeded from
 * `seed`, the phase and the type, so adding a type does not shift the others' times. A phase
 * with a segment yields only that segment's arrivals of each stream (segmentOf): the same times
 * the whole schedule has, never shifted, so the segments' arrivals add up to the whole schedule.
 */
export function createSchedule(phases: readonly LoadPhase[], seed: number): () => Arrival | null {
  const starts = phaseStarts(phases)
  let phase = -1
  let types: string[] = []
  let streams: Array<() => number | null> = []
  let heads: Array<number | null> = []
  const openPhase = (i: number) => {
    const p = phases[i]
    types = phaseTypes(p)
    streams = types.map((type) => {
      const [from, to] = rampOf(p, type)
      return segmentOf(createArrivals(p.arrival, from, starts[i], starts[i] + p.durationMs, hash(seed, i, type), to), p.segment)
    })
    heads = streams.map((s) => s())
  }
  return () => {
    for (;;) {
      let best = -1
      for (let j = 0; j < heads.length; j++) if (heads[j] !== null && (best < 0 || heads[j]! < heads[best]!)) best = j
      if (best >= 0) {
        const t = heads[best]!
        heads[best] = streams[best]()
        return {t, type: types[best], phase}
      }
      if (++phase >= phases.length) return null
      openPhase(phase)
    }
  }
}

function hash(seed: number, phase: number, type: string): number {
  let h = (seed ^ 0x9e3779b9 ^ Math.imul(phase + 1, 0x85ebca6b)) >>> 0
  for (const c of type) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return h
}

/**
 * A phase's rates at its busiest moment: a ramp is linear, so that is its start (rates) or its
 * end (rates with rampTo over them), whichever sends more of `types` (default every type) in all.
 */
export function phasePeakRates(p: {rates: Record<string, number | undefined>; rampTo?: Record<string, number | undefined>}, types?: readonly string[]): Record<string, number> {
  const pick = (rates: Record<string, number | undefined>) =>
    Object.fromEntries(Object.entries(rates).flatMap(([t, r]) => ((types === undefined || types.includes(t)) && r !== undefined ? [[t, r]] : [])))
  const start = pick(p.rates)
  const end = pick({...p.rates, ...p.rampTo})
  const sum = (rates: Record<string, number>) => Object.values(rates).reduce((a, r) => a + r, 0)
  return sum(end) > sum(start) ? end : start
}
