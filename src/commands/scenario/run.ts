import {Args, Flags} from '@oclif/core'
import {randomUUID} from 'node:crypto'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {datasetFingerprint} from '../../core/catalog/seed.js'
import {UsageError, redactUrl, type LivedropError} from '../../core/errors.js'
import {capacityVerdictError} from '../../sim/capacity/result.js'
import {renderCapacityTable} from '../../sim/report/capacity.js'
import {runScenario, verdictError, type CapacityResult, type RunHandle, type RunOptions, type RunResult, type SaturateResult} from '../../sim/run/index.js'
import {startDashboard} from '../../sim/report/dashboard.js'
import {appendStepSummary, renderMarkdownSummary} from '../../sim/report/markdown.js'
import {writeRunFile} from '../../sim/report/run-file.js'
import {openResultStreams} from '../../sim/report/stream.js'
import {colorFor, progressLine, renderReport} from '../../sim/report/tables.js'
import {parseSegment, parseStartAt} from '../../sim/run/plan.js'
import {loadScenario} from '../../sim/scenario/loader.js'
import {loadProfile} from '../../sim/traffic/profile.js'

export default class ScenarioRun extends BaseCommand {
  static override summary = 'Replay a scenario at fixed arrival rates, report honest latency, check invariants, gate CI'
  static override description = `With no --target the whole stack starts in-process on an ephemeral port (the embedded Postgres in
./.livedrop, in a database of the scenario's dataset, and the scenario's cache nodes, unless
--db/--redis/--cache say otherwise), seeds the scenario's dataset, runs, and tears down. The embedded
dataset is seeded once and reused by later runs of any scenario with the same dataset section.
With --target it drives a running deployment (give the same --secret) and creates the drop and
checks the invariants through --db.

An empty database is seeded; one that already holds data is reused (add --reset to wipe and reseed).
Latency is measured from each request's intended send time (coordinated-omission corrected) and as
service time.

With --target and --profile FILE it drives any API of this kind (its paths, ids, auth and answers as the profile describes them; \`livedrop profile check\` tries one) with no --db: the profile's setup calls make the drop, and the black-box invariants are checked from the answers alone (acked_units_le_stock, one_order_per_key, replay_identical; no_sold_out_then_sale as a warning). Not checked then, as only a database shows them: no_oversell and stock_conserved in the target's tables, every_ack_persisted (an acknowledged order lost later), duplicates the answers do not show, and the notification latency (notify.* thresholds have no data).

Exit codes: 0 pass, 99 threshold failed, 98 invariant violated, 100 void run (the
generator stalled, or its late sends could have caused the failure), 4 invalid scenario file, 3 target unreachable.`
  static override examples = [
    '<%= config.bin %> scenario run scenarios/celebrity-drop.yaml',
    '<%= config.bin %> scenario run scenarios/sold-out-race.yaml --scale 0.5 --out run.json',
    '<%= config.bin %> scenario run scenarios/celebrity-drop.yaml --db postgres://root@127.0.0.1:5432/test --redis redis://127.0.0.1:6379 --cache redis://127.0.0.1:6379',
    '<%= config.bin %> scenario run scenarios/steady-browse.yaml --target http://127.0.0.1:8080 --db postgres://root@127.0.0.1:5432/test --secret "$LIVEDROP_SECRET"',
    '<%= config.bin %> scenario run scenarios/steady-browse.yaml --mode saturate',
    '<%= config.bin %> scenario run scenarios/sold-out-race.yaml --target http://127.0.0.1:3000 --profile profiles/shop.yaml',
  ]
  static override args = {file: Args.string({description: 'scenario file (YAML or JSON)', required: true})}
  static override flags = {
    ...dbFlags,
    target: Flags.string({description: 'base URL of a running `livedrop serve` to drive instead of an in-process stack'}),
    redis: Flags.string({description: 'Redis for redis-gate, invalidation and SSE [env: REDIS_URL]'}),
    cache: Flags.string({description: "cache nodes (overrides the scenario's engine.cache) [env: LIVEDROP_CACHE]"}),
    secret: Flags.string({description: "token secret; with --target, the deployment's [env: LIVEDROP_SECRET]"}),
    profile: Flags.string({description: 'target profile (YAML/JSON, see profiles/): drive another API through it, with --target and no --db'}),
    fixture: Flags.string({description: 'with --profile: a fixture value given instead of made, name=value (e.g. drop=9f1c…); repeatable', multiple: true, dependsOn: ['profile']}),
    scale: Flags.string({description: 'multiply rates and dataset sizes', default: '1'}),
    segment: Flags.string({
      description: "i/n: send this generator's share of the load, one of n generators (with --target and --profile); merge the n run files with `livedrop report merge`",
      helpGroup: 'SPLIT',
    }),
    'start-at': Flags.string({description: 'hold the schedule until this instant (ISO time or epoch ms, at most 24 h ahead) so several generators start together', helpGroup: 'SPLIT'}),
    out: Flags.string({description: 'write the full result (HDR histograms encoded) as JSON for `livedrop report`'}),
    reset: Flags.boolean({description: 'wipe a non-empty database and seed the scenario dataset'}),
    full: Flags.boolean({description: 'add a table per phase with service time and the schedule (late, queued, unsent sends)'}),
    'step-seconds': Flags.integer({description: 'seconds per step: --mode saturate (default 5) or capacity (default 20; the phases are compressed to it)', min: 1}),
    'min-scale': Flags.string({description: 'with --mode capacity: exit 99 when the capacity is below this multiple of the rates (a CI gate)'}),
    'max-scale': Flags.string({description: 'with --mode capacity: the highest multiple of the rates to try'}),
    probe: Flags.boolean({description: "with --mode capacity: bound the search with autocannon's closed-model ceiling first", default: true, allowNo: true}),
    'out-stream': Flags.string({description: 'write one NDJSON line per second per request type while the run goes (counts, corrected and service percentiles, errors, statuses)', helpGroup: 'RESULTS'}),
    'prometheus-rw': Flags.string({description: 'push the same per-second series to this Prometheus remote-write URL with a run_id label', helpGroup: 'RESULTS'}),
    'summary-md': Flags.string({description: 'append the verdict, thresholds and table as Markdown to this file (GITHUB_STEP_SUMMARY is used when set)', helpGroup: 'RESULTS'}),
    dashboard: Flags.boolean({description: 'serve a live dashboard on 127.0.0.1 while the run goes (its URL is printed)', helpGroup: 'RESULTS'}),
    'dashboard-port': Flags.integer({description: 'port of --dashboard (default: any free port)', min: 1, max: 65535, dependsOn: ['dashboard'], helpGroup: 'RESULTS'}),
    mode: Flags.string({
      description: 'open: the fixed arrival rates; capacity: the highest multiple of them meeting the thresholds (open model); saturate: the closed-model throughput ceiling (autocannon), never the capacity',
      options: ['open', 'capacity', 'saturate'],
      default: 'open',
    }),
  }

  async run(): Promise<RunResult | SaturateResult | CapacityResult> {
    const {args, flags} = await this.parse(ScenarioRun)
    const scale = Number(flags.scale)
    if (!(scale > 0)) throw new UsageError('--scale', `expected a number > 0, got ${flags.scale}`, {hint: 'For example --scale 0.5 or --scale 4.'})
    if (flags.target !== undefined) checkTarget(flags.target)
    const segment = flags.segment === undefined ? undefined : parseSegment(flags.segment)
    const startAt = flags['start-at'] === undefined ? undefined : parseStartAt(flags['start-at'])
    const scenario = await loadScenario(args.file, {scale})
    const profile = flags.profile === undefined ? undefined : await loadProfileFlags(flags)
    const config = this.config_(flags, {cache: scenario.engine.cache})
    // without --db or DATABASE_URL the run gets a database of its own, named after its dataset,
    // in the embedded Postgres: seeded once, reused by later runs, never mixed with other data
    const ownDatabase = config.dbSource === 'default' && config.db.kind === 'embedded'
    const db = ownDatabase ? {...config.db, database: `scenario_${datasetFingerprint(scenario.dataset)}`} : config.db
    if (flags.target && !profile && config.dbSource !== 'flag' && config.dbSource !== 'env') {
      throw new UsageError('--db', 'is required with --target: the drop is created and the invariants are checked in the deployment\'s database', {
        hint: 'Pass --db postgres://… (the database the target serves).',
      })
    }
    const options: RunOptions = {
      scenario,
      file: args.file,
      scale,
      target: flags.target ?? null,
      db,
      ownDatabase,
      redisUrl: config.redisUrl,
      cache: config.cache,
      secret: config.secret,
      reset: flags.reset,
      ...profile,
      ...(segment ? {segment} : {}),
      ...(startAt === undefined ? {} : {startAt}),
    }
    if (flags.mode === 'saturate') return this.saturate({...options, mode: 'saturate', stepSeconds: flags['step-seconds']})
    if (flags.mode === 'capacity') {
      return this.capacity(
        {...options, mode: 'capacity', stepSeconds: flags['step-seconds'], minScale: scaleFlag('--min-scale', flags['min-scale']), maxScale: scaleFlag('--max-scale', flags['max-scale']), probe: flags.probe},
        flags.out,
      )
    }

    const runId = randomUUID()
    // both open before the run, so a path that cannot be written or a port in use is exit 2 before anything starts
    const streams = flags['out-stream'] || flags['prometheus-rw'] ? await openResultStreams({ndjson: flags['out-stream'], prometheusRw: flags['prometheus-rw'], runId, labels: {scenario: scenario.name}}) : null
    const dashboard = flags.dashboard ? await startDashboard({port: flags['dashboard-port'], title: scenario.name}) : null
    if (dashboard) this.note(`Dashboard: ${dashboard.url}`)
    const handle = runScenario(options)
    handle.on('second', (p) => {
      streams?.second(p)
      dashboard?.second(p)
    })
    handle.on('phase', (p) => dashboard?.phase(p))
    handle.on('fault', (f) => {
      streams?.fault(f)
      dashboard?.fault(f)
    })
    let result: RunResult
    try {
      result = await this.follow(handle)
      dashboard?.done(result)
    } finally {
      const closed = await streams?.close()
      for (const w of closed?.warnings ?? []) this.note(`Warning: ${w}`)
      if (closed?.ndjson) this.note(`Wrote ${closed.ndjson.file} (${closed.ndjson.lines} lines)`)
      await dashboard?.close()
    }
    if (flags.out) {
      await writeRunFile(flags.out, result)
      this.note(`Wrote ${flags.out}`)
    }
    // in GitHub Actions the job's summary page gets the verdict without a flag
    const summaryFile = flags['summary-md'] ?? process.env.GITHUB_STEP_SUMMARY
    if (summaryFile) await appendStepSummary(summaryFile, renderMarkdownSummary(result))
    if (!this.jsonEnabled()) this.log(renderReport(result, {color: colorFor(process.stdout, process.env), full: flags.full}))
    return this.conclude(result, verdictError(result))
  }

  private async saturate(options: RunOptions & {mode: 'saturate'}): Promise<SaturateResult> {
    const handle = runScenario(options)
    handle.on('step', (step) => this.note(`  ${step.connections} connections: ${step.throughput.toFixed(0)} req/s, p95 ${step.latency.p95.toFixed(1)} ms ${step.pass ? 'PASS' : 'FAIL'}`))
    const result = await this.follow(handle)
    const t = createTable(['connections', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'thresholds'])
    for (const s of result.steps) t.push([s.connections, s.throughput.toFixed(0), s.latency.p50.toFixed(1), s.latency.p95.toFixed(1), s.latency.p99.toFixed(1), s.errors, s.pass ? 'PASS' : 'FAIL'])
    this.log(t.toString())
    this.log(result.best ? `Highest throughput meeting the thresholds: ${result.best.throughput.toFixed(0)} req/s at ${result.best.connections} connections (${result.stoppedBecause}).` : `Even the first step failed the thresholds (${result.stoppedBecause}).`)
    return result
  }

  private async capacity(options: RunOptions & {mode: 'capacity'}, out: string | undefined): Promise<CapacityResult> {
    const handle = runScenario(options)
    handle.on('capacityStep', (s) => this.note(`  ×${s.scale}: ${s.verdict.toUpperCase()}${s.reason ? ` (${s.reason})` : ''}`))
    const result = await this.follow(handle)
    if (out) {
      await writeRunFile(out, result)
      this.note(`Wrote ${out}`)
    }
    if (!this.jsonEnabled()) this.log(renderCapacityTable(result, {color: colorFor(process.stdout, process.env)}))
    return this.conclude(result, capacityVerdictError(result))
  }

  /** Follows a run: stages and live progress on stderr; Ctrl-C stops it and the result still comes. */
  private async follow<R>(handle: RunHandle<R>): Promise<R> {
    handle.on('stage', (name, detail) => this.note(`[${name}] ${detail}`))
    const stop = () => handle.abort()
    process.once('SIGINT', stop)
    this.showProgress(handle)
    try {
      return await handle.result
    } finally {
      process.off('SIGINT', stop)
      this.clearProgress()
    }
  }

  /** The result is the output even when the verdict fails (oclif prints only returned values), then the verdict's exit code. */
  private conclude<R>(result: R, verdict: LivedropError | null): R {
    if (verdict && this.jsonEnabled()) {
      this.logJson(result)
      return this.exit(verdict.exitCode)
    }
    if (verdict) throw verdict
    return result
  }

  private progressTimer: NodeJS.Timeout | undefined
  private lastProgress = ''

  /** Live progress on stderr: rewritten in place on a TTY, a line every 10 s otherwise. */
  private showProgress(handle: RunHandle<unknown>): void {
    if (this.jsonEnabled()) return
    const tty = Boolean(process.stderr.isTTY)
    handle.on('progress', (p) => {
      this.lastProgress = progressLine(p)
      if (tty) process.stderr.write(`\r\x1b[2K${this.lastProgress}`)
    })
    if (!tty) this.progressTimer = setInterval(() => this.lastProgress && process.stderr.write(this.lastProgress + '\n'), 10_000)
  }

  private clearProgress(): void {
    clearInterval(this.progressTimer)
    if (process.stderr.isTTY && !this.jsonEnabled()) process.stderr.write('\r\x1b[2K')
  }
}

/** --profile and --fixture as run options: a profile run drives --target with no database (see the description). */
async function loadProfileFlags(flags: {profile?: string; fixture?: string[]; target?: string; db?: string; mode: string}): Promise<Pick<RunOptions, 'profile' | 'fixture'>> {
  if (!flags.target) throw new UsageError('--profile', 'needs --target: a profile describes a running API to drive', {hint: 'For example --target http://127.0.0.1:3000 --profile profiles/shop.yaml.'})
  if (flags.db !== undefined) {
    throw new UsageError('--db', "is not used with --profile: the database invariants read livedrop's own tables; a profile run checks the answers instead", {
      hint: 'Drop --profile to drive livedrop serve with its database checks (its own profile is built in), or drop --db.',
    })
  }
  if (flags.mode !== 'open') throw new UsageError('--mode', `${flags.mode} is not available with --profile (open only)`)
  const fixture: Record<string, string> = {}
  for (const f of flags.fixture ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(f)
    if (!m) throw new UsageError('--fixture', `expected name=value, got "${f}"`, {hint: 'For example --fixture drop=42 --fixture stock=100.'})
    fixture[m[1]] = m[2]
  }
  return {profile: await loadProfile(flags.profile!), fixture}
}

/** A rate multiple: a number > 0, or undefined when the flag was not given. */
function scaleFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const k = Number(text)
  if (!(k > 0)) throw new UsageError(flag, `expected a multiple of the scenario's rates > 0, got ${text}`, {hint: `For example ${flag} 3 (three times the scenario's rates).`})
  return k
}

/** `--target "$TARGET"` with the variable unset, or a URL that is not http(s), is a usage error before anything starts. */
function checkTarget(target: string): void {
  let ok = false
  try {
    ok = /^https?:$/.test(new URL(target).protocol)
  } catch {}
  if (!ok) throw new UsageError('--target', `expected http://host:port, got "${redactUrl(target)}"`, {hint: 'For example --target http://127.0.0.1:8080 (a running `livedrop serve`).'})
}
