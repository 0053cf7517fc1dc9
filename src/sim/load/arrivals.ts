import {createRandom} from '../../core/random.js'

export type ArrivalKind = 'constant' | 'poisson'

/**
 * One arrival stream: intended send times (ms from the run's start) in [startMs, endMs).
 * constant: startMs, startMs + 1000/rate, …; poisson: exponential gaps of mean 1000/rate.
 * Returns null once the window is exhausted. Pure and seeded: the same seed, the same times.
 */
export function createArrivals(kind: ArrivalKind, ratePerS: number, startMs: number, endMs: number, seed: number): () => number | null {
  if (!(ratePerS > 0)) return () => null
  const gap = 1000 / ratePerS
  if (kind === 'constant') {
    let k = 0
    return () => {
      // multiply rather than add so rounding does not drift over millions of sends
      const t = startMs + k * gap
      if (t >= endMs) return null
      k++
      return t
    }
  }
  const random = createRandom(seed)
  let t = startMs
  return () => {
    t += -Math.log(1 - random()) * gap
    return t >= endMs ? null : t
  }
}

/** A phase as the scheduler sees it: a window and a rate per request type. */
export interface LoadPhase {
  name: string
  durationMs: number
  arrival: ArrivalKind
  /** requests/second per request type; 0 or missing sends none. */
  rates: Record<string, number | undefined>
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
 * `seed`, the phase and the type, so adding a type does not shift the others' times.
 */
export function createSchedule(phases: readonly LoadPhase[], seed: number): () => Arrival | null {
  const starts = phaseStarts(phases)
  let phase = -1
  let types: string[] = []
  let streams: Array<() => number | null> = []
  let heads: Array<number | null> = []
  const openPhase = (i: number) => {
    const p = phases[i]
    types = Object.keys(p.rates).filter((k) => (p.rates[k] ?? 0) > 0)
    streams = types.map((type) => createArrivals(p.arrival, p.rates[type]!, starts[i], starts[i] + p.durationMs, hash(seed, i, type)))
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
