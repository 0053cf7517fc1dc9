import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {assertMigrated} from '../../core/db/migrate.js'
import {PurgeIncompleteError, UsageError} from '../../core/errors.js'
import {durationFlag} from '../../cli/parse.js'
import {PURGE_DEFAULTS, purgeIdempotencyKeys, type PurgeResult} from '../../core/orders/purge.js'

const MAX_DURATION_MS = 100 * 365 * 86_400_000

/** The purge's option fields as this command's flags, for the errors the core names by field. */
const FLAG_OF: Record<string, string> = {olderThanMs: '--older-than', batchSize: '--batch-size'}

function asFlagError(err: unknown): unknown {
  if (!(err instanceof UsageError) || !FLAG_OF[err.field]) return err
  return new UsageError(FLAG_OF[err.field], err.message.slice(err.field.length + 2), {hint: err.hint, cause: err})
}

export default class IdempotencyPurge extends BaseCommand {
  static override summary = 'Delete completed idempotency keys older than a window, safely while orders flow'
  static override description = `Never deletes a key still in flight, whatever its age. Drops whole expired day partitions
(O(1), no bloat) and deletes the rest in short batches with a pause between them; creates the
coming days' partitions. Refuses a window below 24 h (the longest retry horizon promised to
clients) unless --force. One purge at a time: a second exits at once (exit 5). Stopped by
--max-runtime with work left: exit 5, so cron runs it again; killed at any moment, a rerun continues.
Asks on a terminal; refuses without --yes anywhere else (not needed with --dry-run).`
  static override examples = [
    '<%= config.bin %> idempotency purge --older-than 72h --yes',
    '<%= config.bin %> idempotency purge --older-than 72h --batch-size 5000 --max-runtime 10m --yes --json',
    '<%= config.bin %> idempotency purge --older-than 48h --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    'older-than': Flags.string({description: 'delete completed keys created longer ago than this (e.g. 72h, 7d)', default: '72h'}),
    'batch-size': Flags.integer({description: 'rows per DELETE batch', default: PURGE_DEFAULTS.batchSize, min: 1, max: 1_000_000}),
    'max-runtime': Flags.string({description: 'stop after this long (e.g. 10m); exit 5 if work is left'}),
    'pause-ms': Flags.integer({description: 'pause between batches, in ms', default: PURGE_DEFAULTS.pauseMs, min: 0, max: 60_000}),
    'dry-run': Flags.boolean({description: 'count what would go; delete nothing'}),
    force: Flags.boolean({description: 'allow a window below the 24 h floor'}),
    yes: Flags.boolean({char: 'y', description: 'do not ask; delete'}),
  }

  async run(): Promise<PurgeResult> {
    const {flags} = await this.parse(IdempotencyPurge)
    const olderThanMs = durationFlag(flags['older-than'], '--older-than')
    const maxRuntimeMs = flags['max-runtime'] === undefined ? undefined : durationFlag(flags['max-runtime'], '--max-runtime')
    // past a century the cutoff is no date at all (Postgres was sent an invalid timestamp)
    for (const [field, ms] of [['--older-than', olderThanMs], ['--max-runtime', maxRuntimeMs]] as const) {
      if (ms !== undefined && ms > MAX_DURATION_MS) throw new UsageError(field, `must be at most 100 years, got ${flags[field.slice(2) as 'older-than']}`, {hint: 'Use hours or days, e.g. --older-than 72h or 30d.'})
    }
    const db = await this.openDatabase(flags)
    try {
      await assertMigrated(db)
      if (!flags['dry-run']) await this.confirm(`Delete completed idempotency keys older than ${flags['older-than']} from ${db.label}?`, flags.yes, 'purge idempotency keys')
      const r = await purgeIdempotencyKeys(
        db,
        {olderThanMs, batchSize: flags['batch-size'], maxRuntimeMs, pauseMs: flags['pause-ms'], dryRun: flags['dry-run'], force: flags.force},
        (p) => this.note(`purge: ${p.deleted.toLocaleString('en-US')} keys deleted (${p.partitionsDropped} partitions dropped, ${p.batches} batches)`),
      ).catch((err: unknown) => {
        throw asFlagError(err)
      })
      const verb = r.dryRun ? 'Would delete' : 'Deleted'
      this.log(
        `${verb} ${r.deleted.toLocaleString('en-US')} keys older than ${r.cutoff} ` +
          `(${r.partitionsDropped.length} day partitions${r.partitionsDropped.length ? `: ${r.partitionsDropped.join(', ')}` : ''}; ${r.batches} batches) ` +
          `in ${r.seconds.toFixed(2)} s (${Math.round(r.keysPerSecond).toLocaleString('en-US')} keys/s). Oldest key left: ${r.oldestRemaining ?? 'none'}.`,
      )
      if (!r.complete) {
        throw new PurgeIncompleteError(`stopped by --max-runtime after deleting ${r.deleted} keys; expired keys are left`, {
          hint: 'Run it again (cron will): it continues where this one stopped.',
          details: {...r},
        })
      }
      return r
    } finally {
      await db.close()
    }
  }
}
