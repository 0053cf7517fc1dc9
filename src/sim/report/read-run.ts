import {readFile} from 'node:fs/promises'
import Table from 'cli-table3'
import {UsageError} from '../../core/errors.js'
import {formatThresholdValue} from '../metrics/thresholds.js'
import type {RunResult} from '../metrics/result.js'

/** Reads a run file written by `scenario run --out` (or `report merge --out`). */
export async function readRun(file: string): Promise<RunResult> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(file, `cannot read the run file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      hint: 'Write one with `livedrop scenario run FILE --out run.json`.',
      cause: err,
    })
  }
  return parseRun(text, file)
}

/** Parses and sanity-checks run-file text; `file` only names it in errors. */
export function parseRun(text: string, file = '<run>'): RunResult {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new UsageError(file, `not JSON (${(err as Error).message})`, {hint: 'Pass a file written by `livedrop scenario run --out`.'})
  }
  const r = data as Partial<RunResult> | null
  if (!r || typeof r !== 'object' || r.kind !== 'livedrop-run') {
    throw new UsageError(file, 'not a livedrop run file (kind is not "livedrop-run")', {hint: 'Pass a file written by `livedrop scenario run --out`.'})
  }
  if (r.version !== 1) throw new UsageError(file, `run file version ${String(r.version)} is not supported (this livedrop reads version 1)`)
  if (!Array.isArray(r.phases) || !Array.isArray(r.series) || !r.scenario || !r.generator) {
    throw new UsageError(file, 'the run file is incomplete (phases, series, scenario or generator missing)')
  }
  return r as RunResult
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)}s` : v >= 10 ? v.toFixed(1) : v.toFixed(2))
const pct = (v: number) => `${(v * 100).toFixed(v > 0 && v < 0.01 ? 3 : 2)}%`

function table(head: string[], colAligns: Array<'left' | 'right'>, plain: boolean): Table.Table {
  return new Table({head, colAligns, style: plain ? {head: [], border: []} : {}})
}

/**
 * The run's report as text: per phase and request type the rates and corrected latency, then
 * thresholds, invariants and engine stats. `plain` drops colour (pipes and logs). Default true.
 */
export function renderRunTables(result: RunResult, options: {plain?: boolean} = {}): string {
  const plain = options.plain ?? true
  const out: string[] = []
  const head = `${result.scenario.name} against ${result.target} · ${(result.durationMs / 1000).toFixed(1)} s · ${result.generator.runs} generator run(s)`
  out.push(head)
  const t = table(
    ['phase', 'type', 'target/s', 'achieved/s', 'p50', 'p90', 'p95', 'p99', 'max', 'svc p99', 'errors', 'late', 'unsent'],
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    plain,
  )
  for (const p of result.phases) {
    for (const [type, s] of Object.entries(p.requests)) {
      const attempts = s.sent + s.unsent
      t.push([
        p.name,
        type,
        s.targetRate.toFixed(1),
        s.achievedRate.toFixed(1),
        ms(s.corrected.p50),
        ms(s.corrected.p90),
        ms(s.corrected.p95),
        ms(s.corrected.p99),
        ms(s.corrected.max),
        ms(s.service.p99),
        attempts ? `${s.errors} (${pct(s.errors / attempts)})` : '0',
        String(s.late),
        String(s.unsent),
      ])
    }
  }
  out.push('Latency in ms from the intended send time (coordinated-omission corrected); svc = service time.', t.toString())
  if (result.thresholds.length) {
    const th = table(['threshold', 'scope', 'actual', 'verdict'], ['left', 'left', 'right', 'left'], plain)
    for (const r of result.thresholds) th.push([r.expression, r.scope, formatThresholdValue(r.kind, r.actual), r.noData ? 'PASS (no data)' : r.pass ? 'PASS' : 'FAIL'])
    out.push(th.toString())
  }
  if (result.invariants.length) {
    const inv = table(['invariant', 'verdict', 'detail'], ['left', 'left', 'left'], plain)
    for (const i of result.invariants) inv.push([i.name, i.pass ? 'PASS' : 'FAIL', i.detail ?? ''])
    out.push(inv.toString())
  }
  const stats = Object.entries(result.stats).filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
  if (stats.length) {
    const st = table(['stat', 'value'], ['left', 'right'], plain)
    for (const [k, v] of stats) st.push([k, typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)])
    out.push(st.toString())
  }
  const v = result.verdict
  out.push(
    result.void
      ? `VOID: ${result.void.reason}`
      : `Verdict: ${v.pass ? 'PASS' : 'FAIL'} (${v.thresholdsFailed} threshold(s) and ${v.invariantsFailed} invariant(s) failed)${result.aborted ? ' — stopped early' : ''}`,
  )
  return out.join('\n')
}
