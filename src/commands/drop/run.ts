import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {createProgress} from '../../cli/progress.js'
import {createTable} from '../../cli/table.js'
import {createEngine} from '../../core/engine.js'
import {InvariantViolatedError} from '../../core/errors.js'
import {DEFAULT_BUCKETS, STOCK_STRATEGIES, type StockStrategyName} from '../../core/stock/index.js'
import {DROP_RUN_DEFAULTS, runDrop, type DropRunResult} from '../../sim/load/drop-run.js'
import {parseQtyRange} from '../../cli/parse.js'
import {SCENARIO_LIMITS} from '../../sim/scenario/schema.js'

export default class DropRun extends BaseCommand {
  static override summary = 'Race buyers against a new drop in-process, report, and check the invariants'
  static override description = `Works on any database (migrates it if needed; creates the creator, product and buyers it uses),
creates and starts a drop, and races --buyers buyers against the engine directly (no HTTP) with
--concurrency requests in flight; --retry-rate of them also retry with the same Idempotency-Key.
Prints attempts, orders, units sold, sold-out answers, replays, errors by class, orders/s and
latency, then checks: units sold ≤ stock (= stock when demand exceeded it), one order per
(user, key), every acknowledged order stored, stock conserved. A violation exits 98.`
  static override examples = [
    '<%= config.bin %> drop run --db memory --stock 100 --buyers 2000',
    '<%= config.bin %> drop run --stock 500 --buyers 20000 --concurrency 64 --strategy buckets --retry-rate 0.2 --qty 1-2 --db postgres://root@127.0.0.1:5432/test',
    '<%= config.bin %> drop run --strategy redis-gate --redis redis://127.0.0.1:6379 --db postgres://root@127.0.0.1:5432/test --json',
  ]
  static override flags = {
    ...dbFlags,
    redis: Flags.string({description: 'Redis for the redis-gate strategy, redis://host:port [env: REDIS_URL]', helpGroup: 'CONNECTION'}),
    stock: Flags.integer({description: 'units on sale', default: DROP_RUN_DEFAULTS.stock, min: 1, max: SCENARIO_LIMITS.stock}),
    buyers: Flags.integer({description: 'distinct buyers (one first request each)', default: DROP_RUN_DEFAULTS.buyers, min: 1, max: SCENARIO_LIMITS.users}),
    concurrency: Flags.integer({description: 'requests in flight at once', default: DROP_RUN_DEFAULTS.concurrency, min: 1, max: SCENARIO_LIMITS.connections}),
    strategy: Flags.string({description: 'stock strategy', options: [...STOCK_STRATEGIES], default: DROP_RUN_DEFAULTS.strategy}),
    buckets: Flags.integer({description: 'bucket rows for --strategy buckets', default: DEFAULT_BUCKETS, min: 1, max: SCENARIO_LIMITS.buckets}),
    'retry-rate': Flags.string({description: 'fraction of buyers that retry with the same key (0-1)', default: String(DROP_RUN_DEFAULTS.retryRate)}),
    qty: Flags.string({description: 'units per order: N or MIN-MAX', default: '1'}),
    'low-stock': Flags.integer({description: 'low-stock threshold (default: 10% of the stock)', min: 0, max: SCENARIO_LIMITS.stock}),
    seed: Flags.integer({description: 'PRNG seed for quantities and retries', default: 1, min: 0}),
  }

  async run(): Promise<DropRunResult> {
    const {flags} = await this.parse(DropRun)
    const {qtyMin, qtyMax} = parseQtyRange(flags.qty)
    const retryRate = Number(flags['retry-rate'])
    const {db, redisUrl} = this.dataConfig(flags, {create: true})
    // a connection per request in flight, up to what one Postgres serves well
    const engine = await createEngine({db, redisUrl, migrate: true, poolSize: Math.min(flags.concurrency, 32)})
    const progress = createProgress({json: this.jsonEnabled()})
    try {
      const result = await runDrop(
        engine.deps,
        {
          stock: flags.stock,
          buyers: flags.buyers,
          concurrency: flags.concurrency,
          strategy: flags.strategy as StockStrategyName,
          buckets: flags.buckets,
          retryRate,
          qtyMin,
          qtyMax,
          lowStock: flags['low-stock'],
          seed: flags.seed,
        },
        (p) => progress.update('buyers', p.done, p.total),
      )
      progress.stop()
      this.render(result)
      const failed = result.invariants.filter((i) => !i.ok)
      if (failed.length) {
        throw new InvariantViolatedError(`invariants violated on drop ${result.dropId}: ${failed.map((i) => `${i.name} ${JSON.stringify(i.details)}`).join('; ')}`, {
          hint: 'This is a correctness bug in the engine: keep the database for inspection and report it.',
          details: {dropId: result.dropId, failed},
        })
      }
      return result
    } finally {
      progress.stop()
      await engine.close()
    }
  }

  private render(r: DropRunResult): void {
    const n = (v: number) => v.toLocaleString('en-US', {maximumFractionDigits: 1})
    const ms = (v: number) => `${v.toFixed(2)} ms`
    const report = createTable([`drop ${r.dropId} (${r.strategy})`, ''], ['left', 'right'])
    report.push(
      ['stock', n(r.stock)],
      ['buyers / concurrency', `${n(r.buyers)} / ${r.concurrency}`],
      ['attempts', n(r.attempts)],
      ['orders', n(r.orders)],
      ['units sold', n(r.unitsSold)],
      ['sold-out answers', n(r.soldOutAnswers)],
      ['replays', n(r.replays)],
      ['errors', Object.keys(r.errors).length ? Object.entries(r.errors).map(([code, c]) => `${code} ${n(c)}`).join(', ') : '0'],
      ['seconds', r.seconds.toFixed(2)],
      ['orders/s (while selling)', `${n(r.ordersPerSecond)} (${r.sellingSeconds.toFixed(2)} s)`],
      ['attempts/s', n(r.attemptsPerSecond)],
      ['latency p50 / p95', `${ms(r.latency.p50)} / ${ms(r.latency.p95)}`],
      ['latency p99 / max', `${ms(r.latency.p99)} / ${ms(r.latency.max)}`],
    )
    this.log(report.toString())
    const checks = createTable(['invariant', 'result', 'details'], ['left', 'left', 'left'])
    for (const i of r.invariants) checks.push([i.name, i.ok ? 'PASS' : 'FAIL', JSON.stringify(i.details)])
    this.log(checks.toString())
  }
}
