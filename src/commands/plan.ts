import {readFile, writeFile} from 'node:fs/promises'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {createTable} from '../cli/table.js'
import {datasetFingerprint} from '../core/catalog/seed.js'
import {UsageError} from '../core/errors.js'
import {STOCK_STRATEGIES} from '../core/stock/index.js'
import {buildPlan, calibrationFrom, checkLines, costRows, loadTargets, planHeader, planRows, renderPlanHtml, renderPlanMarkdown, resolveTargets, runCheck, targetsFromFlags, type CalibrationSource, type Plan, type PlanCheck} from '../sim/plan/index.js'
import {readRunFile} from '../sim/report/run-file.js'
import {loadScenario} from '../sim/scenario/loader.js'

/** Characters per line of an answer in the terminal table (fits 120 columns with the other two). */
const ANSWER_WIDTH = 80

export default class PlanCommand extends BaseCommand {
  static override summary = 'Capacity plan from a measured run: servers, Postgres cores, hot rows, cache nodes, fan-out workers, storage, what breaks first'
  static override description = `Takes the costs measured in a run file (CPU per 1,000 requests of each request group per component,
orders/s one hot row carried, cache hit ratio, bytes per row) and sizes the platform for the targets:
serve processes and machines, Postgres primary cores, stock buckets, Redis cache nodes with the hottest
key's replicas and the domino check (the cache ring simulator), push fan-out workers vs pull, storage per
day and the idempotency-key purge cadence, and the first component to reach 100% as load grows.
Every answer shows its formula and where each input came from (measured, target, or assumed).
CPU per request falls as the load rises, so a light run's costs overstate it at the targets:
--calibrate CAP.json (a capacity run of this machine) scales them to what they are at capacity.
Targets come from --targets (YAML; \`livedrop plan --help\` lists the fields: readsPerSecond,
orderAttemptsPerSecond, users, creators, celebrityFollowers, dropsPerDay, stockPerDrop, strategy,
notificationDeadline, idempotencyRetention, headroom, coresPerServer, …) and the flags, which win;
the defaults are the platform's targets (1,500 reads/s, 150 order attempts/s, notify within 2 s) and a
celebrity with 50,000,000 followers. A run without CPU accounting is refused.

--check RUN.json is the plan's calibration: from the run's CPU costs it predicts this machine's capacity
(the highest multiple of the rates meeting the thresholds) for the busiest phase of --scenario FILE (by
default the run's own scenario), then measures it with \`scenario run FILE --mode capacity\` (on the
embedded default, or --db) and prints predicted vs measured and the error. The prediction stops at a
utilisation ceiling, not at 100% CPU: 80% by default (latency fails before the CPU is full), or the one
--calibrate FILE implies (an earlier capacity run or check, with this run's costs).`
  static override examples = [
    '<%= config.bin %> plan --from run.json',
    '<%= config.bin %> plan --from run.json --targets plan.yaml --md plan.md --html plan.html',
    '<%= config.bin %> plan --from run.json --reads 50000 --orders 2000 --followers 50,000,000 --headroom 40%',
    '<%= config.bin %> plan --from run.json --calibrate cap.json',
    '<%= config.bin %> plan --check run.json --scenario order-heavy.yaml --json > check.json',
    '<%= config.bin %> plan --check run.json --scenario read-heavy.yaml --calibrate check.json',
  ]
  static override flags = {
    from: Flags.string({description: 'run file (JSON) from `livedrop scenario run --out` with CPU accounting', exactlyOne: ['from', 'check']}),
    check: Flags.string({description: 'run file (JSON) with CPU accounting: predict the capacity of --scenario from its costs, measure it, compare', helpGroup: 'CHECK'}),
    scenario: Flags.string({description: "with --check: the scenario whose mix to predict and measure [default: the run's own scenario file]", dependsOn: ['check'], helpGroup: 'CHECK'}),
    calibrate: Flags.string({description: "a capacity result (`scenario run --mode capacity --out`) or check (--json): with --from, its measured capacity scales the run's costs to what they are at capacity; with --check, it sets the ceiling [default: 80%]"}),
    scale: Flags.string({description: "with --check: multiply the scenario's rates and dataset sizes [default: the run's scale]", dependsOn: ['check'], helpGroup: 'CHECK'}),
    'step-seconds': Flags.integer({description: 'with --check: seconds per capacity step [default: 20]', min: 1, dependsOn: ['check'], helpGroup: 'CHECK'}),
    'max-scale': Flags.string({description: 'with --check: the highest multiple of the rates to measure [default: unbounded]', dependsOn: ['check'], helpGroup: 'CHECK'}),
    db: Flags.string({description: 'with --check: the database to measure on: embedded Postgres in ./.livedrop by default, `memory`, a directory, or postgres://… [env: DATABASE_URL]', dependsOn: ['check'], helpGroup: 'CHECK'}),
    targets: Flags.string({description: 'targets file (YAML); the flags below override it'}),
    md: Flags.string({description: 'write the plan as Markdown (a design doc\'s estimate section) to this file'}),
    html: Flags.string({description: 'write the plan as HTML with the utilisation-against-load chart to this file'}),
    reads: Flags.string({description: 'peak reads/s [default: 1500]', helpGroup: 'TARGETS'}),
    orders: Flags.string({description: 'peak order attempts/s [default: 150]', helpGroup: 'TARGETS'}),
    writes: Flags.string({description: 'peak writes/s (follow, unfollow, product edits) [default: 0]', helpGroup: 'TARGETS'}),
    users: Flags.string({description: 'users [default: 100,000,000]', helpGroup: 'TARGETS'}),
    creators: Flags.string({description: 'creators [default: 1,000,000]', helpGroup: 'TARGETS'}),
    celebrities: Flags.string({description: 'celebrity creators [default: 1,000]', helpGroup: 'TARGETS'}),
    followers: Flags.string({description: 'followers of the biggest celebrity [default: 50,000,000]', helpGroup: 'TARGETS'}),
    'drops-per-day': Flags.string({description: 'drops per day [default: 10,000]', helpGroup: 'TARGETS'}),
    stock: Flags.string({description: 'units per drop [default: 1,000]', helpGroup: 'TARGETS'}),
    strategy: Flags.string({description: "stock strategy [default: the run's]", options: STOCK_STRATEGIES, helpGroup: 'TARGETS'}),
    deadline: Flags.string({description: 'notification deadline, e.g. 2s [default: 2s]', helpGroup: 'TARGETS'}),
    retention: Flags.string({description: 'idempotency-key retention, e.g. 72h or 3d [default: 72h]', helpGroup: 'TARGETS'}),
    headroom: Flags.string({description: 'CPU kept free at peak, e.g. 30% [default: 30%]', helpGroup: 'TARGETS'}),
    cores: Flags.string({description: 'cores per server [default: 8]', helpGroup: 'TARGETS'}),
  }

  async run(): Promise<Plan | PlanCheck> {
    const {flags} = await this.parse(PlanCommand)
    const calibration = flags.calibrate ? calibrationFrom(await readJson(flags.calibrate), flags.calibrate) : null
    if (flags.check) return this.check(flags.check, flags, calibration)
    const fromFlags = targetsFromFlags(flags)
    const fromFile = flags.targets ? await loadTargets(flags.targets) : {}
    const run = await readRunFile(flags.from!)
    const plan = buildPlan(run, resolveTargets(fromFile, fromFlags), calibration)
    if (flags.md) await writeFile(flags.md, renderPlanMarkdown(plan) + '\n')
    if (flags.html) await writeFile(flags.html, renderPlanHtml(plan))

    for (const line of planHeader(plan)) this.log(line)
    const costs = costRows(plan)
    if (costs.length) {
      const t = createTable(['component', 'CPU-s / 1,000 reads', '/ 1,000 orders', '/ 1,000 writes'], ['left', 'right', 'right', 'right'])
      for (const r of costs) t.push(r)
      this.log(t.toString())
    }
    const table = createTable(['question', 'answer', ''], ['left', 'left', 'left'])
    for (const r of planRows(plan, ANSWER_WIDTH)) table.push(r)
    this.log(table.toString())
    if (plan.breaksFirst) this.log(`Breaks first: ${plan.breaksFirst.component} at ×${plan.breaksFirst.atLoad.toFixed(2)} the targets.`)
    for (const a of plan.assumed) this.log(`Assumed: ${a}.`)
    for (const n of plan.notMeasured) this.log(`Not measured: ${n}.`)
    if (flags.md) this.note(`Wrote markdown to ${flags.md}`)
    if (flags.html) this.note(`Wrote html to ${flags.html}`)
    return plan
  }

  private async check(file: string, flags: {scenario?: string; scale?: string; 'step-seconds'?: number; 'max-scale'?: string; db?: string}, calibration: CalibrationSource | null): Promise<PlanCheck> {
    const run = await readRunFile(file)
    const scenarioFile = flags.scenario ?? run.scenario.file
    if (!scenarioFile) throw new UsageError('--scenario', `the run file ${file} names no scenario file`, {hint: 'Pass the scenario whose mix to check: --scenario FILE.'})
    const scale = flags.scale === undefined ? run.scenario.scale : Number(flags.scale)
    if (!(scale > 0)) throw new UsageError('--scale', `expected a number > 0, got ${flags.scale}`, {hint: 'For example --scale 0.5.'})
    const maxScale = flags['max-scale'] === undefined ? undefined : Number(flags['max-scale'])
    if (maxScale !== undefined && !(maxScale > 0)) throw new UsageError('--max-scale', `expected a multiple of the rates > 0, got ${flags['max-scale']}`, {hint: 'For example --max-scale 4.'})
    const scenario = await loadScenario(scenarioFile, {scale})
    const config = this.config_({db: flags.db}, {cache: scenario.engine.cache})
    // as `scenario run`: on the embedded default the scenario's dataset has a database of its own, seeded once
    const ownDatabase = config.dbSource === 'default' && config.db.kind === 'embedded'
    const db = ownDatabase ? {...config.db, database: `scenario_${datasetFingerprint(scenario.dataset)}`} : config.db
    const controller = new AbortController()
    const stop = () => controller.abort()
    process.once('SIGINT', stop)
    let result: PlanCheck
    try {
      result = await runCheck({
        run,
        scenario,
        file: scenarioFile,
        scale,
        calibration,
        db,
        ownDatabase,
        secret: config.secret,
        redisUrl: config.redisUrl,
        cache: config.cache,
        stepSeconds: flags['step-seconds'],
        maxScale,
        signal: controller.signal,
        onStage: (stage, detail) => this.note(`[${stage}] ${detail}`),
        onStep: (s) => this.note(`  ×${s.scale}: ${s.verdict.toUpperCase()}${s.reason ? ` (${s.reason})` : ''}`),
      })
    } finally {
      process.off('SIGINT', stop)
    }
    for (const line of checkLines(result)) this.log(line)
    return result
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError('--calibrate', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {hint: 'Check the path.'})
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError('--calibrate', `${file} is not JSON: ${(err as Error).message}`, {hint: 'Pass the JSON of a capacity run (--out) or of `plan --check --json`.'})
  }
}
