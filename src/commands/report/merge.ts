import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {UsageError} from '../../core/errors.js'
import {verdictError, type Verdict} from '../../sim/metrics/result.js'
import type {ThresholdResult} from '../../sim/metrics/thresholds.js'
import {mergeRuns} from '../../sim/report/merge.js'
import {readRunFile, writeRunFile} from '../../sim/report/run-file.js'
import {colorFor, renderReport} from '../../sim/report/tables.js'
import {REQUEST_GROUPS} from '../../sim/scenario/schema.js'

export default class ReportMerge extends BaseCommand {
  static override summary = 'Merge the run files of several generator machines exactly and evaluate thresholds on the whole'
  static override description = `HDR histograms add (the merged p99 is the p99 of every request, not an average of p99s), counts
and rates sum, per-second series align by second, generator runs add up. Thresholds are evaluated again on
the merged data and the command exits like a run would: 100 void (a generator stalled, or its late sends could have caused the failure), 98 invariant,
99 threshold, 0 pass. The runs must come from the same scenario file (same name, phases and thresholds).

The run files of a split run (\`scenario run --segment i/n\`) must be its n pieces: segments 1/n … n/n
each exactly once, the same --scale, seed and --start-at; the merged file is the whole scenario at that
scale. Files that do not fit together are refused (exit 2, naming them).`
  static override examples = [
    '<%= config.bin %> report merge gen-a.json gen-b.json gen-c.json --out merged.json',
    '<%= config.bin %> report merge runs/*.json --out merged.json && <%= config.bin %> report merged.json --html report.html',
    '<%= config.bin %> report merge seg-1.json seg-2.json --out merged.json',
  ]
  // the run files are variadic
  static override strict = false
  static override flags = {
    out: Flags.string({description: 'where to write the merged run file', required: true}),
  }

  async run(): Promise<{out: string; runs: number; verdict: Verdict; thresholds: ThresholdResult[]}> {
    const {argv, flags} = await this.parse(ReportMerge)
    const files = argv as string[]
    if (files.length < 1) throw new UsageError('FILES', 'give the run files to merge', {hint: 'livedrop report merge a.json b.json --out merged.json'})
    const runs = await Promise.all(files.map((f) => readRunFile(f)))
    const merged = mergeRuns(runs, REQUEST_GROUPS, files)
    await writeRunFile(flags.out, merged)
    this.log(renderReport(merged, {color: colorFor(process.stdout, process.env)}))
    this.note(`Merged ${files.length} file(s), ${merged.generator.runs} generator run(s), into ${flags.out}`)
    const err = verdictError(merged)
    if (err) throw err
    return {out: flags.out, runs: merged.generator.runs, verdict: merged.verdict, thresholds: merged.thresholds}
  }
}
