import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {reconcileDrop, type ReconcileResult} from '../../core/catalog/drops.js'
import {ONE_CALL_POOL_SIZE, createEngine} from '../../core/engine.js'

export default class DropReconcile extends BaseCommand {
  static override summary = 'Re-sync derived state from Postgres: the redis gate, a buckets drop\'s owed events'
  static override description = `For redis-gate drops, rewrites the gate's tokens from Postgres's available stock and marks every
existing order's key (after Redis lost data, or tokens leaked to buyers that crashed). For buckets
drops, writes a stock_low / sold_out event the drop is still owed. Safe while orders are placed.`
  static override examples = ['<%= config.bin %> drop reconcile 12 --redis redis://127.0.0.1:6379', '<%= config.bin %> drop reconcile 12 --json']
  static override args = {id: Args.integer({description: 'drop id', required: true})}
  static override flags = {
    ...dbFlags,
    redis: Flags.string({description: 'Redis holding the redis-gate [env: REDIS_URL]', helpGroup: 'CONNECTION'}),
  }

  async run(): Promise<ReconcileResult> {
    const {args, flags} = await this.parse(DropReconcile)
    const {db, redisUrl} = this.dataConfig(flags)
    const engine = await createEngine({db, redisUrl, poolSize: ONE_CALL_POOL_SIZE})
    try {
      const r = await reconcileDrop(engine.deps, args.id)
      const parts = [`Drop ${args.id} (${r.drop.strategy}, ${r.drop.status}): ${r.available} available.`]
      if (r.gate) parts.push(`Gate set to ${r.gate.tokens} tokens; ${r.gate.marked} order keys marked.`)
      if (r.settled.stockLow || r.settled.soldOut) parts.push(`Wrote owed events:${r.settled.stockLow ? ' stock_low' : ''}${r.settled.soldOut ? ' sold_out' : ''}.`)
      if (!r.gate && !r.settled.stockLow && !r.settled.soldOut) parts.push('Nothing to re-sync.')
      this.log(parts.join(' '))
      return r
    } finally {
      await engine.close()
    }
  }
}
