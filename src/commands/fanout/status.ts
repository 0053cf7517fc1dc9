import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {assertMigrated} from '../../core/db/migrate.js'
import {fanoutStatus, type FanoutStatus} from '../../core/fanout/index.js'

export default class FanoutStatusCommand extends BaseCommand {
  static override summary = 'Show the fan-out backlog: pending events, in-flight leases, per-event progress'
  static override examples = ['<%= config.bin %> fanout status', '<%= config.bin %> fanout status --limit 50 --json --db postgres://root@127.0.0.1:5432/test']
  static override flags = {
    ...dbFlags,
    limit: Flags.integer({description: 'pending events to list (oldest first)', default: 20, min: 1, max: 1000}),
  }

  async run(): Promise<FanoutStatus & {database: string}> {
    const {flags} = await this.parse(FanoutStatusCommand)
    const db = await this.openDatabase(flags)
    try {
      await assertMigrated(db)
      const status = await fanoutStatus(db, {limit: flags.limit})
      this.log(
        `${status.pendingEvents} pending event(s), ${status.leasedEvents} under a live lease, oldest ${(status.oldestPendingMs / 1000).toFixed(1)} s; ` +
          `${status.processedEvents} processed, ${status.notifications.toLocaleString('en-US')} notification rows.`,
      )
      if (status.events.length > 0) {
        const table = createTable(['event', 'type', 'drop', 'delivery', 'delivered / target', 'cursor', 'lease', 'attempts', 'age'], ['right', 'left', 'right', 'left', 'right', 'right', 'left', 'right', 'right'])
        for (const e of status.events) {
          const lease = e.leaseOwner === null ? '–' : `${e.leaseOwner} (${e.leaseRemainingMs !== null && e.leaseRemainingMs < 0 ? 'expired' : `${Math.round((e.leaseRemainingMs ?? 0) / 1000)} s left`})`
          table.push([e.id, e.eventType, e.dropId ?? '–', e.delivery ?? 'undecided', `${e.delivered} / ${e.target}`, e.cursorUserId ?? '–', lease, e.attempts, `${(e.ageMs / 1000).toFixed(1)} s`])
        }
        this.log(table.toString())
      }
      return {database: db.label, ...status}
    } finally {
      await db.close()
    }
  }
}
