import {UsageError} from '../../core/errors.js'
import {LatencyHistogram} from '../../core/histogram.js'
import {judgeRun, stallOf, type Groups, type InvariantResult, type PhaseResult, type RequestStats, type RunResult, type SeriesPoint, type SeriesTypePoint} from '../metrics/result.js'

const addCounts = (a: Record<string, number>, b: Record<string, number>) => {
  const out = {...a}
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v
  return out
}

function mergeHistograms(encoded: string[]): LatencyHistogram {
  const h = new LatencyHistogram()
  for (const e of encoded) h.add(LatencyHistogram.decode(e))
  return h
}

function mergeStats(all: RequestStats[], durationMs: number): RequestStats {
  const sum = (f: 'targetRate' | 'scheduled' | 'sent' | 'completed' | 'ok' | 'errors' | 'late' | 'queued' | 'unsent') => all.reduce((s, r) => s + r[f], 0)
  const corrected = mergeHistograms(all.map((r) => r.histograms.corrected))
  const service = mergeHistograms(all.map((r) => r.histograms.service))
  const excused = mergeHistograms(all.map((r) => r.histograms.excused ?? r.histograms.corrected))
  const completed = sum('completed')
  return {
    targetRate: sum('targetRate'),
    achievedRate: durationMs > 0 ? completed / (durationMs / 1000) : 0,
    scheduled: sum('scheduled'),
    sent: sum('sent'),
    completed,
    ok: sum('ok'),
    errors: sum('errors'),
    late: sum('late'),
    queued: sum('queued'),
    unsent: sum('unsent'),
    errorsByClass: all.reduce<Record<string, number>>((acc, r) => addCounts(acc, r.errorsByClass), {}),
    statuses: all.reduce<Record<string, number>>((acc, r) => addCounts(acc, r.statuses), {}),
    corrected: corrected.summary(),
    service: service.summary(),
    histograms: {corrected: corrected.encode(), service: service.encode(), excused: excused.encode()},
  }
}

/** Per-second points of several generators: counts add; per-second percentiles take the largest (an upper bound). */
function mergeSeries(runs: RunResult[]): SeriesPoint[] {
  const bySecond = new Map<number, SeriesPoint>()
  for (const run of runs)
    for (const pt of run.series) {
      const m = bySecond.get(pt.t)
      if (!m) {
        bySecond.set(pt.t, {t: pt.t, phase: pt.phase, target: pt.target, types: Object.fromEntries(Object.entries(pt.types).map(([k, v]) => [k, {...v}]))})
        continue
      }
      m.target += pt.target
      for (const [type, v] of Object.entries(pt.types)) {
        const into: SeriesTypePoint | undefined = m.types[type]
        if (!into) m.types[type] = {...v}
        else {
          into.sent += v.sent
          into.done += v.done
          into.errors += v.errors
          into.p50 = Math.max(into.p50, v.p50)
          into.p99 = Math.max(into.p99, v.p99)
          into.serviceP99 = Math.max(into.serviceP99, v.serviceP99)
          into.histograms = mergeSecondHistograms(into.histograms, v.histograms)
        }
      }
    }
  return [...bySecond.values()].sort((a, b) => a.t - b.t)
}

/** One second's histograms of two generators, added exactly; none when either file predates them. */
function mergeSecondHistograms(a: SeriesTypePoint['histograms'], b: SeriesTypePoint['histograms']): SeriesTypePoint['histograms'] {
  if (!a || !b) return undefined
  const add = (x: string, y: string) => {
    const h = LatencyHistogram.decode(x)
    h.add(LatencyHistogram.decode(y))
    return h.encode()
  }
  const excused = a.excused || b.excused ? {excused: add(a.excused ?? a.corrected, b.excused ?? b.corrected)} : {}
  return {corrected: add(a.corrected, b.corrected), service: add(a.service, b.service), ...excused}
}

/** Invariants by name: a violation on any generator is a violation of the merged run. */
function mergeInvariants(runs: RunResult[]): InvariantResult[] {
  const byName = new Map<string, InvariantResult>()
  for (const run of runs)
    for (const inv of run.invariants) {
      const m = byName.get(inv.name)
      if (!m) byName.set(inv.name, {...inv})
      else {
        m.pass &&= inv.pass
        if (inv.detail && inv.detail !== m.detail) m.detail = [m.detail, inv.detail].filter(Boolean).join('; ')
      }
    }
  return [...byName.values()]
}

/** Engine stats: a value every run agrees on is kept; differing values become the list of per-run values. */
function mergeEngineStats(runs: RunResult[]): Record<string, unknown> {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.stats)))]
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const values = runs.map((r) => r.stats[k])
    const first = JSON.stringify(values[0])
    out[k] = values.every((v) => JSON.stringify(v) === first) ? values[0] : values
  }
  return out
}

/**
 * Merges the run files of several generator machines that drove the same scenario at the same
 * time into one run, exactly: HDR histograms add (so the merged p99 is the p99 of every request,
 * not an average of p99s), counts and rates sum, per-second series align by second; thresholds
 * are evaluated again on the merged data and the verdict recomputed.
 *
 * Runs must be of the same scenario (name, phases by name and order, thresholds). Runs of a split
 * scenario (`--segment i/n`, scenario.segment) must also fit together as its pieces: the same
 * scale and seed, segments 1..n each exactly once, the same start time; the merged run is the
 * whole scenario at that scale. Runs without segments each drove the whole scenario: their scales add.
 * `groups` maps group names (read, write, all) to request types (REQUEST_GROUPS); `files` names
 * the runs in refusals (default FILES[i]).
 */
export function mergeRuns(runs: RunResult[], groups: Groups, files: string[] = runs.map((_, i) => `FILES[${i}]`)): RunResult {
  if (runs.length === 0) throw new UsageError('FILES', 'nothing to merge: give at least one run file')
  const [first] = runs
  const phaseNames = first.phases.map((p) => p.name).join(',')
  const thresholds = JSON.stringify(first.scenario.thresholds)
  runs.forEach((r, i) => {
    if (r.scenario.name !== first.scenario.name) {
      throw new UsageError('FILES', `${files[i]} is a run of scenario "${r.scenario.name}", ${files[0]} of "${first.scenario.name}"`, {
        hint: 'Merge only runs of the same scenario started together on different generator machines.',
      })
    }
    if (r.phases.map((p) => p.name).join(',') !== phaseNames) {
      throw new UsageError('FILES', `the phases of ${files[i]} (${r.phases.map((p) => p.name).join(', ')}) differ from those of ${files[0]} (${first.phases.map((p) => p.name).join(', ')})`, {
        hint: 'Merge only runs of the same scenario started together on different generator machines.',
      })
    }
    if (JSON.stringify(r.scenario.thresholds) !== thresholds) {
      throw new UsageError('FILES', `${files[i]} and ${files[0]}: their thresholds differ`, {hint: 'Every generator must run the same scenario file.'})
    }
  })
  const split = checkSegments(runs, files)

  const phases: PhaseResult[] = first.phases.map((p, i) => {
    const durationMs = Math.max(...runs.map((r) => r.phases[i].durationMs))
    // cut short only if every generator was: the merged phase ran as long as the longest of them
    const ran = Math.max(...runs.map((r) => r.phases[i].ranMs ?? r.phases[i].durationMs))
    const types = [...new Set(runs.flatMap((r) => Object.keys(r.phases[i].requests)))]
    return {
      name: p.name,
      index: i,
      startMs: p.startMs,
      durationMs,
      ...(ran < durationMs ? {ranMs: ran} : {}),
      arrival: p.arrival,
      requests: Object.fromEntries(types.map((t) => [t, mergeStats(runs.flatMap((r) => r.phases[i].requests[t] ?? []), ran)])),
    }
  })

  const metricNames = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))]
  const metrics = Object.fromEntries(
    metricNames.map((name) => {
      const h = mergeHistograms(runs.flatMap((r) => r.metrics[name]?.histogram ?? []))
      return [name, {summary: h.summary(), histogram: h.encode()}]
    }),
  )

  const scheduled = (r: RunResult) => r.phases.reduce((s, p) => s + Object.values(p.requests).reduce((x, q) => x + q.scheduled, 0), 0)
  const totalScheduled = runs.reduce((s, r) => s + scheduled(r), 0)
  const stalls = runs.flatMap((r) => {
    const stall = stallOf(r)
    return stall ? [{hostname: r.generator.hostname, ...stall}] : []
  })
  const merged: RunResult = {
    kind: 'livedrop-run',
    version: 1,
    // the pieces of a split run add up to the scenario at its scale; whole runs add their load
    scenario: split ? wholeScenario(first.scenario) : {...first.scenario, scale: runs.reduce((s, r) => s + r.scenario.scale, 0)},
    target: [...new Set(runs.map((r) => r.target))].join(', '),
    startedAt: runs.map((r) => r.startedAt).sort()[0],
    durationMs: Math.max(...runs.map((r) => r.durationMs)),
    generator: {
      hostname: runs.map((r) => r.generator.hostname).join(','),
      connections: runs.reduce((s, r) => s + r.generator.connections, 0),
      slackMs: first.generator.slackMs,
      timeoutMs: first.generator.timeoutMs,
      maxLateFraction: first.generator.maxLateFraction,
      maxLagMs: first.generator.maxLagMs,
      eventLoopLag: {
        p50: Math.max(...runs.map((r) => r.generator.eventLoopLag.p50)),
        p99: Math.max(...runs.map((r) => r.generator.eventLoopLag.p99)),
        max: Math.max(...runs.map((r) => r.generator.eventLoopLag.max)),
      },
      lateFraction: totalScheduled > 0 ? runs.reduce((s, r) => s + r.generator.lateFraction * scheduled(r), 0) / totalScheduled : 0,
      late: runs.reduce((s, r) => s + (r.generator.late ?? Math.round(r.generator.lateFraction * scheduled(r))), 0),
      worstLagMs: Math.max(...runs.map((r) => r.generator.worstLagMs ?? 0)),
      cpu: Math.max(...runs.map((r) => r.generator.cpu ?? 0)),
      // one generator that stalled voids the whole merged run
      stall: stalls.length
        ? {reason: stalls.map((st) => `${st.hostname}: ${st.reason}`).join('; '), detail: {generators: stalls.map((st) => ({hostname: st.hostname, ...st.detail}))}}
        : null,
      runs: runs.reduce((s, r) => s + r.generator.runs, 0),
    },
    phases,
    series: mergeSeries(runs),
    metrics,
    thresholds: [],
    invariants: split ? unionStock(mergeInvariants(runs), runs) : mergeInvariants(runs),
    stats: split ? sumCounts(mergeEngineStats(runs), runs) : mergeEngineStats(runs),
    // judged below: a stall of any generator, or lateness that could flip the merged verdict
    void: null,
    aborted: runs.some((r) => r.aborted),
    verdict: first.verdict,
  }
  return judgeRun(merged, groups)
}

/**
 * Whether the runs are the pieces of one split run, after checking they fit together: every run has
 * a segment or none does; one count n; indices 1..n each once; one scale, seed and start time.
 */
function checkSegments(runs: RunResult[], files: string[]): boolean {
  const segmented = runs.filter((r) => r.scenario.segment)
  if (segmented.length === 0) return false
  const named = (pick: (r: RunResult, i: number) => boolean) => runs.flatMap((r, i) => (pick(r, i) ? [files[i]] : [])).join(', ')
  const hint = 'Merge the n run files of one split run: the generators ran --segment 1/n … n/n of one scenario with the same --scale and --start-at.'
  if (segmented.length < runs.length) {
    throw new UsageError('FILES', `${named((r) => !r.scenario.segment)} drove the whole scenario, ${named((r) => Boolean(r.scenario.segment))} a segment of it: they do not add up`, {hint})
  }
  const seg = (r: RunResult) => r.scenario.segment!
  const text = (r: RunResult) => `${seg(r).index}/${seg(r).count}`
  const count = seg(runs[0]).count
  const other = runs.findIndex((r) => seg(r).count !== count)
  if (other >= 0) throw new UsageError('FILES', `${files[0]} is segment ${text(runs[0])}, ${files[other]} segment ${text(runs[other])}: one run is split one way`, {hint})
  for (const r of runs) {
    const same = runs.flatMap((x, i) => (seg(x).index === seg(r).index ? [files[i]] : []))
    if (same.length > 1) throw new UsageError('FILES', `${same.join(' and ')} are both segment ${text(r)}: each segment must be merged exactly once`, {hint})
  }
  if (runs.length !== count) {
    const have = new Set(runs.map((r) => seg(r).index))
    const missing = Array.from({length: count}, (_, i) => i + 1).filter((i) => !have.has(i))
    throw new UsageError('FILES', `segment${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} of the split run ${missing.length > 1 ? 'are' : 'is'} missing (given: ${named(() => true)})`, {hint})
  }
  const differs = (what: string, value: (r: RunResult) => unknown) => {
    const i = runs.findIndex((r) => value(r) !== value(runs[0]))
    if (i >= 0) throw new UsageError('FILES', `${files[i]} ran with ${what} ${String(value(runs[i]))}, ${files[0]} with ${String(value(runs[0]))}: not pieces of one run`, {hint})
  }
  differs('scale', (r) => r.scenario.scale)
  differs('seed', (r) => r.scenario.seed)
  differs('--start-at', (r) => r.scenario.startAt ?? 'none')
  return true
}

/** The scenario of a merged split run: the whole of it (no segment). */
function wholeScenario(s: RunResult['scenario']): RunResult['scenario'] {
  const {segment: _segment, ...whole} = s
  return whole
}

/** What the answers said, counted per generator: the pieces of a split run add up. */
const COUNTED_STATS = ['ordersConfirmed', 'unitsAcknowledged', 'soldOutAnswers', 'notLiveAnswers', 'replays']

function sumCounts(stats: Record<string, unknown>, runs: RunResult[]): Record<string, unknown> {
  const out = {...stats}
  for (const k of COUNTED_STATS) {
    const values = runs.map((r) => r.stats[k])
    if (values.every((v) => typeof v === 'number')) out[k] = (values as number[]).reduce((a, b) => a + b, 0)
  }
  return out
}

/**
 * acked_units_le_stock over the whole split run: the segments raced for one drop, so each one's
 * acknowledged units can stay under the stock while their sum does not.
 */
function unionStock(invariants: InvariantResult[], runs: RunResult[]): InvariantResult[] {
  const NAME = 'acked_units_le_stock'
  const parts = runs.map((r) => r.invariants.find((i) => i.name === NAME)?.data as {stock?: unknown; ackedUnits?: unknown; orders?: unknown} | undefined)
  const stock = parts[0]?.stock
  if (typeof stock !== 'number' || !parts.every((d) => d?.stock === stock && typeof d.ackedUnits === 'number' && typeof d.orders === 'number')) return invariants
  const ackedUnits = parts.reduce((n, d) => n + (d!.ackedUnits as number), 0)
  const orders = parts.reduce((n, d) => n + (d!.orders as number), 0)
  return invariants.map((inv) => {
    if (inv.name !== NAME) return inv
    const pass = inv.pass && ackedUnits <= stock
    const over = `${ackedUnits} units acknowledged in ${orders} orders across ${runs.length} segments, stock ${stock}`
    return {...inv, pass, detail: pass ? inv.detail : [ackedUnits > stock ? over : null, inv.detail].filter(Boolean).join('; '), data: {...inv.data, stock, ackedUnits, orders}}
  })
}
