import {writeFile} from 'node:fs/promises'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {UsageError} from '../../core/errors.js'
import type {CapacityResult} from '../../sim/capacity/result.js'
import type {Verdict} from '../../sim/metrics/result.js'
import {renderCapacityPage, renderCapacityTable} from '../../sim/report/capacity.js'
import type {ThresholdResult} from '../../sim/metrics/thresholds.js'
import {checkComparable, compareRuns, comparisonWarnings, parseTolerance, regressionError, renderComparison, type RunComparison} from '../../sim/report/compare.js'
import {renderHtml} from '../../sim/report/html.js'
import {renderJUnit} from '../../sim/report/junit.js'
import {appendStepSummary, renderMarkdownSummary} from '../../sim/report/markdown.js'
import {readResultFile, readRunFile} from '../../sim/report/run-file.js'
import {colorFor, renderReport} from '../../sim/report/tables.js'

export interface ReportOutput {
  scenario: string
  verdict: Verdict
  thresholds: ThresholdResult[]
  comparison: RunComparison | null
  /** Files written: html, junit, summary-md. */
  wrote: Record<string, string>
}

export default class Report extends BaseCommand {
  static override summary = 'Re-render a saved run or capacity search; compare it with a baseline, write an HTML report or JUnit XML'
  static override description = `Reads a run file written by \`livedrop scenario run --out\` (or \`report merge --out\`).
--compare marks throughput, p50/p95/p99 and error rate per phase and request type as better / same / worse.
A change counts only beyond --tolerance AND outside the runs' own second-to-second spread (a Mann-Whitney
test on the per-second samples, alpha 0.05; latency changes under 1 ms and error-rate changes under 0.1
percentage points are "same"). Any "worse" exits 97. Only the figures that changed are listed (--all lists every one). The run's own verdict does not change the exit code here.
A baseline of another scenario, or with no phase and request type in common, is refused (exit 2); a
different --scale or dataset seed is warned about. --full adds a table per phase with service time and
the generator's schedule, and the first failing responses. --summary-md appends the verdict, thresholds, the
whole-run table and the changed figures as Markdown (pass $GITHUB_STEP_SUMMARY in GitHub Actions).`
  static override examples = [
    '<%= config.bin %> report run.json',
    '<%= config.bin %> report run.json --compare baseline.json --tolerance 10%',
    '<%= config.bin %> report run.json --html report.html --junit results.xml',
    '<%= config.bin %> report run.json --compare baseline.json --summary-md "$GITHUB_STEP_SUMMARY"',
    '<%= config.bin %> report capacity.json --html capacity.html',
  ]
  static override args = {
    run: Args.string({description: 'run file (JSON) to report on', required: true}),
  }
  static override flags = {
    compare: Flags.string({description: 'baseline run file to compare with (exit 97 on a regression)'}),
    tolerance: Flags.string({description: 'relative change allowed before a figure counts as changed', default: '10%'}),
    html: Flags.string({description: 'write a self-contained HTML report with charts to this file'}),
    junit: Flags.string({description: 'write thresholds and invariants (and compared figures) as JUnit XML to this file'}),
    full: Flags.boolean({description: 'add a table per phase with service time and the schedule (late, queued, unsent sends), and the first failing responses'}),
    all: Flags.boolean({description: 'with --compare, list every compared figure, not only those that changed beyond the tolerance and the noise'}),
    'summary-md': Flags.string({description: 'append the verdict, thresholds and whole-run table (and the changed figures) as Markdown to this file, e.g. $GITHUB_STEP_SUMMARY'}),
  }

  async run(): Promise<ReportOutput | CapacityResult> {
    const {args, flags} = await this.parse(Report)
    const tolerance = parseTolerance(flags.tolerance)
    const result = await readResultFile(args.run)
    if (result.kind === 'livedrop-capacity') return this.capacity(result, flags)
    const baseline = flags.compare ? await readRunFile(flags.compare) : null
    const comparison = baseline ? compareRuns(result, baseline, {tolerance}) : null
    if (baseline && comparison) checkComparable(result, baseline, comparison)
    const warnings = baseline ? comparisonWarnings(result, baseline) : []
    if (baseline && (baseline.void || result.void)) warnings.push(`${baseline.void ? 'the baseline' : 'this run'} is void (its generator stalled, or its late sends could have caused its failure); the comparison says little about the target`)
    for (const w of warnings) this.note(`Warning: ${w}.`)
    const wrote: Record<string, string> = {}
    if (flags.html) {
      await writeFile(flags.html, renderHtml(result, {comparison: comparison ?? undefined}))
      wrote.html = flags.html
    }
    if (flags.junit) {
      await writeFile(flags.junit, renderJUnit(result, comparison ?? undefined))
      wrote.junit = flags.junit
    }
    if (flags['summary-md']) {
      await appendStepSummary(flags['summary-md'], renderMarkdownSummary(result, {comparison: comparison ?? undefined, all: flags.all, warnings}))
      wrote.markdown = flags['summary-md']
    }
    const color = colorFor(process.stdout, process.env)
    this.log(renderReport(result, {color, full: flags.full, regressions: comparison?.regressions.length}))
    if (comparison) this.log(renderComparison(comparison, {plain: !color, all: flags.all}))
    for (const [kind, file] of Object.entries(wrote)) this.note(`Wrote ${kind} to ${file}`)
    const err = comparison && regressionError(comparison)
    if (err) throw err
    return {scenario: result.scenario.name, verdict: result.verdict, thresholds: result.thresholds, comparison, wrote}
  }

  /** A capacity search (`scenario run --mode capacity --out`): its step table, and --html its chart page. */
  private async capacity(result: CapacityResult, flags: {compare?: string; junit?: string; 'summary-md'?: string; html?: string}): Promise<CapacityResult> {
    for (const flag of ['compare', 'junit', 'summary-md'] as const) {
      if (flags[flag]) throw new UsageError(`--${flag}`, 'works on run files; this is a capacity search', {hint: 'Pass a file written by `scenario run --out` in the open mode, or leave the flag out.'})
    }
    if (flags.html) {
      await writeFile(flags.html, renderCapacityPage(result))
      this.note(`Wrote html to ${flags.html}`)
    }
    this.log(renderCapacityTable(result, {color: colorFor(process.stdout, process.env)}))
    return result
  }
}
