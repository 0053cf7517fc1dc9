import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {assertMigrated} from '../../core/db/migrate.js'
import {idempotencyStats, type IdempotencyStats} from '../../core/orders/purge.js'

const AGES = ['<1h', '1h-24h', '24h-72h', '72h-7d', '>7d']

export default class IdempotencyStatsCommand extends BaseCommand {
  static override summary = 'Show idempotency keys by state and age, partition sizes, and what a purge would remove'
  static override examples = ['<%= config.bin %> idempotency stats', '<%= config.bin %> idempotency stats --json']
  static override flags = {...dbFlags}

  async run(): Promise<IdempotencyStats> {
    const {flags} = await this.parse(IdempotencyStatsCommand)
    const db = await this.openDatabase(flags)
    try {
      await assertMigrated(db)
      const s = await idempotencyStats(db)
      const byAge = createTable(['state', ...AGES, 'total'], ['left', ...AGES.map(() => 'right' as const), 'right'])
      for (const [state, ages] of Object.entries(s.byState)) {
        byAge.push([state, ...AGES.map((a) => (ages[a] ?? 0).toLocaleString('en-US')), Object.values(ages).reduce((x, y) => x + y, 0).toLocaleString('en-US')])
      }
      this.log(byAge.toString())
      const parts = createTable(['partition', 'rows', 'size'], ['left', 'right', 'right'])
      for (const p of s.partitions) parts.push([p.name, p.rows.toLocaleString('en-US'), `${(p.bytes / 1024).toFixed(0)} kB`])
      this.log(parts.toString())
      this.log(`Oldest key: ${s.oldest ?? 'none'}. A purge with the default window (${s.defaultPurge.olderThanHours}h) would remove ${s.defaultPurge.keys.toLocaleString('en-US')} keys.`)
      return s
    } finally {
      await db.close()
    }
  }
}
