import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {DEFAULT_PREFIX, readCacheStats, type SharedCacheStats} from '../../core/cache/catalog-cache.js'
import {createCacheNodes, parseCacheSpec} from '../../core/cache/nodes.js'
import {ServiceUnreachableError, UsageError} from '../../core/errors.js'

export default class CacheStats extends BaseCommand {
  static override summary = "Show the cache's hit ratio and counters, read from its Redis nodes"
  static override description = `Every livedrop process caching on Redis pushes its counters (hits, misses, coalesced reads,
fallbacks, invalidations) into a hash on its nodes each second; this sums them over the nodes
and shows, per node, whether it answers, the cached entries under the prefix, memory used and the
server's own keyspace hits/misses. In-process (memory) nodes live inside the serving process:
read their counters from that process (its /metrics), not from here.`
  static override examples = [
    '<%= config.bin %> cache stats --cache redis://127.0.0.1:6379,redis://127.0.0.1:6380',
    '<%= config.bin %> cache stats --cache redis-cluster://127.0.0.1:7000 --json',
  ]
  static override flags = {
    cache: Flags.string({description: 'cache nodes: redis://a,redis://b or redis-cluster://h:7000 [env: LIVEDROP_CACHE]', helpGroup: 'CONNECTION'}),
    prefix: Flags.string({description: 'key prefix the cache uses', default: DEFAULT_PREFIX}),
  }

  async run(): Promise<SharedCacheStats & {cache: string}> {
    const {flags} = await this.parse(CacheStats)
    const config = this.config_({cache: flags.cache})
    const field = flags.cache === undefined && process.env.LIVEDROP_CACHE ? 'LIVEDROP_CACHE' : '--cache'
    const spec = parseCacheSpec(config.cache, field)
    if (spec.kind === 'memory') {
      throw new UsageError(field, `${config.cache} names in-process nodes, which exist only inside the process that serves`, {
        hint: 'Pass the Redis nodes that process caches on (--cache redis://…), or read its /metrics.',
      })
    }
    const nodes = await createCacheNodes(spec, {connectTimeoutMs: 2000, commandTimeoutMs: 5000})
    try {
      const stats = await readCacheStats(nodes, flags.prefix)
      if (stats.nodes.every((n) => !n.up)) {
        throw new ServiceUnreachableError(`no cache node answers (${stats.nodes.map((n) => n.id).join(', ')})`, {
          hint: 'Start the Redis nodes or fix --cache / LIVEDROP_CACHE.',
        })
      }
      const c = stats.counters
      const counters = createTable(['hit ratio', 'hits', 'near hits', 'misses', 'coalesced', 'fallbacks', 'invalidations'], Array(7).fill('right'))
      counters.push([`${(c.hitRatio * 100).toFixed(1)}%`, c.hits, c.nearHits, c.misses, c.coalesced, c.fallbacks, c.invalidations].map(String))
      this.log(counters.toString())
      const table = createTable(['node', 'up', 'entries', 'memory', 'server keyspace hits', 'server keyspace misses'], ['left', 'left', 'right', 'right', 'right', 'right'])
      for (const n of stats.nodes) {
        const mem = n.usedMemoryBytes === undefined ? '-' : `${(n.usedMemoryBytes / 1048576).toFixed(1)} MiB`
        table.push([n.id, n.up ? 'yes' : `no (${n.error ?? 'unreachable'})`, n.keys, mem, n.keyspaceHits ?? '-', n.keyspaceMisses ?? '-'].map(String))
      }
      this.log(table.toString())
      return {cache: stats.nodes.map((n) => n.id).join(','), ...stats}
    } finally {
      await nodes.close()
    }
  }
}
