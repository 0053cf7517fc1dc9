import {Command, Flags} from '@oclif/core'
import {createInterface} from 'node:readline/promises'
import {resolveConfig, type ConfigInput, type ResolvedConfig} from '../config.js'
import {openDb, type Db} from '../core/db/index.js'
import {ConfirmationRequiredError, describeError, ExitCode} from '../core/errors.js'

/** Flags every command that touches the database takes. */
export const dbFlags = {
  db: Flags.string({
    description: 'Database: `memory`, `embedded` (./.livedrop/pgdata), a directory, or postgres://… [env: DATABASE_URL]',
    helpGroup: 'CONNECTION',
  }),
}

/**
 * Shared behaviour: `--json` on every command, config from one function, errors printed with
 * their hint and exited with the code from DESIGN.md's table.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  protected config_(flags: ConfigInput): ResolvedConfig {
    return resolveConfig(flags, process.env, process.cwd())
  }

  /** Opens the database the flags and environment name; the caller closes it. */
  protected async openDatabase(flags: ConfigInput): Promise<Db> {
    return openDb(this.config_(flags).db)
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

  protected override async catch(err: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own errors (bad flags, this.exit) carry their exit code already
    if (err.oclif?.exit !== undefined) throw err
    const info = describeError(err)
    if (this.jsonEnabled()) {
      process.stdout.write(JSON.stringify({error: {code: info.code, message: info.message, hint: info.hint, exitCode: info.exitCode}}, null, 2) + '\n')
    } else {
      process.stderr.write(`Error [${info.code}]: ${info.message}\n`)
      if (info.hint) process.stderr.write(`Hint: ${info.hint}\n`)
      if (info.exitCode === ExitCode.internal && err.stack && process.env.DEBUG) process.stderr.write(err.stack + '\n')
    }
    return this.exit(info.exitCode)
  }
}
