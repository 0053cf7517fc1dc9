import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createProgress} from '../../cli/progress.js'
import {createTable} from '../../cli/table.js'
import {assertMigrated} from '../../core/db/migrate.js'
import {FANOUT_DEFAULTS, drainOutbox, type DrainResult} from '../../core/fanout/index.js'

const ms = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} ms`)

export default class FanoutRun extends BaseCommand {
  static override summary = 'Deliver pending outbox events to followers and buyers, then report throughput and latency'
  static override description = `Drains the outbox: drop_started, stock_low, sold_out and drop_ended go to the drop's creator's
followers (one INSERT … SELECT per keyset page), order_confirmed to the buyer. Creators with more
followers than --pull-threshold are pull-delivered (merged into feeds at read time; "notify me"
followers still get a row). Events held by another worker are waited for, and taken over when
that worker's lease expires.`
  static override examples = [
    '<%= config.bin %> fanout run',
    '<%= config.bin %> fanout run --drop 12 --workers 4 --page-size 10000 --db postgres://root@127.0.0.1:5432/test',
    '<%= config.bin %> fanout run --event 42 --json',
  ]
  static override flags = {
    ...dbFlags,
    event: Flags.integer({description: 'only this outbox event', min: 1, max: Number.MAX_SAFE_INTEGER, exclusive: ['drop']}),
    drop: Flags.integer({description: "only this drop's events", min: 1, max: Number.MAX_SAFE_INTEGER, exclusive: ['event']}),
    workers: Flags.integer({description: 'concurrent workers', default: FANOUT_DEFAULTS.workers, min: 1, max: 256}),
    'page-size': Flags.integer({description: 'followers per page (one INSERT … SELECT each)', default: FANOUT_DEFAULTS.pageSize, min: 1, max: 1_000_000}),
    'pull-threshold': Flags.integer({description: 'creators with more followers than this are pull-delivered', default: FANOUT_DEFAULTS.pullThreshold, min: 0}),
    'lease-ms': Flags.integer({description: "how long a silent worker's claim lasts before another takes over", default: FANOUT_DEFAULTS.leaseMs, min: 100, max: 3_600_000}),
  }

  async run(): Promise<DrainResult & {database: string}> {
    const {flags} = await this.parse(FanoutRun)
    const db = await this.openDatabase(flags)
    const progress = createProgress({json: this.jsonEnabled()})
    try {
      await assertMigrated(db)
      const result = await drainOutbox(
        db,
        {
          eventId: flags.event,
          dropId: flags.drop,
          workers: flags.workers,
          pageSize: flags['page-size'],
          pullThreshold: flags['pull-threshold'],
          leaseMs: flags['lease-ms'],
        },
        (p) => progress.update('fan-out', Math.min(p.scanned, p.scanTotal), Math.max(p.scanTotal, 1)),
      )
      progress.stop()
      const table = createTable(['', 'value'], ['left', 'right'])
      table.push(
        ['events delivered', `${result.events} (${result.pushEvents} push, ${result.pullEvents} pull)`],
        ['notification rows', result.notifications.toLocaleString('en-US')],
        ['notifications/s', result.notificationsPerSecond.toLocaleString('en-US')],
        ['first notification after', ms(result.firstNotificationMs)],
        ['last notification after', ms(result.lastNotificationMs)],
        ['event → row visible p50', ms(result.latency.count ? result.latency.p50 : null)],
        ['event → row visible p95', ms(result.latency.count ? result.latency.p95 : null)],
        ['event → row visible max', ms(result.latency.count ? result.latency.max : null)],
        ['seconds', result.seconds.toFixed(2)],
      )
      this.log(table.toString())
      if (result.events === 0) this.note('Nothing to deliver: no pending outbox events matched.')
      return {database: db.label, ...result}
    } finally {
      progress.stop()
      await db.close()
    }
  }
}
