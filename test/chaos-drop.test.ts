import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {loadScenario} from '../src/sim/scenario/loader.js'
import {runScenario} from '../src/sim/run/index.js'
import {IMPACT_WINDOW_S} from '../src/sim/report/faults.js'
import {openResultStreams} from '../src/sim/report/stream.js'
import {renderReport} from '../src/sim/report/tables.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {TEST_SECRET} from './helpers/server.js'

/**
 * The shipped chaos scenario at a small scale on the test Postgres: two serve workers, a Redis and
 * two cache nodes of the run's own; a worker SIGKILLed, the Redis restarted, the workers' Postgres
 * connections ended, a cache node down for 5 s — each for real — and the invariants from the database.
 */
describe('scenarios/chaos-drop.yaml', () => {
  it('loses no acknowledged order, oversells nothing, and fails requests only right after a fault', async () => {
    const {name, url} = await createTestDatabase()
    try {
      const scenario = await loadScenario('scenarios/chaos-drop.yaml', {scale: 0.05})
      // the faults are streamed as they happen, as --out-stream writes them
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'chaos-')), 'run.ndjson')
      const streams = await openResultStreams({ndjson: file, runId: 'chaos'})
      const handle = runScenario({scenario, scale: 0.05, db: {kind: 'postgres', url}, secret: TEST_SECRET})
      handle.on('second', (p) => streams.second(p))
      handle.on('fault', (f) => streams.fault(f))
      const result = await handle.result
      await streams.close()
      const streamed = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.fault)
      expect(streamed.map((l) => l.fault).sort()).toEqual(['cache-node-down', 'kill-worker', 'pg-terminate-backends', 'redis-restart'])

      expect(result.faults?.map((f) => f.kind)).toEqual(['kill-worker', 'redis-restart', 'pg-terminate-backends', 'cache-node-down'])
      for (const f of result.faults!) {
        expect(f.error, f.action).toBeUndefined()
        // each was over (worker restarted, Redis answering, node back) before the run ended
        expect(f.endMs, f.action).toBeGreaterThanOrEqual(f.atMs)
      }
      expect(result.faults![0].action).toMatch(/SIGKILL worker \d \(pid \d+\); restarted as pid \d+/)
      expect(result.invariants.map((i) => [i.name, i.pass])).toEqual([
        ['no_oversell', true],
        ['no_duplicate_orders', true],
        ['every_ack_persisted', true],
        ['stock_conserved', true],
        ['acked_units_le_stock', true],
        ['one_order_per_key', true],
        ['replay_identical', true],
        ['no_sold_out_then_sale', true],
      ])
      expect(result.stats.ordersConfirmed).toBeGreaterThan(0)
      // every second with an error lies within a few seconds after some fault
      const afterAFault = (t: number) => result.faults!.some((f) => t * 1000 >= f.atMs - 1000 && t * 1000 < (f.endMs ?? f.atMs) + IMPACT_WINDOW_S * 1000)
      const errorSeconds = result.series.filter((p) => p.types.all.errors > 0).map((p) => p.t)
      expect(errorSeconds.filter((t) => !afterAFault(t))).toEqual([])
      // the report names each fault with what it cost and when the run was back
      expect(renderReport(result)).toMatch(/^Faults$/m)
      expect(renderReport(result)).toMatch(/kill-worker at \d+\.\d s: SIGKILL worker/)
    } finally {
      await dropTestDatabase(name)
    }
  }, 240_000)
})
