import {describe, expect, it} from 'vitest'
import {runCli} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {REDIS_URL} from './helpers/redis.js'
import {RELAXED, SMALL, scenarioFile} from './helpers/scenario.js'

describe('livedrop scenario run on Postgres', () => {
  it('exits 99 when a threshold fails, and 4 naming file:line:column for a bad file', async () => {
    const failing = SMALL.replace('read.p95 < 2s', 'read.p95 < 0.001ms') + RELAXED
    const {name, url} = await createTestDatabase()
    const r = await runCli(['scenario', 'run', scenarioFile(failing), '--json', '--db', url], {timeoutMs: 90_000}).finally(() => dropTestDatabase(name))
    expect(r.code, r.stderr).toBe(99)
    const result = JSON.parse(r.stdout)
    expect(result.thresholds.find((t: {expression: string}) => t.expression === 'read.p95 < 0.001ms').pass).toBe(false)

    const bad = await runCli(['scenario', 'run', scenarioFile(SMALL.replace('stock: 40', 'stock: -1'))])
    expect(bad.code).toBe(4)
    expect(bad.stderr).toMatch(/scenario\.yaml:4:\d+.*drop\.stock/)
  })

  it('runs on real Postgres and Redis (redis-gate, Redis cache nodes)', async () => {
    const {name, url} = await createTestDatabase()
    try {
      const file = scenarioFile(SMALL.replace('name: small-race', 'name: small-race\nengine: {strategy: redis-gate, cache: "redis://127.0.0.1:6379"}') + RELAXED)
      const r = await runCli(['scenario', 'run', file, '--db', url, '--redis', REDIS_URL, '--json'], {timeoutMs: 90_000})
      expect(r.code, r.stderr).toBe(0)
      const result = JSON.parse(r.stdout)
      expect(result.stats).toMatchObject({strategy: 'redis-gate', unitsSold: 40, dropStatus: 'sold_out'})
      expect(result.invariants.every((i: {pass: boolean}) => i.pass)).toBe(true)
      // the database keeps the dataset: a second run reuses it
      const again = await runCli(['scenario', 'run', file, '--db', url, '--redis', REDIS_URL, '--json'], {timeoutMs: 90_000})
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse(again.stdout).stats.dropId).toBe(result.stats.dropId + 1)
    } finally {
      await dropTestDatabase(name)
    }
  })
})
