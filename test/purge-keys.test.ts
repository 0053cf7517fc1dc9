import {isDeepStrictEqual} from 'node:util'
import {describe, expect, it} from 'vitest'
import {BACKENDS, usePostgres} from './helpers/db.js'
import {runCli} from './helpers/cli.js'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import type {Db} from '../src/core/db/types.js'
import {PurgeLockedError, UsageError} from '../src/core/errors.js'
import {placeOrder} from '../src/core/orders/place-order.js'
import {idempotencyStats, purgeIdempotencyKeys} from '../src/core/orders/purge.js'
import {createDropFixture} from '../src/core/catalog/fixture.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const day = (t: Date) => t.toISOString().slice(0, 10)
const partitionOf = (t: Date) => `idempotency_keys_${day(t).replaceAll('-', '')}`

/** Inserts keys created at `at` (their day's partition, or the default one when it has none). */
async function insertKeys(db: Db, at: Date, state: 'completed' | 'in_flight', n: number, tag: string): Promise<void> {
  await db.query(
    `INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, locked_at, created_at, completed_at)
     SELECT 1, $1 || g, $2::date, 'fp', $3, CASE WHEN $3 = 'completed' THEN 201 END, CASE WHEN $3 = 'completed' THEN '{}'::jsonb END,
       CASE WHEN $3 = 'in_flight' THEN $4::timestamptz END, $4, CASE WHEN $3 = 'completed' THEN $4::timestamptz END
     FROM generate_series(1, $5::int) g`,
    [tag, day(at), state, at, n],
  )
}

async function keys(db: Db): Promise<string[]> {
  return (await db.query<{key: string}>(`SELECT key FROM idempotency_keys WHERE user_id = 1 ORDER BY key`)).rows.map((r) => r.key)
}

for (const backend of BACKENDS) {
  describe(`idempotency purge on ${backend.name}`, () => {
    const t = backend.use()

    it('deletes only completed keys past the window: whole day partitions dropped, the rest in batches', async () => {
      const now = new Date()
      const at = (ms: number) => new Date(now.getTime() - ms)
      // day partitions for the last six days (the default partition keeps anything older)
      await t.db.query(`SELECT livedrop_ensure_idempotency_partitions($1::date, 6)`, [day(at(6 * DAY))])
      await insertKeys(t.db, at(5 * DAY), 'completed', 5, 'd5-')
      await insertKeys(t.db, at(4 * DAY), 'completed', 3, 'd4-')
      await insertKeys(t.db, at(4 * DAY), 'in_flight', 1, 'd4-flight-')
      await insertKeys(t.db, at(2 * DAY), 'completed', 2, 'd2-')
      await insertKeys(t.db, at(HOUR), 'completed', 2, 'h1-')
      await insertKeys(t.db, at(HOUR), 'in_flight', 1, 'h1-flight-')
      await insertKeys(t.db, at(30 * DAY), 'completed', 4, 'd30-')
      await insertKeys(t.db, at(30 * DAY), 'in_flight', 1, 'd30-flight-')
      const before = await keys(t.db)

      const stats = await idempotencyStats(t.db, now)
      expect(stats.total).toBe(19)
      expect(stats.defaultPurge.keys).toBe(12)
      expect(stats.byState.in_flight).toEqual({'<1h': 1, '72h-7d': 1, '>7d': 1})
      expect(stats.partitions.find((p) => p.name === partitionOf(at(5 * DAY)))?.rows).toBe(5)

      const dry = await purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, batchSize: 2, dryRun: true, now})
      expect(dry).toMatchObject({dryRun: true, deleted: 12, complete: true})
      expect(await keys(t.db)).toEqual(before)

      const r = await purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, batchSize: 2, now})
      expect(r).toMatchObject({deleted: 12, complete: true})
      expect(r.partitionsDropped).toContain(partitionOf(at(5 * DAY)))
      expect(r.partitionsDropped).not.toContain(partitionOf(at(4 * DAY)))
      expect(r.batches).toBeGreaterThanOrEqual(4)
      expect(await keys(t.db)).toEqual(['d2-1', 'd2-2', 'd30-flight-1', 'd4-flight-1', 'h1-1', 'h1-2', 'h1-flight-1'])
      expect(r.oldestRemaining).toBe(at(30 * DAY).toISOString())
      // a rerun finds nothing more
      expect((await purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, now})).deleted).toBe(0)
    })

    it('refuses a window below the 24 h floor unless forced', async () => {
      await expect(purgeIdempotencyKeys(t.db, {olderThanMs: HOUR})).rejects.toBeInstanceOf(UsageError)
      await expect(purgeIdempotencyKeys(t.db, {olderThanMs: HOUR})).rejects.toThrow(/24 h floor/)
      const r = await purgeIdempotencyKeys(t.db, {olderThanMs: 2 * HOUR, force: true})
      // the 1-hour-old keys are inside even this window
      expect(r.complete).toBe(true)
      expect(await keys(t.db)).toContain('h1-1')
    })

    it('stops at its time budget with work left, and a rerun finishes the job', async () => {
      await insertKeys(t.db, new Date(Date.now() - 40 * DAY), 'completed', 60, 'budget-')
      const first = await purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, batchSize: 1, pauseMs: 25, maxRuntimeMs: 150})
      expect(first.complete).toBe(false)
      expect(first.deleted).toBeGreaterThan(0)
      expect(first.deleted).toBeLessThan(60)
      const second = await purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, batchSize: 10})
      expect(second.complete).toBe(true)
      expect(first.deleted + second.deleted).toBe(60)
      expect((await keys(t.db)).filter((k) => k.startsWith('budget-'))).toEqual([])
    })
  })
}

describe('idempotency purge on Postgres: concurrency, orders, kills', () => {
  const t = usePostgres({max: 12})

  it('one purge at a time: a second one, from another pool, exits at once', async () => {
    await insertKeys(t.db, new Date(Date.now() - 10 * DAY), 'completed', 40, 'conc-')
    const other = new PostgresDb(t.url!, {max: 2})
    try {
      const first = purgeIdempotencyKeys(t.db, {olderThanMs: 72 * HOUR, batchSize: 1, pauseMs: 20})
      await new Promise((r) => setTimeout(r, 150))
      await expect(purgeIdempotencyKeys(other, {olderThanMs: 72 * HOUR})).rejects.toBeInstanceOf(PurgeLockedError)
      expect((await first).deleted).toBe(40)
      // released: the other one may run now
      expect((await purgeIdempotencyKeys(other, {olderThanMs: 72 * HOUR})).complete).toBe(true)
    } finally {
      await other.close()
    }
  })

  it('a purge during a drop with retries: no duplicate order, every retry inside the window replays', async () => {
    await insertKeys(t.db, new Date(Date.now() - 10 * DAY), 'completed', 3000, 'old-')
    const f = await createDropFixture(t.db, 200)
    const deps = {db: t.db}
    const drop = await createDrop(deps, {creatorId: f.creatorId, productId: f.productId, stock: 120, startsAt: new Date(), endsAt: new Date(Date.now() + HOUR), strategy: 'row'})
    await startDrop(deps, drop.id)
    const purge = purgeIdempotencyKeys(t.db, {olderThanMs: 24 * HOUR, batchSize: 50, pauseMs: 2})
    let mismatches = 0
    await Promise.all(
      f.buyerIds.map(async (userId, i) => {
        const request = {userId, dropId: drop.id, qty: 1, idempotencyKey: `during-${i}`}
        const first = await placeOrder(deps, request)
        for (let retry = 0; retry < 3; retry++) {
          await new Promise((r) => setTimeout(r, 5 + (i % 7) * 3))
          const again = await placeOrder(deps, request)
          if (!again.replay || !isDeepStrictEqual(again.response, first.response)) mismatches++
        }
      }),
    )
    const done = await purge
    expect(done.deleted).toBe(3000)
    expect(mismatches).toBe(0)
    const {rows} = await t.db.query<{n: number; keys: number}>(`SELECT count(*)::int AS n, count(DISTINCT (user_id, idempotency_key))::int AS keys FROM orders WHERE drop_id = $1`, [drop.id])
    expect(rows[0]).toEqual({n: 120, keys: 120})
  })

  it('CLI: --yes rule, dry run, and a purge killed mid-way then rerun', async () => {
    await t.db.exec(`DELETE FROM idempotency_keys`)
    await insertKeys(t.db, new Date(Date.now() - 10 * DAY), 'completed', 600, 'kill-')
    await insertKeys(t.db, new Date(Date.now() - 10 * DAY), 'in_flight', 3, 'kill-flight-')
    await insertKeys(t.db, new Date(Date.now() - HOUR), 'completed', 5, 'fresh-')
    const db = ['--db', t.url!]
    const refused = await runCli(['idempotency', 'purge', '--older-than', '72h', ...db])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/CONFIRMATION_REQUIRED/)
    expect(await keys(t.db)).toHaveLength(608)
    // a dry run needs no --yes
    const dry = await runCli(['idempotency', 'purge', '--older-than', '72h', '--dry-run', '--json', ...db])
    expect(dry.code).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({dryRun: true, deleted: 600})

    // killed (SIGKILL by the runner's timeout) while deleting slowly
    const killed = await runCli(['idempotency', 'purge', '--older-than', '72h', '--batch-size', '5', '--pause-ms', '40', '--yes', ...db], {timeoutMs: 6000})
    expect(killed.code).not.toBe(0)
    const left = (await keys(t.db)).filter((k) => /^kill-\d/.test(k)).length
    expect(left).toBeGreaterThan(0)
    expect(await keys(t.db)).toEqual(expect.arrayContaining(['kill-flight-1', 'kill-flight-2', 'kill-flight-3', 'fresh-1', 'fresh-5']))

    // a budget too small for the rest: exit 5; then a rerun completes
    const budget = await runCli(['idempotency', 'purge', '--older-than', '72h', '--batch-size', '1', '--pause-ms', '20', '--max-runtime', '300ms', '--yes', ...db])
    expect(budget.code).toBe(5)
    expect(budget.stderr).toMatch(/PURGE_INCOMPLETE/)
    const rerun = await runCli(['idempotency', 'purge', '--older-than', '72h', '--yes', '--json', ...db])
    expect(rerun.code).toBe(0)
    expect(JSON.parse(rerun.stdout)).toMatchObject({complete: true})
    expect((await keys(t.db)).sort()).toEqual(['fresh-1', 'fresh-2', 'fresh-3', 'fresh-4', 'fresh-5', 'kill-flight-1', 'kill-flight-2', 'kill-flight-3'])
    const stats = await runCli(['idempotency', 'stats', '--json', ...db])
    expect(JSON.parse(stats.stdout)).toMatchObject({total: 8, defaultPurge: {keys: 0}})
  })
})
