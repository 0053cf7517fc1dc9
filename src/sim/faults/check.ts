import {UsageError} from '../../core/errors.js'
import type {Fault} from './schema.js'

/** What a run has that faults may act on. */
export interface FaultComponents {
  /** Serve workers in their own processes (engine.workers); 0 when the engine runs in-process or the target is remote. */
  workers: number
  /** Whether livedrop started the run's Redis itself (engine.redis: local), so it may restart it. */
  localRedis: boolean
  /** Redis cache nodes livedrop started itself (in --cache order). */
  localCacheNodes: number
  /** Whether the run has serve workers whose Postgres connections may be ended (engine.workers, no --target). */
  postgres: boolean
  /** The run's length in ms: a fault after the end never happens. Default: not checked. */
  durationMs?: number
}

/**
 * Every fault the run cannot cause, as UsageErrors (all at once, before the run starts): a fault
 * needs a component of livedrop's own: its serve workers, its Redis, its cache nodes, its database.
 */
export function checkFaultsPossible(faults: readonly Fault[], components: FaultComponents): UsageError[] {
  const errors: UsageError[] = []
  faults.forEach((f, i) => {
    const field = `faults[${i}]`
    const need = (message: string, hint: string) => errors.push(new UsageError(`${field}.kind`, `${f.kind} ${message}`, {hint}))
    if (components.durationMs !== undefined && f.at >= components.durationMs) {
      errors.push(new UsageError(`${field}.at`, `${f.at / 1000}s is after the run ends (${components.durationMs / 1000}s)`, {hint: 'Move the fault inside the run, or lengthen the phases.'}))
    }
    switch (f.kind) {
      case 'kill-worker':
        if (components.workers < 1) need('needs serve workers in their own processes', 'Set engine.workers: 2 (or more) so a worker can be killed and restarted.')
        else if (f.worker !== undefined && f.worker > components.workers) need(`names worker ${f.worker}, but the run has ${components.workers}`, `Pick a worker from 1 to ${components.workers}.`)
        break
      case 'redis-restart':
        if (!components.localRedis) need('needs a Redis livedrop started itself', 'Set engine.redis: local (the system redis-server on a free port); livedrop never restarts a Redis it did not start.')
        break
      case 'pg-terminate-backends':
        if (!components.postgres) need("needs serve workers whose Postgres connections it can end", 'Set engine.workers: 2 (or more) and run without --target: the fault ends the workers\' connections, never the run\'s own.')
        break
      case 'cache-node-down':
        if (components.localCacheNodes < 1) need('needs Redis cache nodes livedrop started itself', 'Let livedrop start the cache nodes (local redis-server processes) so one can be stopped and started again.')
        else if ((f.node ?? 1) > components.localCacheNodes) need(`names cache node ${f.node}, but the run has ${components.localCacheNodes}`, `Pick a node from 1 to ${components.localCacheNodes}.`)
        break
    }
  })
  return errors
}
