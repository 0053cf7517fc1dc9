import {Command, Flags} from '@oclif/core'
import {createInterface} from 'node:readline/promises'
import {resolveConfig, type ConfigInput, type ResolvedConfig} from '../config.js'
import {openDb, type Db} from '../core/db/index.js'
import {embeddedStatus} from '../core/db/embedded.js'
import {ConfirmationRequiredError, describeError, ExitCode, LivedropError, ServiceUnreachableError, UsageError} from '../core/errors.js'
import {diagnoseFailure} from './diagnose.js'

/** Flags every command that touches the database takes. */
export const dbFlags = {
  db: Flags.string({
    description: 'Database: embedded Postgres in ./.livedrop by default; `memory` (a throwaway embedded one), a directory, or postgres://… [env: DATABASE_URL]',
    helpGroup: 'CONNECTION',
  }),
}

/**
 * Shared behaviour: `--json` on every command, config from one function, errors printed with
 * their hint and exited with the code from DESIGN.md's table.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  override async init(): Promise<void> {
    await super.init()
    // A signal no command handles ends the process through exit(), so the 'exit' hooks run (the
    // embedded Postgres is stopped there); a command with its own handler (serve, scenario run)
    // gets the first signal, and a second one ends it the same way.
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      if (process.listenerCount(signal) > 0) continue
      process.on(signal, () => {
        if (process.listenerCount(signal) === 1) process.exit(code)
      })
    }
  }

  /** Config from flags > environment > the scenario file's settings (when the command reads one) > defaults. */
  protected config_(flags: ConfigInput, scenario?: ConfigInput): ResolvedConfig {
    return resolveConfig(flags, process.env, process.cwd(), scenario)
  }

  /**
   * The config of a command that works on data. Only commands that make data (seed, migrate, serve,
   * drop run) pass create: the others never create an embedded database that is not there yet.
   */
  protected dataConfig(flags: ConfigInput, {create = false} = {}): ResolvedConfig {
    const config = this.config_(flags)
    if (!create && config.db.kind === 'embedded' && config.db.dir && !embeddedStatus(config.db.dir).exists) {
      throw new UsageError('--db', `no embedded database at ${config.db.dir} yet`, {
        hint: 'Create it with `livedrop seed` (or `livedrop db migrate`), or point --db / DATABASE_URL at your Postgres.',
      })
    }
    return config
  }

  /** Opens the database the flags and environment name (see dataConfig); the caller closes it. */
  protected async openDatabase(flags: ConfigInput, options: {create?: boolean} = {}): Promise<Db> {
    return openDb(this.dataConfig(flags, options).db)
  }

  /** Writes a progress or status line to stderr unless --json keeps output machine-readable. */
  protected note(message: string): void {
    if (!this.jsonEnabled()) process.stderr.write(message + '\n')
  }

  /** Asks on a TTY; refuses without --yes anywhere else. */
  protected async confirm(question: string, yes: boolean, action: string): Promise<void> {
    if (yes) return
    if (!process.stdin.isTTY || !process.stderr.isTTY) {
      throw new ConfirmationRequiredError(`refusing to ${action} without confirmation`, {hint: 'Add --yes to confirm.'})
    }
    const rl = createInterface({input: process.stdin, output: process.stderr})
    const answer = await rl.question(`${question} [y/N] `)
    rl.close()
    if (!/^y(es)?$/i.test(answer.trim())) {
      throw new ConfirmationRequiredError(`did not ${action}: not confirmed`, {hint: 'Answer y, or pass --yes.'})
    }
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}; code?: unknown}): Promise<unknown> {
    // this.exit() (EEXIT) and oclif's other exits pass through; its flag and argument errors (exit 2)
    // are usage errors like ours, printed the same way with a hint
    const parseError = err.oclif?.exit === ExitCode.usage && err.code !== 'EEXIT'
    if (err.oclif?.exit !== undefined && !parseError) throw err
    const info = parseError
      ? {code: 'USAGE', message: err.message.replace(/\s*See more help with --help\s*$/, '').replace(/\s*\n\s*/g, ' '), exitCode: ExitCode.usage, hint: undefined, details: undefined}
      : describeError(err instanceof LivedropError && !(err instanceof ServiceUnreachableError) ? err : await diagnoseFailure(err, await this.dbUrlForDiagnosis()))
    // every usage error says where to look, even when its thrower gave no hint
    const hint = info.hint ?? (info.exitCode === ExitCode.usage ? `See \`livedrop ${(this.id ?? '').replaceAll(':', ' ')} --help\` for the flags and examples.` : undefined)
    if (this.jsonEnabled()) {
      process.stdout.write(JSON.stringify({error: {code: info.code, message: info.message, hint, exitCode: info.exitCode, ...(info.details ? {details: info.details} : {})}}, null, 2) + '\n')
    } else {
      process.stderr.write(`Error [${info.code}]: ${info.message}\n`)
      if (hint) process.stderr.write(`Hint: ${hint}\n`)
      if (info.exitCode === ExitCode.internal && err.stack && process.env.DEBUG) process.stderr.write(err.stack + '\n')
    }
    return this.exit(info.exitCode)
  }

  /** The database URL the command was given (--db or DATABASE_URL), to explain a failure; never printed unredacted. */
  private async dbUrlForDiagnosis(): Promise<string | undefined> {
    try {
      const {flags} = await this.parse(this.ctor)
      return (flags as ConfigInput).db ?? process.env.DATABASE_URL
    } catch {
      return process.env.DATABASE_URL
    }
  }
}
