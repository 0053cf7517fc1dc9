import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {ScenarioInvalidError, UsageError} from '../../core/errors.js'
import {loadScenario, type ScenarioProblem} from '../../sim/scenario/loader.js'
import {phasePeakRates} from '../../sim/load/arrivals.js'
import {thresholdSpec, type Scenario} from '../../sim/scenario/schema.js'

const sumRates = (rates: Record<string, number>) => Object.values(rates).reduce((a, r) => a + r, 0)

export default class ScenarioValidate extends BaseCommand {
  static override summary = 'Check scenario files without running them (exit 4 naming file:line:column and the field)'
  static override examples = ['<%= config.bin %> scenario validate scenarios/*.yaml', '<%= config.bin %> scenario validate my-drop.yaml --scale 2 --json']
  static override strict = false
  static override args = {file: Args.string({description: 'scenario files (YAML or JSON)', required: true})}
  static override flags = {scale: Flags.string({description: 'validate as scaled by this factor', default: '1'})}

  async run(): Promise<{scenarios: Array<{file: string; name: string; phases: number; durationS: number; peakRate: number; thresholds: number}>}> {
    const {argv, flags} = await this.parse(ScenarioValidate)
    const scale = Number(flags.scale)
    if (!(scale > 0)) throw new UsageError('--scale', `expected a number > 0, got ${flags.scale}`)
    const scenarios = []
    const problems: ScenarioProblem[] = []
    const invalid: string[] = []
    const hints = new Set<string>()
    // every file is checked, so one bad file does not hide the next
    for (const file of argv as string[]) {
      let s: Scenario
      try {
        s = await loadScenario(file, {scale})
      } catch (err) {
        if (!(err instanceof ScenarioInvalidError)) throw err
        this.note(err.message)
        problems.push(...((err.details?.problems as ScenarioProblem[] | undefined) ?? []))
        invalid.push(file)
        if (err.hint) hints.add(err.hint)
        continue
      }
      const spec = thresholdSpec(s)
      const peakRate = Math.round(10 * Math.max(...s.phases.map((p) => sumRates(phasePeakRates(p))))) / 10
      const summary = {file, name: s.name, phases: s.phases.length, durationS: s.phases.reduce((a, p) => a + p.duration, 0) / 1000, peakRate, thresholds: spec.run.length + Object.values(spec.phases).flat().length}
      this.log(`${file}: ${s.name} — ${summary.phases} phases, ${summary.durationS} s, peak ${summary.peakRate} req/s, ${summary.thresholds} thresholds: OK`)
      scenarios.push(summary)
    }
    if (invalid.length > 0) {
      // with --json the problems (file, line, column, field, message) are in the output, beside the files that passed
      throw new ScenarioInvalidError(`${invalid.length} of ${(argv as string[]).length} scenario files are invalid: ${invalid.join(', ')}`, {
        hint: [...hints].join(' '),
        details: {problems, scenarios},
      })
    }
    return {scenarios}
  }
}
