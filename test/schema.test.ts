import {describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {assertMigrated, latestVersion, migrate, rowCounts, schemaState, TABLES} from '../src/core/db/migrate.js'
import {SchemaNotMigratedError, SchemaTooNewError} from '../src/core/errors.js'

for (const backend of BACKENDS) {
  describe(`schema on ${backend.name}`, () => {
    const t = backend.use()

    it('is at the latest version and migrating again is a no-op', async () => {
      expect(await schemaState(t.db)).toMatchObject({current: latestVersion(), pending: []})
      expect(await migrate(t.db)).toEqual([])
      await assertMigrated(t.db)
      const counts = await rowCounts(t.db)
      expect(Object.keys(counts).sort()).toEqual([...TABLES].sort())
    })

    it('hash-partitions follows and keeps a user-side index', async () => {
      const {rows} = await t.db.query<{n: number}>(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'follows'::regclass`)
      expect(rows[0].n).toBe(8)
      const idx = await t.db.query<{indexdef: string}>(`SELECT indexdef FROM pg_indexes WHERE indexname = 'follows_user_idx'`)
      expect(idx.rows[0].indexdef).toContain('(user_id, creator_id)')
    })

    it('creates daily idempotency-key partitions ahead of today', async () => {
      const today = new Date().toISOString().slice(0, 10).replaceAll('-', '')
      const {rows} = await t.db.query<{relname: string}>(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'idempotency_keys'::regclass`,
      )
      const names = rows.map((r) => r.relname)
      expect(names).toContain(`idempotency_keys_${today}`)
      expect(names).toContain('idempotency_keys_default')
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10).replaceAll('-', '')
      expect(names).toContain(`idempotency_keys_${tomorrow}`)
      expect(names.length).toBeGreaterThanOrEqual(5)
    })

    it('enforces the platform constraints', async () => {
      await t.db.query(`INSERT INTO users (id, handle, display_name) VALUES (9001, 'a', 'A'), (9002, 'b', 'B')`)
      await t.db.query(`INSERT INTO creators (id, user_id, name) VALUES (9001, 9001, 'C')`)
      await t.db.query(`INSERT INTO products (id, creator_id, title, price_cents) VALUES (9001, 9001, 'P', 100)`)
      await expect(
        t.db.query(`INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available) VALUES (9001, 9001, now(), now() - interval '1 hour', 10, 10)`),
      ).rejects.toMatchObject({code: '23514'})
      const d = await t.db.query<{id: number}>(
        `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available) VALUES (9001, 9001, now(), now() + interval '1 hour', 10, 10) RETURNING id`,
      )
      const drop = d.rows[0].id
      await expect(t.db.query(`UPDATE drops SET available = -1 WHERE id = $1`, [drop])).rejects.toMatchObject({code: '23514'})
      await t.db.query(`INSERT INTO orders (user_id, drop_id, qty, idempotency_key) VALUES (9002, $1, 1, 'k1')`, [drop])
      await expect(t.db.query(`INSERT INTO orders (user_id, drop_id, qty, idempotency_key) VALUES (9002, $1, 1, 'k1')`, [drop])).rejects.toMatchObject({
        code: '23505',
      })
      await t.db.query(`INSERT INTO follows (creator_id, user_id) VALUES (9001, 9002)`)
      await expect(t.db.query(`INSERT INTO follows (creator_id, user_id) VALUES (9001, 9002)`)).rejects.toMatchObject({code: '23505'})
    })

    it('refuses a database at a newer schema version than it knows', async () => {
      await t.db.query(`INSERT INTO livedrop_schema (version, name) VALUES (999, 'future')`)
      await expect(migrate(t.db)).rejects.toBeInstanceOf(SchemaTooNewError)
      await expect(assertMigrated(t.db)).rejects.toBeInstanceOf(SchemaTooNewError)
      await t.db.query(`DELETE FROM livedrop_schema WHERE version = 999`)
      await t.db.query(`DELETE FROM livedrop_schema WHERE version = $1`, [latestVersion()])
      await expect(assertMigrated(t.db)).rejects.toBeInstanceOf(SchemaNotMigratedError)
      await t.db.query(`INSERT INTO livedrop_schema (version, name) VALUES ($1, 'schema')`, [latestVersion()])
    })
  })
}

for (const backend of BACKENDS) {
  describe(`rowCount on ${backend.name}`, () => {
    const t = backend.use()
    it('counts rows returned by SELECT and RETURNING, and rows affected otherwise', async () => {
      await t.db.query(`INSERT INTO users (id, handle, display_name) VALUES (7001, 'x1', 'X'), (7002, 'x2', 'X')`)
      expect((await t.db.query(`SELECT id FROM users WHERE id > 7000`)).rowCount).toBe(2)
      expect((await t.db.query(`SELECT id FROM users WHERE id > 9000`)).rowCount).toBe(0)
      expect((await t.db.query(`UPDATE users SET display_name = 'Y' WHERE id > 7000`)).rowCount).toBe(2)
      expect((await t.db.query(`DELETE FROM users WHERE id = 7001 RETURNING id`)).rowCount).toBe(1)
      expect(await t.db.transaction((tx) => tx.query(`SELECT id FROM users WHERE id = 7002`))).toMatchObject({rowCount: 1})
    })
  })
}
