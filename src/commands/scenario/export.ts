import {writeFile} from 'node:fs/promises'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {UsageError} from '../../core/errors.js'
import {exportK6} from '../../sim/export/k6.js'
import {parseSegment} from '../../sim/run/plan.js'
import {loadScenario} from '../../sim/scenario/loader.js'

export default class ScenarioExport extends BaseCommand {
  static override summary = 'Export a scenario as a TypeScript k6 script, to run the same traffic on k6 or k6-operator'
  static override description = `The requests come from the same route table the generator uses (src/sim/traffic/routes.ts).
One k6 scenario per request type with arrival-rate executors stepping with the phases, the
thresholds in k6 syntax, bearer tokens minted as \`livedrop serve\` verifies them (set LIVEDROP_SECRET), an
Idempotency-Key per order attempt with the file's retry rate. The script reads TARGET, DROP_ID and
LIVEDROP_SECRET from k6's environment (-e). Without --out the script goes to stdout.

Across N machines k6 splits the test with its own execution segments: k6-operator's TestRun with
parallelism: N gives each runner one, and --segment i/N bakes segment i into the script's options
(executionSegment, executionSegmentSequence) for a plain \`k6 run\` per machine. Each equal segment
also takes its share of the buyers, as \`scenario run --segment i/N\` does.`
  static override examples = [
    '<%= config.bin %> scenario export scenarios/celebrity-drop.yaml --format k6 --out drop.k6.ts',
    '<%= config.bin %> scenario export scenarios/celebrity-drop.yaml --format k6 --scale 4 > drop.k6.ts && k6 run -e TARGET=http://10.0.0.5:8080 -e DROP_ID=1 drop.k6.ts',
    '<%= config.bin %> scenario export scenarios/celebrity-drop.yaml --format k6 --segment 2/3 --out drop-2of3.k6.ts',
  ]
  static override args = {
    file: Args.string({description: 'scenario file (YAML or JSON)', required: true}),
  }
  static override flags = {
    format: Flags.string({description: 'output format', options: ['k6'], default: 'k6'}),
    out: Flags.string({description: 'write the script to this file instead of stdout'}),
    scale: Flags.string({description: 'multiply rates and sizes (as scenario run --scale)', default: '1'}),
    target: Flags.string({description: 'default base URL baked into the script (TARGET overrides it)', default: 'http://127.0.0.1:8080'}),
    segment: Flags.string({description: "i/n: this machine's share, as k6 execution segments in the script's options (k6-operator sets them itself)"}),
  }

  async run(): Promise<{format: string; scenario: string; out: string | null; script?: string}> {
    const {args, flags} = await this.parse(ScenarioExport)
    const scale = Number(flags.scale)
    if (!(scale > 0)) throw new UsageError('--scale', `expected a number > 0, got ${flags.scale}`)
    const segment = flags.segment === undefined ? undefined : parseSegment(flags.segment)
    const scenario = await loadScenario(args.file, {scale})
    const script = exportK6(scenario, {file: args.file, target: flags.target, segment})
    if (flags.out) {
      await writeFile(flags.out, script)
      this.note(`Wrote the k6 script for ${scenario.name} to ${flags.out}`)
      return {format: flags.format, scenario: scenario.name, out: flags.out}
    }
    if (!this.jsonEnabled()) process.stdout.write(script)
    return {format: flags.format, scenario: scenario.name, out: null, script}
  }
}
