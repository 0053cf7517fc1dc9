import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {endDrop, type DropTransition} from '../../core/catalog/drops.js'
import {ONE_CALL_POOL_SIZE, createEngine} from '../../core/engine.js'

export default class DropEnd extends BaseCommand {
  static override summary = 'End a drop: it stops taking orders'
  static override description = 'Writes the drop_ended event. Ending an ended or sold-out drop changes nothing; a scheduled drop is ended without ever going live.'
  static override examples = ['<%= config.bin %> drop end 12', '<%= config.bin %> drop end 12 --redis redis://127.0.0.1:6379 --json']
  static override args = {id: Args.integer({description: 'drop id', required: true})}
  static override flags = {
    ...dbFlags,
    redis: Flags.string({description: 'Redis holding the redis-gate (closed on end) [env: REDIS_URL]', helpGroup: 'CONNECTION'}),
  }

  async run(): Promise<DropTransition> {
    const {args, flags} = await this.parse(DropEnd)
    const {db, redisUrl} = this.dataConfig(flags)
    const engine = await createEngine({db, redisUrl, poolSize: ONE_CALL_POOL_SIZE})
    try {
      const result = await endDrop(engine.deps, args.id)
      this.log(result.changed ? `Drop ${args.id} has ended.` : `Drop ${args.id} was already ${result.drop.status}.`)
      return result
    } finally {
      await engine.close()
    }
  }
}
