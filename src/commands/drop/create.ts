import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createDrop, parseWhen, type Drop} from '../../core/catalog/drops.js'
import {ONE_CALL_POOL_SIZE, createEngine} from '../../core/engine.js'
import {DEFAULT_BUCKETS, STOCK_STRATEGIES, type StockStrategyName} from '../../core/stock/index.js'
import {SCENARIO_LIMITS} from '../../sim/scenario/schema.js'

export default class DropCreate extends BaseCommand {
  static override summary = 'Create a scheduled drop of a product; prints its id'
  static override description = `Stock strategies: row (one conditional UPDATE of the drop row), buckets (stock split over
--buckets rows to spread the lock), redis-gate (a Redis admission gate in front of row; needs --redis).
Times: ISO 8601, \`now\`, or an offset like +2h. With --json prints the drop object (its id in \`id\`).`
  static override examples = [
    '<%= config.bin %> drop create --creator 1 --product 1 --stock 500 --starts-at now --ends-at +2h --low-stock 50',
    '<%= config.bin %> drop create --creator 1 --product 2 --stock 10000 --strategy buckets --buckets 32 --json',
    '<%= config.bin %> drop create --creator 1 --product 3 --stock 500 --strategy redis-gate --redis redis://127.0.0.1:6379',
  ]
  static override flags = {
    ...dbFlags,
    redis: Flags.string({description: 'Redis for the redis-gate strategy, redis://host:port [env: REDIS_URL]', helpGroup: 'CONNECTION'}),
    creator: Flags.integer({description: 'creator id', required: true, min: 1, max: Number.MAX_SAFE_INTEGER}),
    product: Flags.integer({description: "product id (one of the creator's)", required: true, min: 1, max: Number.MAX_SAFE_INTEGER}),
    stock: Flags.integer({description: 'units on sale', required: true, min: 1, max: SCENARIO_LIMITS.stock}),
    'starts-at': Flags.string({description: 'start time: ISO 8601, now, or +30m', default: 'now'}),
    'ends-at': Flags.string({description: 'end time: ISO 8601 or an offset from now like +2h', default: '+1h'}),
    'low-stock': Flags.integer({description: 'announce stock_low once when available falls to this', default: 0, min: 0, max: SCENARIO_LIMITS.stock}),
    strategy: Flags.string({description: 'stock strategy', options: [...STOCK_STRATEGIES], default: 'row'}),
    buckets: Flags.integer({description: 'bucket rows for --strategy buckets (clamped to the stock)', default: DEFAULT_BUCKETS, min: 1, max: SCENARIO_LIMITS.buckets}),
  }

  async run(): Promise<Drop> {
    const {flags} = await this.parse(DropCreate)
    const now = new Date()
    const startsAt = parseWhen(flags['starts-at'], now, '--starts-at')
    const endsAt = parseWhen(flags['ends-at'], now, '--ends-at')
    const {db, redisUrl} = this.dataConfig(flags)
    const engine = await createEngine({db, redisUrl, poolSize: ONE_CALL_POOL_SIZE})
    try {
      const drop = await createDrop(engine.deps, {
        creatorId: flags.creator,
        productId: flags.product,
        stock: flags.stock,
        startsAt,
        endsAt,
        lowStockThreshold: flags['low-stock'],
        strategy: flags.strategy as StockStrategyName,
        buckets: flags.buckets,
      })
      this.log(String(drop.id))
      return drop
    } finally {
      await engine.close()
    }
  }
}

