import Table from 'cli-table3'
import {formatThresholdValue} from '../metrics/thresholds.js'
import type {LatenessFlip, RequestStats, RunResult} from '../metrics/result.js'

export interface RenderOptions {
  /** Colour headers and borders (a terminal). Default false: plain for logs and pipes. */
  color?: boolean
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)}s` : v >= 100 ? `${v.toFixed(0)}ms` : `${v.toFixed(v >= 10 ? 1 : 2)}ms`)
const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1))

function table(head: string[], options: RenderOptions, colAligns?: Array<'left' | 'right'>): Table.Table {
  return new Table({head, colAligns, style: options.color ? {} : {head: [], border: []}})
}

/** "3 (http_503 2, timeout 1)" */
export function formatErrors(r: Pick<RequestStats, 'errors' | 'errorsByClass'>): string {
  if (r.errors === 0) return '0'
  const classes = Object.entries(r.errorsByClass)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
  return `${r.errors} (${classes.join(', ')})`
}

/** "late 3 · queued 98": sends that missed their time; empty when all went out on time. */
function formatSchedule(r: RequestStats): string {
  const parts = [r.late && `late ${r.late}`, r.queued && `queued ${r.queued}`, r.unsent && `unsent ${r.unsent}`].filter(Boolean)
  return parts.length ? parts.join(' · ') : 'on time'
}

/** One table per phase: request type × target vs achieved, corrected latency, service p99, errors. */
export function renderPhaseTables(result: RunResult, options: RenderOptions = {}): string {
  const out: string[] = []
  for (const p of result.phases) {
    const t = table(['request', 'target/s', 'achieved/s', 'p50', 'p90', 'p95', 'p99', 'max', 'service p99', 'errors', 'schedule'], options, [
      'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'left',
    ])
    for (const [type, r] of Object.entries(p.requests)) {
      t.push([type, rate(r.targetRate), rate(r.achievedRate), ms(r.corrected.p50), ms(r.corrected.p90), ms(r.corrected.p95), ms(r.corrected.p99), ms(r.corrected.max), ms(r.service.p99), formatErrors(r), formatSchedule(r)])
    }
    out.push(`Phase ${p.name} (${(p.durationMs / 1000).toFixed(p.durationMs % 1000 ? 1 : 0)} s, ${p.arrival}) — latency from the intended send time`)
    out.push(t.toString())
  }
  return out.join('\n')
}

/** Thresholds and invariants with PASS/FAIL. */
export function renderVerdictTables(result: RunResult, options: RenderOptions = {}): string {
  const out: string[] = []
  if (result.thresholds.length) {
    const flips = latenessFlipsOf(result)
    const head = ['threshold', 'scope', 'actual', 'verdict']
    // a void-by-lateness run shows what each flipped threshold measured without the generator's lateness
    if (flips.length) head.push("without generator's lateness")
    const t = table(head, options, ['left', 'left', 'right', 'left', 'right'])
    for (const th of result.thresholds) {
      const row = [th.expression, th.scope, formatThresholdValue(th.kind, th.actual), th.noData ? 'PASS (no data)' : th.pass ? 'PASS' : 'FAIL']
      const flip = flips.find((f) => f.expression === th.expression && f.scope === th.scope)
      if (flips.length) row.push(flip ? `${formatThresholdValue(flip.kind, flip.excused)} (PASS)` : '')
      t.push(row)
    }
    out.push(t.toString())
  }
  if (result.invariants.length) {
    const t = table(['invariant', 'verdict', 'detail'], options, ['left', 'left', 'left'])
    for (const inv of result.invariants) t.push([inv.name, inv.pass ? 'PASS' : 'FAIL', inv.detail ?? ''])
    out.push(t.toString())
  }
  if (Object.keys(result.metrics).length) {
    const t = table(['metric', 'count', 'p50', 'p95', 'p99', 'max'], options, ['left', 'right', 'right', 'right', 'right', 'right'])
    for (const [name, m] of Object.entries(result.metrics)) t.push([name, String(m.summary.count), ms(m.summary.p50), ms(m.summary.p95), ms(m.summary.p99), ms(m.summary.max)])
    out.push(t.toString())
  }
  if (Object.keys(result.stats).length) {
    const t = table(['engine', 'value'], options, ['left', 'right'])
    // series (stock over time) are for the HTML charts, not a table cell
    for (const [k, v] of Object.entries(result.stats)) if (v === null || typeof v !== 'object') t.push([k, typeof v === 'number' ? v.toLocaleString('en-US') : String(v)])
    out.push(t.toString())
  }
  return out.join('\n')
}

/** The thresholds a void-by-lateness run lists in void.detail.thresholds (none otherwise). */
export function latenessFlipsOf(result: RunResult): LatenessFlip[] {
  return result.void?.kind === 'lateness' ? ((result.void.detail.thresholds as LatenessFlip[] | undefined) ?? []) : []
}

/**
 * The generator's health in one line, on every run:
 * "generator: 0.42% of sends late (13 > 10ms), worst lag 38.0ms, CPU 23% of its thread".
 */
export function generatorHealthLine(result: RunResult): string {
  const g = result.generator
  const late = g.late !== undefined ? ` (${g.late.toLocaleString('en-US')} > ${g.slackMs}ms)` : ` (> ${g.slackMs}ms)`
  const parts = [`${(g.lateFraction * 100).toFixed(2)}% of sends late${late}`, `worst lag ${ms(g.worstLagMs ?? g.eventLoopLag.max)}`]
  if (g.cpu !== undefined) parts.push(`CPU ${(g.cpu * 100).toFixed(0)}% of its thread`)
  if (g.stall) parts.push('stalled')
  return `generator${g.runs > 1 ? `s (${g.runs})` : ''}: ${parts.join(', ')}`
}

/** The one-line verdict, e.g. "FAIL: 1 threshold failed (exit 99)". */
export function verdictLine(result: RunResult): string {
  const v = result.verdict
  if (v.void) return `VOID: ${result.void!.reason} (exit ${v.exitCode})`
  const parts = [v.invariantsFailed && `${v.invariantsFailed} invariant(s) violated`, v.thresholdsFailed && `${v.thresholdsFailed} threshold(s) failed`].filter(Boolean)
  return v.pass ? `PASS${result.aborted ? ' (stopped early)' : ''}` : `FAIL: ${parts.join(', ')} (exit ${v.exitCode})`
}

/** The whole report as the run prints it and `livedrop report run.json` re-renders it. */
export function renderReport(result: RunResult, options: RenderOptions = {}): string {
  const head = `${result.scenario.name}${result.scenario.scale !== 1 ? ` ×${result.scenario.scale}` : ''} against ${result.target}: ${(result.durationMs / 1000).toFixed(1)} s, ${result.generator.connections} connections`
  const parts = [head, generatorHealthLine(result)]
  if (result.void?.kind === 'lateness') parts.push(`VOID RUN: ${result.void.reason}. Latency counts from each request's intended send time, so the failure may be the generator's, not the target's.`)
  else if (result.void) parts.push(`VOID RUN: ${result.void.reason}. The figures below describe the generator, not the target.`)
  parts.push(renderPhaseTables(result, options))
  const verdicts = renderVerdictTables(result, options)
  if (verdicts) parts.push(verdicts)
  parts.push(verdictLine(result))
  return parts.join('\n')
}

/** One live status line for a terminal: "drop-opens 23.0/50 s | 1,648/s of 1,650/s | errors 0 | late 0 | p99 41.2ms". */
export function progressLine(p: {elapsedMs: number; totalMs: number; phase: string; rate: number; targetRate: number; errors: number; late: number; p99Ms: number}): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US')
  return `${p.phase} ${(p.elapsedMs / 1000).toFixed(1)}/${(p.totalMs / 1000).toFixed(0)} s | ${n(p.rate)}/s of ${n(p.targetRate)}/s | errors ${n(p.errors)} | late ${n(p.late)} | p99 ${ms(p.p99Ms)}`
}
