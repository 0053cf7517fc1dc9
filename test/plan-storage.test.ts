import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {measureStorage, MIN_ROWS_FOR_TOTAL, TUPLE_OVERHEAD_BYTES} from '../src/core/audit/storage.js'
import {UsageError} from '../src/core/errors.js'

const pg = usePostgres()

describe('measureStorage (real Postgres)', () => {
  it('counts rows, sizes an average row and sums partitions of a partitioned table', async () => {
    const db = pg.db
    // 20,000 users: past MIN_ROWS_FOR_TOTAL, so the whole relation (heap + indexes) divides by rows
    await db.query(`INSERT INTO users (handle, display_name) SELECT 'storage_u' || g, 'User ' || g FROM generate_series(1, 20000) g`)
    await db.query(`INSERT INTO creators (user_id, name) SELECT id, 'c' || id FROM users ORDER BY id LIMIT 3`)
    // follows is hash-partitioned into 8: rows land in several partitions
    await db.query(`INSERT INTO follows (creator_id, user_id) SELECT c.id, u.id FROM creators c CROSS JOIN (SELECT id FROM users ORDER BY id LIMIT 100) u`)
    await db.query('ANALYZE users')

    const s = await measureStorage(db, ['users', 'follows', 'orders'])
    expect(MIN_ROWS_FOR_TOTAL).toBeLessThan(20_000)
    const users = s.tables.users
    expect(users.rows).toBe(20_000)
    expect(users.basis).toBe('total')
    expect(users.rowBytes!).toBeGreaterThan(20)
    // heap plus its two unique indexes: more than the data alone, and the per-row figure is that total ÷ rows
    expect(users.totalBytes).toBeGreaterThan(20_000 * users.rowBytes!)
    expect(users.bytesPerRow).toBeCloseTo(users.totalBytes / 20_000, 0)

    const follows = s.tables.follows
    expect(follows.rows).toBe(300)
    expect(follows.basis).toBe('row')
    // several partitions, each at least one 8 KiB heap page plus index pages
    expect(follows.totalBytes).toBeGreaterThanOrEqual(2 * 8192)
    expect(follows.bytesPerRow).toBe(Math.round((follows.rowBytes! + TUPLE_OVERHEAD_BYTES) * 10) / 10)

    expect(s.tables.orders).toMatchObject({rows: 0, rowBytes: null, bytesPerRow: null, basis: 'empty'})
  })

  it('refuses a name that is not a plain identifier or not a table', async () => {
    await expect(measureStorage(pg.db, ['users; DROP TABLE users'])).rejects.toBeInstanceOf(UsageError)
    await expect(measureStorage(pg.db, ['no_such_table'])).rejects.toThrow(/no table "no_such_table"/)
  })
})
