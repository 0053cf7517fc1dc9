import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {simulateRing, type RingSimResult} from '../../core/cache/simulate.js'
import {UsageError} from '../../core/errors.js'

const pct = (x: number) => `${(x * 100).toFixed(2)}%`

export default class CacheRing extends BaseCommand {
  static override summary = 'Simulate the consistent-hash ring: shares per node, keys moved, and the failure domino effect'
  static override description = `Places --keys keys and as many requests (Zipf-skewed with --zipf) on --nodes nodes, with plain
consistent hashing and with bounded loads (ε = --bounded), and prints each node's share.
--add/--remove measure the keys moved by a change. --fail fails the most loaded nodes; with
--cascade every node then pushed over --capacity (× the average load with all nodes up) fails in
turn, and the survivors under plain hashing and bounded loads are compared. Nothing is contacted.`
  static override examples = [
    '<%= config.bin %> cache ring --nodes 8 --vnodes 160 --keys 1000000 --zipf 1.1 --bounded 0.25',
    '<%= config.bin %> cache ring --nodes 8 --add 1',
    '<%= config.bin %> cache ring --zipf 1.1 --fail 1 --cascade --capacity 1.5',
  ]
  static override flags = {
    nodes: Flags.integer({description: 'cache nodes', default: 8, min: 1, max: 1000}),
    vnodes: Flags.integer({description: 'virtual nodes per node', default: 160, min: 1, max: 10_000}),
    keys: Flags.integer({description: 'distinct keys', default: 1_000_000, min: 1, max: 10_000_000}),
    requests: Flags.integer({description: 'requests drawn over the keys [default: --keys]', min: 1, max: 10_000_000}),
    zipf: Flags.string({description: 'Zipf exponent of key popularity (0 = uniform)', default: '0'}),
    bounded: Flags.string({description: 'ε of bounded loads (cap ⌈(1+ε)·average⌉)', default: '0.25'}),
    add: Flags.integer({description: 'nodes to add (measures keys moved)', default: 0, min: 0, exclusive: ['remove']}),
    remove: Flags.integer({description: 'nodes to remove (measures keys moved)', default: 0, min: 0}),
    fail: Flags.integer({description: 'most-loaded nodes to fail', default: 0, min: 0}),
    cascade: Flags.boolean({description: 'fail nodes pushed over capacity, round after round'}),
    capacity: Flags.string({description: 'node capacity as a multiple of the average request load', default: '1.3'}),
    seed: Flags.integer({description: 'PRNG seed of the request draw', default: 1, min: 0}),
  }

  async run(): Promise<RingSimResult> {
    const {flags} = await this.parse(CacheRing)
    const num = (field: string, raw: string, min: number) => {
      const v = Number(raw)
      if (!Number.isFinite(v) || v < min) throw new UsageError(field, `must be a number ≥ ${min}, got ${raw}`)
      return v
    }
    const zipf = num('--zipf', flags.zipf, 0)
    const bounded = num('--bounded', flags.bounded, 0.0001)
    const capacity = num('--capacity', flags.capacity, 0.0001)
    if (flags.remove >= flags.nodes) throw new UsageError('--remove', `must leave at least one of the ${flags.nodes} nodes`)
    if (flags.fail > flags.nodes) throw new UsageError('--fail', `cannot exceed --nodes (${flags.nodes})`)
    const r = simulateRing({...flags, zipf, bounded, capacity})

    const table = createTable(['node', 'keys', 'requests', `keys (bounded ε=${bounded})`, `requests (bounded ε=${bounded})`], ['left', 'right', 'right', 'right', 'right'])
    for (const s of r.shares) table.push([s.node, pct(s.keys), pct(s.requests), pct(s.boundedKeys), pct(s.boundedRequests)])
    const sp = r.spread
    table.push(['max/avg', sp.keys.maxOverAvg.toFixed(3), sp.requests.maxOverAvg.toFixed(3), sp.boundedKeys.maxOverAvg.toFixed(3), sp.boundedRequests.maxOverAvg.toFixed(3)])
    table.push(['stddev/avg', sp.keys.cv.toFixed(3), sp.requests.cv.toFixed(3), sp.boundedKeys.cv.toFixed(3), sp.boundedRequests.cv.toFixed(3)])
    this.log(table.toString())
    this.log(`Expected stddev/avg of key shares ≈ 1/√vnodes = ${r.expectedCv.toFixed(3)}; hottest key: ${pct(r.hottestKeyShare)} of requests.`)
    if (r.moved) {
      this.log(`Keys moved (+${r.moved.nodesAdded} −${r.moved.nodesRemoved} nodes): plain ${pct(r.moved.plain)}, bounded ${pct(r.moved.bounded)}, expected ≈ ${pct(r.moved.expected)}.`)
    }
    if (r.failure) {
      const f = r.failure
      const t = createTable(['mode', 'survivors', 'cascade rounds', 'failed (in order)', 'peak load / capacity'], ['left', 'right', 'right', 'left', 'right'])
      for (const [mode, c] of [['plain', f.plain], [`bounded ε=${bounded}`, f.bounded]] as const) {
        t.push([mode, `${c.survivors}/${flags.nodes}`, c.rounds, c.failed.join(' '), c.survivors ? c.peakLoadOverCapacity.toFixed(3) : '-'])
      }
      this.log(`Capacity: ${Math.round(f.capacityRequests).toLocaleString('en-US')} requests per node (${capacity} × average)${flags.cascade ? '' : '; without --cascade only the initial failures are applied'}.`)
      this.log(t.toString())
    }
    return r
  }
}
