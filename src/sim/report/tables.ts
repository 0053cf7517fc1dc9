import {faultLines} from './faults.js'
import {cpuPer1000Requests, cpuSentence, MACHINE, type CpuReport} from '../metrics/cpu.js'
import {countLookup, mergedHistogram, type LatenessFlip, type RequestStats, type RunResult} from '../metrics/result.js'
import {formatThresholdActual, formatThresholdValue, type MetricLookup, type ThresholdResult, type ThresholdStat} from '../metrics/thresholds.js'
import {REQUEST_GROUPS} from '../scenario/schema.js'

export interface RenderOptions {
  /** ANSI colour (a terminal that did not set NO_COLOR; see colorFor). Default false: plain for logs and pipes. */
  color?: boolean
  /** Add one table per phase with service time and the generator's schedule. Default false. */
  full?: boolean
  /** Regressions a comparison with a baseline found: the verdict reads REGRESSION 97. Default 0. */
  regressions?: number
}

/** Every line of the report fits this many columns (CI logs, 100-column terminals). */
export const REPORT_WIDTH = 100
const GAP = '  '

/** Colour only on a terminal, and never when NO_COLOR is set to anything (no-color.org). */
export function colorFor(stream: {isTTY?: boolean}, env: Record<string, string | undefined>): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR
}

const ms = (v: number) => formatThresholdValue('latency', v)
const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1))

/** Words (or `sep`-separated items) into lines of at most `width` characters (a single longer item keeps its own line). */
function wrap(text: string, width: number, sep = ' '): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(sep)) {
    if (line && line.length + sep.length + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line}${sep}${word}` : word
  }
  return line ? [...lines, line] : lines
}

/**
 * Aligned columns two spaces apart; the last column is left-aligned and wraps so each line fits
 * `width`. When the other columns leave it less than 12 characters, it goes on lines of its own below its row.
 */
function layout(rows: string[][], align: Array<'l' | 'r'>, width = REPORT_WIDTH): string[] {
  const last = align.length - 1
  const widths = align.map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  const used = widths.slice(0, last).reduce((s, w) => s + w + GAP.length, 0)
  const below = width - used < 12
  const indent = below ? ' '.repeat(4) : ' '.repeat(used)
  const out: string[] = []
  for (const r of rows) {
    const cells = r.slice(0, last).map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
    const pieces = wrap(r[last], width - indent.length)
    if (below || pieces.length === 0) out.push(cells.join(GAP).trimEnd(), ...pieces.map((p) => indent + p))
    else pieces.forEach((piece, i) => out.push(((i === 0 ? cells.join(GAP) + (last ? GAP : '') : indent) + piece).trimEnd()))
  }
  return out
}

const paint = (on: boolean | undefined, code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s)
const marks = (line: string, color?: boolean) => line.replace('✓', paint(color, 32, '✓')).replace('✗', paint(color, 31, '✗'))

/** "200:9000 409:120 timeout:1": answers by HTTP status, then failures that got no status. */
function formatStatuses(statuses: Record<string, number>, errorsByClass: Record<string, number>): string {
  const noStatus = Object.entries(errorsByClass).filter(([k]) => !k.startsWith('http_'))
  return [...Object.entries(statuses).sort((a, b) => b[1] - a[1]), ...noStatus].map(([k, n]) => `${k}:${n}`).join(' ')
}

const addCounts = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n
}

/** "late 3 · queued 98": sends that missed their time; "on time" when all went out on time. */
function formatSchedule(r: RequestStats): string {
  const parts = [r.late && `late ${r.late}`, r.queued && `queued ${r.queued}`, r.unsent && `unsent ${r.unsent}`].filter(Boolean)
  return parts.length ? parts.join(' · ') : 'on time'
}

/** What thresholds read, over the whole run (phase null) or one phase: the same merges as evaluateRunThresholds. */
function lookupOf(result: RunResult, phase: string | null): MetricLookup {
  const counts = countLookup(result, phase, REQUEST_GROUPS)
  return (metric, stat, timing) => {
    if (!/^p|^max$|^mean$/.test(stat)) return counts(metric, stat, timing)
    const h = mergedHistogram(result, phase, metric, timing, REQUEST_GROUPS)
    if (!h || h.count === 0) return undefined
    return stat === 'max' ? h.maxMs : stat === 'mean' ? h.meanMs : h.percentileMs(Number(stat.slice(1)))
  }
}

/** Columns the summary always has; a run threshold on any other stat (p90, service.p99, late…) adds its own. */
const BASE_STATS = new Set(['corrected p50', 'corrected p95', 'corrected p99', 'corrected max', 'corrected errors', 'corrected rate'])

/** A table's cells before layout: the terminal lays them out in columns, Markdown in a pipe table. */
export interface TableData {
  head: string[]
  rows: string[][]
  /** Per column: left or right aligned. */
  align: Array<'l' | 'r'>
}

/**
 * The whole run in one table: each request type, then the read/write/all groups, then extra
 * metrics (notify); target and achieved rate, corrected p50/p95/p99/max, errors (with the share
 * the thresholds use: unsent requests count as failed) and status-code counts. Numbers are
 * formatted as the threshold lines format them, so each threshold's figure is found here.
 */
export function summaryTableData(result: RunResult): TableData {
  const lookup = lookupOf(result, null)
  const durationS = result.phases.reduce((s, p) => s + p.durationMs, 0) / 1000
  const types = [...new Set(result.phases.flatMap((p) => Object.keys(p.requests)))]
  const extras = [...new Map(result.thresholds.filter((t) => t.scope === 'run' && !BASE_STATS.has(`${t.timing} ${t.stat}`)).map((t) => [`${t.timing} ${t.stat}`, t])).values()]
  const head = ['request', 'target/s', 'achieved/s', 'p50', 'p95', 'p99', 'max', ...extras.map((t) => (t.timing === 'service' ? `svc ${t.stat}` : t.stat)), 'errors', 'statuses']
  const rows: string[][] = []
  const row = (name: string, members: string[]) => {
    const statuses: Record<string, number> = {}
    const noStatus: Record<string, number> = {}
    let target = 0
    let failed = 0
    for (const p of result.phases)
      for (const t of members) {
        const r = p.requests[t]
        if (!r) continue
        target += (r.targetRate * p.durationMs) / 1000 / durationS
        failed += r.errors + r.unsent
        addCounts(statuses, r.statuses)
        addCounts(noStatus, r.errorsByClass)
      }
    const lat = (stat: ThresholdStat) => formatThresholdValue('latency', lookup(name, stat, 'corrected') ?? null)
    const share = lookup(name, 'errors', 'corrected')
    rows.push([
      name,
      rate(target),
      (lookup(name, 'rate', 'corrected') ?? 0).toFixed(1),
      lat('p50'),
      lat('p95'),
      lat('p99'),
      lat('max'),
      ...extras.map((t) => formatThresholdValue(t.kind, lookup(name, t.stat as ThresholdStat, t.timing) ?? null)),
      share === undefined ? '0' : `${failed} (${formatThresholdValue('fraction', share)})`,
      formatStatuses(statuses, noStatus),
    ])
  }
  for (const t of types) row(t, [t])
  for (const [group, members] of Object.entries(REQUEST_GROUPS)) if (members.some((m) => types.includes(m))) row(group, [...members])
  for (const [name, m] of Object.entries(result.metrics)) {
    const extra = extras.map((t) => (t.kind === 'latency' && t.timing === 'corrected' ? formatThresholdValue('latency', lookup(name, t.stat as ThresholdStat, 'corrected') ?? null) : ''))
    rows.push([name, '', '', ms(m.summary.p50), ms(m.summary.p95), ms(m.summary.p99), ms(m.summary.max), ...extra, '', `${m.summary.count} samples`])
  }
  return {head, rows, align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', ...extras.map(() => 'r' as const), 'r', 'l']}
}

/** The whole-run table laid out for the terminal (see summaryTableData). */
export function renderSummaryTable(result: RunResult): string[] {
  const d = summaryTableData(result)
  return layout([d.head, ...d.rows], d.align)
}

/** --full: one table per phase with service p99 and the generator's schedule (late, queued, unsent sends). */
export function renderPhaseTables(result: RunResult): string[] {
  const out: string[] = []
  for (const p of result.phases) {
    const rows = [['request', 'target/s', 'achieved/s', 'p50', 'p95', 'p99', 'max', 'svc p99', 'errors', 'schedule']]
    for (const [type, r] of Object.entries(p.requests)) {
      rows.push([type, rate(r.targetRate), r.achievedRate.toFixed(1), ms(r.corrected.p50), ms(r.corrected.p95), ms(r.corrected.p99), ms(r.corrected.max), ms(r.service.p99), String(r.errors + r.unsent), formatSchedule(r)])
    }
    out.push('', `Phase ${p.name} (${(p.durationMs / 1000).toFixed(p.durationMs % 1000 ? 1 : 0)} s, ${p.arrival})`, ...layout(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']))
  }
  return out
}

/** One threshold as every report shows it: mark, expression, scope, measured, limit, headroom; `excused` under a void-by-lateness flip. */
export interface ThresholdLine {
  pass: boolean
  expression: string
  scope: string
  measured: string
  limit: string
  headroom: string
  /** What it measured without the generator's lateness, when that flipped the verdict. */
  excused?: string
}

export function thresholdLines(result: RunResult): ThresholdLine[] {
  const flips = latenessFlipsOf(result)
  return result.thresholds.map((t) => {
    const flip = flips.find((f) => f.expression === t.expression && f.scope === t.scope)
    return {
      pass: t.pass,
      expression: t.expression,
      scope: t.scope,
      measured: formatThresholdActual(t),
      limit: formatThresholdValue(t.kind, t.limit),
      headroom: headroom(t),
      ...(flip ? {excused: formatThresholdValue(flip.kind, flip.excused)} : {}),
    }
  })
}

/** "✓ read.p95 < 200ms  run  12.4ms  limit 200ms  headroom 94%", and under a void-by-lateness flip what it measured without it. */
function renderThresholds(result: RunResult): string[] {
  const ts = thresholdLines(result)
  const rows = ts.map((t) => [`${t.pass ? '✓' : '✗'} ${t.expression}`, t.scope, t.measured, `limit ${t.limit}`, t.headroom])
  const lines = layout(rows, ['l', 'l', 'r', 'l', 'l'], REPORT_WIDTH - 2).map((l) => `  ${l}`)
  // a row whose last column wraps takes several lines: the note goes after the row's last one
  const starts = (line: string) => /^\s*[✓✗]/.test(line)
  let row = -1
  return lines.flatMap((line, i) => {
    if (starts(line)) row++
    const rowEnds = i + 1 === lines.length || starts(lines[i + 1])
    return rowEnds && ts[row]?.excused ? [line, `      without the generator's lateness: ${ts[row].excused} (PASS)`] : [line]
  })
}

/** A failing response's body on one line: whitespace runs collapsed, at most `max` characters. */
export function oneLineBody(body: string, max = FAILURE_BODY_CHARS): string {
  const flat = body.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** The run keeps at most 200 characters of each failing body; the terminal shows them whole. */
const FAILURE_BODY_CHARS = 200

/** result.failures as rows: request type, second of the run, status, body excerpt; in request-type then time order. */
export function failureRows(result: RunResult): Array<{type: string; t: number; status: string; body: string}> {
  return Object.entries(result.failures ?? {}).flatMap(([type, list]) =>
    [...list].sort((a, b) => a.t - b.t).map((f) => ({type, t: f.t, status: String(f.status), body: oneLineBody(f.body)})),
  )
}

/** --full: "First failing responses" with the time, status and body of each kept one. */
export function renderFailures(result: RunResult): string[] {
  const rows = failureRows(result)
  if (!rows.length) return []
  return ['', 'First failing responses', ...layout(rows.map((f) => [f.type, `${f.t.toFixed(1)} s`, f.status, f.body]), ['l', 'r', 'l', 'l'], REPORT_WIDTH - 2).map((l) => `  ${l}`)]
}

/** How far the measured value is from the limit, as a share of the limit; negative when failing. */
export function headroom(t: Pick<ThresholdResult, 'actual' | 'limit' | 'op'>): string {
  if (t.actual === null || t.limit === 0 || t.op === '==') return ''
  const h = t.op.startsWith('<') ? (t.limit - t.actual) / t.limit : (t.actual - t.limit) / t.limit
  return `headroom ${(h * 100).toFixed(0)}%`
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

/**
 * The verdict in one line, first in the report: "PASS: 3 thresholds and 2 invariants held",
 * "FAIL 99: 1 of 3 thresholds failed", "INVARIANT 98: …", "VOID 100: …", "REGRESSION 97: …".
 */
export function verdictLine(result: RunResult, regressions = 0): string {
  const v = result.verdict
  const nT = result.thresholds.length
  const nI = result.invariants.length
  const line = v.void
    ? `VOID 100: ${result.void!.kind === 'lateness' ? "the generator's late sends could have caused the failure" : 'the load generator could not keep its schedule'}`
    : v.invariantsFailed
      ? `INVARIANT 98: ${v.invariantsFailed} of ${nI} invariant(s) violated`
      : v.thresholdsFailed
        ? `FAIL 99: ${result.abort ? `aborted at ${result.abort.atMs / 1000} s by ${result.abort.threshold}; ` : ''}${v.thresholdsFailed} of ${nT} threshold(s) failed`
        : `PASS: ${nT} threshold(s) and ${nI} invariant(s) held${result.aborted ? ' (stopped early)' : ''}`
  return regressions ? `REGRESSION 97: ${regressions} figure(s) worse than the baseline (this run: ${line})` : line
}

/**
 * Why a threshold with abortOnFail stopped the run, or null: "ABORTED at 14 s of 30 s by
 * read.p95 < 200ms [run]: 312.0ms over the run so far. …".
 */
export function abortLine(result: RunResult): string | null {
  const a = result.abort
  if (!a) return null
  const scheduledS = result.phases.reduce((ms, p) => ms + p.durationMs, 0) / 1000
  return `ABORTED at ${a.atMs / 1000} s of ${scheduledS} s by ${a.threshold} [${a.scope}]: ${a.reason}. abortOnFail stopped the run there: what was not yet due is skipped, not failed.`
}

/**
 * Where the CPU went, from the run's CPU report (absent in runs without a stack and older files):
 * "cpu: server 0.80, database 0.62, generator 0.20 cores; machine idle 12% of 2 cores; CPU-s per 1,000 requests: server 0.53, database 0.41".
 */
export function cpuLine(result: RunResult): string | null {
  // a merged run holds one report per generator machine (a list): no single machine to describe
  const report = result.stats.cpu as CpuReport | CpuReport[] | null | undefined
  if (!report || Array.isArray(report)) return null
  const sentence = cpuSentence(report)
  if (!sentence) return null
  const requests = result.phases.reduce((n, p) => n + Object.values(p.requests).reduce((m, r) => m + r.completed, 0), 0)
  const per = Object.entries(cpuPer1000Requests(report, requests)).filter(([name, v]) => v !== null && name !== MACHINE)
  return `cpu: ${sentence}${per.length ? `; CPU-s per 1,000 requests: ${per.map(([name, v]) => `${name} ${v!.toFixed(2)}`).join(', ')}` : ''}`
}

/** The whole report as the run prints it and `livedrop report run.json` re-renders it: verdict first. */
export function renderReport(result: RunResult, options: RenderOptions = {}): string {
  const {color} = options
  const verdict = verdictLine(result, options.regressions)
  const head = `${result.scenario.name}${result.scenario.scale !== 1 ? ` ×${result.scenario.scale}` : ''} against ${result.target}: ${(result.durationMs / 1000).toFixed(1)} s, ${result.generator.connections} connections`
  const out = [paint(color, 1, paint(color, result.verdict.pass && !options.regressions ? 32 : 31, verdict)), ...wrap(head, REPORT_WIDTH), ...wrap(generatorHealthLine(result), REPORT_WIDTH)]
  const cpu = cpuLine(result)
  if (cpu) out.push(...wrap(cpu, REPORT_WIDTH))
  const aborted = abortLine(result)
  if (aborted) out.push(...wrap(aborted, REPORT_WIDTH))
  if (result.void?.kind === 'lateness') out.push(...wrap(`VOID RUN: ${result.void.reason}. Latency counts from each request's intended send time, so the failure may be the generator's, not the target's.`, REPORT_WIDTH))
  else if (result.void) out.push(...wrap(`VOID RUN: ${result.void.reason}. The figures below describe the generator, not the target.`, REPORT_WIDTH))
  if (result.thresholds.length) out.push('', 'Thresholds', ...renderThresholds(result).map((l) => marks(l, color)))
  if (result.invariants.length) {
    const rows = result.invariants.map((i) => [`${i.pass ? '✓' : '✗'} ${i.name}`, i.detail ?? ''])
    out.push('', 'Invariants', ...layout(rows, ['l', 'l'], REPORT_WIDTH - 2).map((l) => marks(`  ${l}`, color)))
  }
  const faults = faultLines(result)
  if (faults.length) out.push('', 'Faults', ...faults.flatMap((l) => wrap(`  ${l}`, REPORT_WIDTH)))
  const [tableHead, ...tableRows] = renderSummaryTable(result)
  out.push('', paint(color, 2, `Whole run (${(result.durationMs / 1000).toFixed(1)} s) — latency from the intended send time`), paint(color, 1, tableHead), ...tableRows)
  // series (stock over time) are for the HTML charts, not a line of text
  const stats = Object.entries(result.stats).filter(([, v]) => v === null || typeof v !== 'object')
  if (stats.length) out.push('', ...wrap(`engine: ${stats.map(([k, v]) => `${k} ${typeof v === 'number' ? v.toLocaleString('en-US') : String(v)}`).join(' · ')}`, REPORT_WIDTH, ' · '))
  if (options.full) out.push(...renderPhaseTables(result), ...renderFailures(result))
  return out.join('\n')
}

/** One live status line for a terminal: "drop-opens 23.0/50 s | 1,648/s of 1,650/s | errors 0 | late 0 | p99 41.2ms". */
export function progressLine(p: {elapsedMs: number; totalMs: number; phase: string; rate: number; targetRate: number; errors: number; late: number; p99Ms: number}): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US')
  return `${p.phase} ${(p.elapsedMs / 1000).toFixed(1)}/${(p.totalMs / 1000).toFixed(0)} s | ${n(p.rate)}/s of ${n(p.targetRate)}/s | errors ${n(p.errors)} | late ${n(p.late)} | p99 ${ms(p.p99Ms)}`
}
