/**
 * Scenario transforms for capacity steps, with no I/O. A step keeps the seeded dataset (a
 * million followers are not re-seeded per step) and changes only the offered load and its timing.
 */
import {UsageError} from '../../core/errors.js'
import {phasePeakRates} from '../load/arrivals.js'
import {parseThreshold} from '../metrics/thresholds.js'
import {REQUEST_GROUPS, scenarioDurationMs, type Scenario, type ScenarioPhase} from '../scenario/schema.js'

const scaled = (rates: ScenarioPhase['rates'], k: number) =>
  Object.fromEntries(Object.entries(rates).map(([type, v]) => [type, v === undefined ? v : v * k])) as ScenarioPhase['rates']

/** "browse_product.rate > 95/s" with its limit times k; other thresholds as written. */
function scaleThreshold(expression: string, kinds: ReadonlyArray<'rate' | 'count'>, k: number): string {
  const t = parseThreshold(expression)
  if (k === 1 || !(kinds as readonly string[]).includes(t.kind)) return expression
  // rate and count thresholds take no timing and no window, so this is the whole expression
  const limit = String(Math.round(t.limit * k * 1000) / 1000)
  return `${t.metric}.${t.stat}${t.optional ? '?' : ''} ${t.op} ${limit}${t.kind === 'rate' ? '/s' : ''}`
}

function scaleThresholds(s: Scenario, kinds: ReadonlyArray<'rate' | 'count'>, k: number): Pick<Scenario, 'thresholds' | 'phases'> {
  return {
    thresholds: s.thresholds.map((e) => scaleThreshold(e, kinds, k)),
    phases: s.phases.map((p) => (p.thresholds ? {...p, thresholds: p.thresholds.map((e) => scaleThreshold(e, kinds, k))} : p)),
  }
}

/**
 * Multiplies the rates (and rampTo rates) of every phase by k; the dataset, stock, durations and
 * everything else stay. Thresholds on achieved rates or completed counts
 * ("browse_product.rate > 95/s", "order.count >= 1000") are limits on the offered load, so they
 * scale with it: unscaled, a step at ×0.5 would fail them by construction and one at ×3 would
 * pass them without meaning anything. Latency and error-share thresholds stay as written.
 */
export function scaleRates(s: Scenario, k: number): Scenario {
  if (!(k > 0) || !Number.isFinite(k)) throw new RangeError(`a rate scale must be a finite number > 0, got ${k}`)
  if (k === 1) return s
  const th = scaleThresholds(s, ['rate', 'count'], k)
  return {
    ...s,
    thresholds: th.thresholds,
    phases: th.phases.map((p) => ({...p, rates: scaled(p.rates, k), ...(p.rampTo ? {rampTo: scaled(p.rampTo, k)} : {})})),
  }
}

/** Phases shorter than this after compression are kept at it: the schema needs a duration > 0. */
const MIN_PHASE_MS = 1

/**
 * Stretches or shrinks every phase by the same factor so the whole scenario lasts stepSeconds
 * (--step-seconds), and the drop's start offset and duration with it: the drop opens at the
 * same share of each step as in the scenario (20 s into 50 s becomes 4 s into a 10 s step).
 * Rates stay (a shorter step sends fewer requests at the same rates); count thresholds shrink
 * or grow with the length. Phase order, rates and ramps are kept.
 */
export function compressPhases(s: Scenario, stepSeconds: number): Scenario {
  if (!(stepSeconds > 0) || !Number.isFinite(stepSeconds)) throw new UsageError('--step-seconds', `must be a number of seconds > 0, got ${stepSeconds}`)
  const total = scenarioDurationMs(s)
  const f = (stepSeconds * 1000) / total
  if (f === 1) return s
  const ms = (v: number) => Math.max(MIN_PHASE_MS, Math.round(v * f))
  const th = scaleThresholds(s, ['count'], f)
  return {
    ...s,
    thresholds: th.thresholds,
    phases: th.phases.map((p) => ({...p, duration: ms(p.duration)})),
    drop: {
      ...s.drop,
      startOffset: Math.round(s.drop.startOffset * f),
      ...(s.drop.duration !== undefined ? {duration: ms(s.drop.duration)} : {}),
    },
    // faults happen at the same share of each step, and last as long relative to it
    ...(s.faults ? {faults: s.faults.map((x) => ({...x, at: Math.round(x.at * f), ...(x.for !== undefined ? {for: ms(x.for)} : {})}))} : {}),
  }
}

/** The rates a scenario offers at ×1, averaged over its length (ramps at their mean): what a scale multiplies. */
export function offeredRates(s: Scenario): {total: number; order: number; byType: Record<string, number>} {
  const totalMs = scenarioDurationMs(s)
  const byType: Record<string, number> = {}
  for (const p of s.phases) {
    for (const type of new Set([...Object.keys(p.rates), ...Object.keys(p.rampTo ?? {})])) {
      const from = p.rates[type as keyof typeof p.rates] ?? 0
      const to = p.rampTo?.[type as keyof typeof p.rampTo] ?? from
      byType[type] = (byType[type] ?? 0) + (((from + to) / 2) * p.duration) / totalMs
    }
  }
  const total = Object.values(byType).reduce((a, b) => a + b, 0)
  return {total, order: byType.order ?? 0, byType}
}

/** The busiest phase's rates at ×1 (a ramp at its higher end), e.g. the drop opening: what the answer line quotes. */
export function peakRates(s: Scenario): {phase: string; total: number; read: number; order: number} {
  let best = {phase: '', total: -1, read: 0, order: 0}
  for (const p of s.phases) {
    const peak = phasePeakRates(p)
    const at = (type: string) => peak[type] ?? 0
    const total = Object.values(peak).reduce((sum, r) => sum + r, 0)
    if (total > best.total) best = {phase: p.name, total, read: REQUEST_GROUPS.read.reduce((sum, t) => sum + at(t), 0), order: at('order')}
  }
  return best
}
