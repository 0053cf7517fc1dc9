/**
 * The capacity search, with no I/O: which rate scales to try, given a judge that runs one step
 * (the scenario at that scale of its rates, open model) and says pass, fail or void.
 *
 * The ladder is 1, 1.5, 2, 3, 4, 6, 8, 12, 16, … × start (powers of two and 1.5 × powers of two,
 * the "1-1.5-2-3" preferred numbers): each rung is at most 1.5× the last, so the first fail is
 * bracketed within 50% and bisection needs at most three more steps to reach 10%, while a
 * target 100× past the start is still reached in 13 rungs. Below a failing start the same ladder
 * descends (0.75, 0.5, 0.375, 0.25, …). Bisection halves the bracket geometrically (√(lo·hi)):
 * rates scale multiplicatively, and the tolerance is a ratio.
 *
 * A void step (the generator could not keep its schedule) says nothing about the target: the
 * search stops there, and the capacity is "at least" the last pass, limited by the generator.
 */

export type StepVerdict = 'pass' | 'fail' | 'void' | 'invariant'

/** What the judge says of one step: pass/fail on the scenario's thresholds, void (exit 100), or an invariant violated (exit 98). */
export interface StepOutcome<T = unknown> {
  verdict: StepVerdict
  /** Why, in a few words (failed thresholds, the void reason). */
  reason?: string
  /** Anything the caller keeps per step (the run's summary, its CPU report). */
  data: T
}

/** Why a step ran: the start, a rung of the ladder up or down, the closed-model hint, or bisection. */
export type StepWhy = 'start' | 'climb' | 'hint' | 'descend' | 'bisect'

export interface SearchStep<T = unknown> {
  /** 0-based, in the order run. */
  index: number
  scale: number
  why: StepWhy
  verdict: StepVerdict
  reason?: string
  data: T
}

/**
 * Why the search ended:
 *   target     a fail was bracketed within tolerance (or nothing passed down to minScale)
 *   generator  a step was void: the generator's limit, not the target's
 *   max-scale  maxScale passed
 *   invariant  a step violated an invariant: a correctness failure, not a capacity
 *   steps      maxSteps ran out before the bracket was narrow enough
 *   aborted    the signal fired
 */
export type CapacityLimit = 'target' | 'generator' | 'max-scale' | 'invariant' | 'steps' | 'aborted'

export interface CapacitySearch<T = unknown> {
  /** The highest scale that passed; null when none did. */
  capacity: number | null
  /** The lowest scale that failed on the target's thresholds; null when none did. */
  firstFail: number | null
  limit: CapacityLimit
  /** The capacity is only a lower bound (limit generator, max-scale, steps or aborted, with no fail above it). */
  atLeast: boolean
  /** A fail at or below minScale ended the search: the capacity is below minScale. */
  belowMin: boolean
  steps: Array<SearchStep<T>>
  tolerance: number
  minScale: number
  maxScale: number
  /** The closed-model hint and what it did: bracketed the search from above, passed (the ladder went on past it), or was ignored. */
  hint: {scale: number; effect: 'bracketed' | 'passed' | 'ignored'} | null
}

export interface CapacitySearchOptions<T = unknown> {
  /** The first scale tried. Default 1 (raised to minScale when that is higher). */
  start?: number
  /** The lowest scale tried; a fail at or below it ends the search (the CI gate: --min-scale). Default start / 16. */
  minScale?: number
  /** The highest scale tried; a pass there ends the search with "at least". Default Infinity. */
  maxScale?: number
  /** Stop when firstFail / capacity ≤ 1 + tolerance. Default 0.1. */
  tolerance?: number
  /**
   * An upper estimate (e.g. autocannon's closed-model throughput ceiling ÷ the scenario's rate at ×1):
   * tried right after a passing start; if it fails, the ladder descends from it instead of climbing
   * to it. It only saves steps: a hint that passes is climbed past. Default none.
   */
  upperHint?: number
  /** A safety cap on steps. Default 24. */
  maxSteps?: number
  /** Called after each step (live progress). */
  onStep?: (step: SearchStep<T>) => void
  /** Stops before the next step; the result so far is returned with limit "aborted". */
  signal?: AbortSignal
}

export const DEFAULT_TOLERANCE = 0.1
const DEFAULT_MAX_STEPS = 24
/** How far below start the descent goes without a minScale. */
const DEFAULT_DESCENT = 16

/** The ladder's i-th rung as a multiple of start: 0 → 1, 1 → 1.5, 2 → 2, 3 → 3, 4 → 4, …; −1 → 0.75, −2 → 0.5, … */
export function rung(i: number): number {
  const pow = 2 ** Math.floor(i / 2)
  return i % 2 === 0 ? pow : pow * 1.5
}

/** 3 significant digits: scales read as ×2.45, not ×2.449489742783178. */
export function roundScale(v: number): number {
  return Number(v.toPrecision(3))
}

/**
 * Finds the highest rate scale that passes. Steps are run one at a time in the order described
 * at the top of this file; the judge is never called twice for the same scale.
 */
export async function findCapacity<T>(judge: (scale: number) => Promise<StepOutcome<T>>, opts: CapacitySearchOptions<T> = {}): Promise<CapacitySearch<T>> {
  const tolerance = opts.tolerance ?? DEFAULT_TOLERANCE
  const maxScale = opts.maxScale ?? Infinity
  const start0 = opts.start ?? 1
  const minScale = opts.minScale ?? start0 / DEFAULT_DESCENT
  if (!(tolerance > 0)) throw new RangeError(`tolerance must be > 0, got ${tolerance}`)
  if (!(start0 > 0) || !(minScale > 0)) throw new RangeError('start and minScale must be > 0')
  if (!(maxScale >= minScale)) throw new RangeError(`maxScale (${maxScale}) must be ≥ minScale (${minScale})`)
  /** Every scale a step runs at: 3 significant digits (a hint is a quotient, ×3.036963696369637), within the bounds. */
  const pick = (v: number) => Math.min(maxScale, Math.max(minScale, roundScale(v)))
  const start = pick(start0)
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS

  const steps: Array<SearchStep<T>> = []
  let lo: number | null = null
  let hi: number | null = null
  let hint: CapacitySearch<T>['hint'] = opts.upperHint === undefined ? null : {scale: opts.upperHint, effect: 'ignored'}
  const narrow = (a: number, b: number) => b / a <= 1 + tolerance

  const done = (limit: CapacityLimit): CapacitySearch<T> => ({
    capacity: lo,
    firstFail: hi,
    limit,
    atLeast: limit !== 'target' && limit !== 'invariant' && hi === null,
    belowMin: lo === null && hi !== null && hi <= minScale,
    steps,
    tolerance,
    minScale,
    maxScale,
    hint,
  })

  /** Runs one step; returns a finished search when the step ends it. */
  const step = async (scale: number, why: StepWhy): Promise<CapacitySearch<T> | StepVerdict> => {
    if (opts.signal?.aborted) return done('aborted')
    if (steps.length >= maxSteps) return done('steps')
    const outcome = await judge(scale)
    const s: SearchStep<T> = {index: steps.length, scale, why, verdict: outcome.verdict, ...(outcome.reason ? {reason: outcome.reason} : {}), data: outcome.data}
    steps.push(s)
    opts.onStep?.(s)
    if (outcome.verdict === 'void') return done('generator')
    if (outcome.verdict === 'invariant') return done('invariant')
    if (outcome.verdict === 'pass') lo = scale
    else hi = scale
    return outcome.verdict
  }

  let v = await step(start, 'start')
  if (typeof v === 'object') return v

  if (v === 'pass') {
    if (start >= maxScale) return done('max-scale')
    let from = start
    let i = 1
    // the hint: tried right after the start, when it is meaningfully above it
    if (hint && hint.scale > start * (1 + tolerance)) {
      const h = pick(hint.scale)
      v = await step(h, 'hint')
      if (typeof v === 'object') return v
      hint = {...hint, effect: v === 'pass' ? 'passed' : 'bracketed'}
      if (v === 'pass') {
        if (h >= maxScale) return done('max-scale')
        from = h
      } else {
        // descend the ladder from the failing hint until a pass or the bracket is narrow
        for (let j = -1; !narrow(lo!, hi!); j--) {
          const s = pick(h * rung(j))
          if (s <= lo! * (1 + tolerance)) break
          v = await step(s, 'descend')
          if (typeof v === 'object') return v
          if (v === 'pass') break
        }
      }
    }
    // climb (unless the hint already bracketed a fail)
    while (hi === null) {
      const s = pick(start * rung(i++))
      if (s <= from) continue
      v = await step(s, 'climb')
      if (typeof v === 'object') return v
      if (v === 'pass' && s >= maxScale) return done('max-scale')
    }
  } else if (start <= minScale) {
    return done('target')
  } else {
    // the start failed: descend until a pass, or a fail at minScale
    for (let j = -1; lo === null; j--) {
      const s = pick(start * rung(j))
      v = await step(s, 'descend')
      if (typeof v === 'object') return v
      if (v === 'fail' && s <= minScale) return done('target')
    }
  }

  // bisection between the last pass and the first fail
  while (!narrow(lo!, hi!)) {
    const m = pick(Math.sqrt(lo! * hi!))
    // rounding can land on an end when the bracket is already nearly narrow enough
    if (m <= lo! || m >= hi!) break
    v = await step(m, 'bisect')
    if (typeof v === 'object') return v
  }
  return done('target')
}
