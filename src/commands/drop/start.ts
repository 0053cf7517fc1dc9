import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {startDrop, type DropTransition} from '../../core/catalog/drops.js'
import {ONE_CALL_POOL_SIZE, createEngine} from '../../core/engine.js'

export default class DropStart extends BaseCommand {
  static override summary = 'Start a scheduled drop: it goes live and takes orders'
  static override description = 'Writes the drop_started event for fan-out. Starting a live drop again changes nothing; a sold-out or ended drop cannot start.'
  static override examples = ['<%= config.bin %> drop start 12', '<%= config.bin %> drop start 12 --redis redis://127.0.0.1:6379 --json']
  static override args = {id: Args.integer({description: 'drop id', required: true})}
  static override flags = {
    ...dbFlags,
    redis: Flags.string({description: 'Redis holding the redis-gate (synced on start) [env: REDIS_URL]', helpGroup: 'CONNECTION'}),
  }

  async run(): Promise<DropTransition> {
    const {args, flags} = await this.parse(DropStart)
    const {db, redisUrl} = this.dataConfig(flags)
    const engine = await createEngine({db, redisUrl, poolSize: ONE_CALL_POOL_SIZE})
    try {
      const result = await startDrop(engine.deps, args.id)
      this.log(result.changed ? `Drop ${args.id} is live.` : `Drop ${args.id} was already live.`)
      return result
    } finally {
      await engine.close()
    }
  }
}
