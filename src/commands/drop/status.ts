import {Args} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {getDropStatus, type DropStatusReport} from '../../core/catalog/drops.js'
import {assertMigrated} from '../../core/db/migrate.js'

export default class DropStatus extends BaseCommand {
  static override summary = "Show a drop's stock and status: total, available, sold, orders, status, strategy"
  static override description = 'available is authoritative for the strategy: the drop row for row and redis-gate, the sum of the bucket rows for buckets.'
  static override examples = ['<%= config.bin %> drop status 12', '<%= config.bin %> drop status 12 --json']
  static override args = {id: Args.integer({description: 'drop id', required: true})}
  static override flags = {...dbFlags}

  async run(): Promise<DropStatusReport> {
    const {args, flags} = await this.parse(DropStatus)
    const db = await this.openDatabase(flags)
    try {
      await assertMigrated(db)
      const s = await getDropStatus(db, args.id)
      const table = createTable(['drop', String(s.id)], ['left', 'right'])
      table.push(
        ['status', s.status],
        ['strategy', s.strategy === 'buckets' ? `buckets (${s.bucketCount})` : s.strategy],
        ['total', s.total.toLocaleString('en-US')],
        ['available', s.available.toLocaleString('en-US')],
        ['sold', s.sold.toLocaleString('en-US')],
        ['orders', s.orders.toLocaleString('en-US')],
        ['low-stock threshold', s.lowStockThreshold.toLocaleString('en-US')],
        ['starts', s.startsAt],
        ['ends', s.endsAt],
      )
      this.log(table.toString())
      return s
    } finally {
      await db.close()
    }
  }
}
