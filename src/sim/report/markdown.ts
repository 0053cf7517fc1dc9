import {appendFile} from 'node:fs/promises'
import {UsageError} from '../../core/errors.js'
import type {RunResult} from '../metrics/result.js'
import {formatChange, formatFigure, hiddenNote, shownFigures, type RunComparison} from './compare.js'
import {abortLine, failureRows, generatorHealthLine, summaryTableData, thresholdLines, verdictLine} from './tables.js'

export interface MarkdownOptions {
  /** A comparison with a baseline: its regressions make the verdict REGRESSION 97, its changed figures get a table. Default none. */
  comparison?: RunComparison
  /** With a comparison, list every compared figure, not only the changed ones. Default false. */
  all?: boolean
  /** Lines to add as notes under the verdict (e.g. the comparison's warnings). Default none. */
  warnings?: string[]
}

/** A table cell: one line, pipes escaped, HTML-significant characters escaped (GitHub renders HTML in Markdown). */
function cell(s: string): string {
  return s
    .replace(/\s+/g, ' ')
    .replace(/[&<>]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'})[c]!)
    .replace(/\|/g, '\\|')
    .trim()
}

function table(head: string[], align: Array<'l' | 'r' | 'c'>, rows: string[][]): string[] {
  const sep = align.map((a) => (a === 'r' ? '---:' : a === 'c' ? ':---:' : '---'))
  return [`| ${head.map(cell).join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)]
}

/**
 * The run for a CI page (GitHub's step summary, a PR comment): the verdict line first, then each
 * threshold with ✓/✗, measured vs limit and headroom, the invariants, the whole-run table (the
 * same figures as the terminal summary, from the same functions), the first failing responses,
 * and with a comparison the figures that changed.
 */
export function renderMarkdownSummary(result: RunResult, opts: MarkdownOptions = {}): string {
  const regressions = opts.comparison?.regressions.length ?? 0
  const verdict = verdictLine(result, regressions)
  const ok = result.verdict.pass && !regressions
  const scale = result.scenario.scale !== 1 ? ` ×${result.scenario.scale}` : ''
  const out = [
    `### ${ok ? '✅' : '❌'} ${cell(verdict)}`,
    '',
    `**${cell(result.scenario.name)}**${scale} against \`${result.target}\`: ${(result.durationMs / 1000).toFixed(1)} s, ${result.generator.connections} connections. ${cell(generatorHealthLine(result))}.`,
  ]
  const aborted = abortLine(result)
  if (aborted) out.push('', `> **ABORTED** ${cell(aborted.replace(/^ABORTED /, ''))}`)
  if (result.void) out.push('', `> **VOID RUN:** ${cell(result.void.reason)}`)
  for (const w of opts.warnings ?? []) out.push('', `> Warning: ${cell(w)}`)
  const ts = thresholdLines(result)
  if (ts.length) {
    const excused = ts.some((t) => t.excused)
    out.push(
      '',
      '#### Thresholds',
      '',
      ...table(
        ['', 'threshold', 'scope', 'measured', 'limit', 'headroom', ...(excused ? ["without the generator's lateness"] : [])],
        ['c', 'l', 'l', 'r', 'r', 'r', ...(excused ? (['r'] as const) : [])],
        ts.map((t) => [t.pass ? '✓' : '✗', t.expression, t.scope, t.measured, t.limit, t.headroom.replace(/^headroom /, ''), ...(excused ? [t.excused ? `${t.excused} (PASS)` : ''] : [])]),
      ),
    )
  }
  if (result.invariants.length) {
    out.push('', '#### Invariants', '', ...table(['', 'invariant', 'detail'], ['c', 'l', 'l'], result.invariants.map((i) => [i.pass ? '✓' : '✗', i.name, i.detail ?? ''])))
  }
  const d = summaryTableData(result)
  out.push('', `#### Whole run (${(result.durationMs / 1000).toFixed(1)} s), latency from the intended send time`, '', ...table(d.head, d.align, d.rows))
  const failures = failureRows(result)
  if (failures.length) {
    out.push('', '<details><summary>First failing responses</summary>', '', ...table(['request', 'at', 'status', 'body'], ['l', 'r', 'l', 'l'], failures.map((f) => [f.type, `${f.t.toFixed(1)} s`, f.status, f.body])), '', '</details>')
  }
  const c = opts.comparison
  if (c) {
    out.push('', `#### Compared with the baseline (tolerance ${(c.tolerance * 100).toFixed(0)}%)`, '')
    const shown = shownFigures(c, opts.all)
    if (shown.length) {
      out.push(
        ...table(
          ['phase', 'request', 'figure', 'baseline', 'this run', 'change', 'verdict', 'why'],
          ['l', 'l', 'l', 'r', 'r', 'r', 'l', 'l'],
          shown.map(({phase, type, m}) => [phase, type, m.metric, formatFigure(m.metric, m.baseline), formatFigure(m.metric, m.current), formatChange(m), m.verdict === 'worse' ? '**WORSE**' : m.verdict.toUpperCase(), m.reason]),
        ),
      )
    } else out.push("No figure changed beyond the tolerance and the runs' noise.")
    const note = hiddenNote(c, opts.all)
    if (note) out.push('', note)
    if (c.onlyInBaseline.length) out.push('', `Only in the baseline (not compared): ${cell(c.onlyInBaseline.join(', '))}`)
    if (c.onlyInCurrent.length) out.push('', `Only in this run (not compared): ${cell(c.onlyInCurrent.join(', '))}`)
  }
  return out.join('\n') + '\n'
}

/**
 * Appends a summary to a file, as GitHub Actions wants for $GITHUB_STEP_SUMMARY (several steps
 * append to the same file; a blank line keeps two summaries apart).
 */
export async function appendStepSummary(path: string, markdown: string): Promise<void> {
  try {
    await appendFile(path, markdown.endsWith('\n') ? `${markdown}\n` : `${markdown}\n\n`)
  } catch (err) {
    throw new UsageError('--summary-md', `cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      hint: 'Give a file in a directory that exists and that you can write to (in GitHub Actions, $GITHUB_STEP_SUMMARY is set for you).',
    })
  }
}
