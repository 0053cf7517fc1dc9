import {Redis} from 'ioredis'
import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {runCli} from './helpers/cli.js'
import {REDIS_URL} from './helpers/redis.js'
import {createDropFixture} from '../src/core/catalog/fixture.js'

/** The drop commands as a user runs them (the built CLI, no TTY). */
describe('livedrop drop … (CLI)', () => {
  const t = usePostgres()

  it('create / start / status / end, with --json and exit codes', async () => {
    const f = await createDropFixture(t.db, 3)
    const db = ['--db', t.url!]
    const product = ['--creator', String(f.creatorId), '--product', String(f.productId)]
    const json = await runCli(['drop', 'create', ...product, '--stock', '40', '--strategy', 'buckets', '--buckets', '4', '--low-stock', '5', '--ends-at', '+2h', '--json', ...db])
    expect(json.code).toBe(0)
    const drop = JSON.parse(json.stdout)
    expect(drop).toMatchObject({status: 'scheduled', strategy: 'buckets', stockTotal: 40, bucketCount: 4})
    // plain output is the id alone, for scripts: ID=$(livedrop drop create …)
    const plain = await runCli(['drop', 'create', ...product, '--stock', '5', ...db])
    expect(plain.code).toBe(0)
    expect(plain.stdout.trim()).toBe(String(drop.id + 1))

    expect((await runCli(['drop', 'start', String(drop.id), ...db])).code).toBe(0)
    const status = await runCli(['drop', 'status', String(drop.id), '--json', ...db])
    expect(JSON.parse(status.stdout)).toMatchObject({id: drop.id, total: 40, available: 40, sold: 0, orders: 0, status: 'live', strategy: 'buckets'})
    expect((await runCli(['drop', 'end', String(drop.id), ...db])).code).toBe(0)
    const again = await runCli(['drop', 'start', String(drop.id), '--json', ...db])
    expect(again.code).toBe(2)
    expect(JSON.parse(again.stdout).error.code).toBe('DROP_STATE')
  })

  it('drop run races buyers and prints the report and the invariants', async () => {
    const r = await runCli(['drop', 'run', '--stock', '60', '--buyers', '400', '--concurrency', '16', '--qty', '1-2', '--strategy', 'buckets', '--retry-rate', '0.3', '--db', t.url!], {
      timeoutMs: 90_000,
    })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/units sold\s*│\s*60\s/)
    expect(r.stdout).toMatch(/replays\s*│\s*[1-9]/)
    for (const name of ['no_oversell', 'no_duplicate_orders', 'every_ack_persisted', 'stock_conserved', 'replays_identical']) {
      expect(r.stdout).toMatch(new RegExp(`${name}\\s*│\\s*PASS`))
    }
  })

  it('drop run --json with redis-gate, then drop reconcile', async () => {
    const r = await runCli(['drop', 'run', '--stock', '30', '--buyers', '300', '--strategy', 'redis-gate', '--redis', REDIS_URL, '--json', '--db', t.url!], {timeoutMs: 90_000})
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ok: true, unitsSold: 30, strategy: 'redis-gate'})
    expect(out.invariants.every((i: {ok: boolean}) => i.ok)).toBe(true)
    expect(out.latency.p99).toBeGreaterThan(0)
    const rec = await runCli(['drop', 'reconcile', String(out.dropId), '--redis', REDIS_URL, '--json', '--db', t.url!])
    expect(rec.code).toBe(0)
    expect(JSON.parse(rec.stdout)).toMatchObject({available: 0, gate: {tokens: 0, marked: out.orders}})
    // the CLI uses the default prefix: remove this drop's gate keys from the shared Redis
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys(`livedrop:gate:{${out.dropId}.*`)
    expect(keys.length).toBe(2)
    await redis.del(...keys)
    redis.disconnect()
  })
})
