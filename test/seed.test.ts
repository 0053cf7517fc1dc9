import {describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {seed, SEED_DEFAULTS} from '../src/core/catalog/seed.js'
import {NotEmptyError, UsageError} from '../src/core/errors.js'
import type {Db} from '../src/core/db/types.js'

async function fingerprint(db: Db): Promise<Record<string, string>> {
  const q = async (sql: string) => (await db.query<{h: string}>(sql)).rows[0].h
  return {
    users: await q(`SELECT md5(string_agg(id || handle || display_name, ',' ORDER BY id)) AS h FROM users`),
    creators: await q(`SELECT md5(string_agg(id || name || is_celebrity || follower_count, ',' ORDER BY id)) AS h FROM creators`),
    follows: await q(`SELECT md5(string_agg(creator_id || ':' || user_id || notify, ',' ORDER BY creator_id, user_id)) AS h FROM follows`),
    products: await q(`SELECT md5(string_agg(id || title || price_cents, ',' ORDER BY id)) AS h FROM products`),
  }
}

const options = {...SEED_DEFAULTS, users: 3000, creators: 30, celebrities: 2, celebrityFollowers: 2500, productsPerCreator: 2, seed: 7}

for (const backend of BACKENDS) {
  describe(`seed on ${backend.name}`, () => {
    const t = backend.use()

    it('builds skewed follows and the same rows for the same seed', async () => {
      const result = await seed(t.db, options)
      expect(result.rows.users).toBe(3000)
      expect(result.rows.creators).toBe(30)
      expect(result.rows.products).toBe(60)
      const first = await fingerprint(t.db)

      const {rows} = await t.db.query<{creator_id: number; n: number}>(
        `SELECT creator_id, count(*)::int AS n FROM follows GROUP BY creator_id ORDER BY creator_id`,
      )
      expect(rows.slice(0, 2).map((r) => r.n)).toEqual([2500, 2500])
      const ordinary = rows.slice(2).map((r) => r.n).sort((a, b) => a - b)
      // skew: the median ordinary creator has a handful, far fewer than a celebrity
      expect(ordinary[Math.floor(ordinary.length / 2)]).toBeLessThan(100)
      const counts = await t.db.query<{ok: boolean}>(
        `SELECT bool_and(c.follower_count = (SELECT count(*) FROM follows f WHERE f.creator_id = c.id)) AS ok FROM creators c`,
      )
      expect(counts.rows[0].ok).toBe(true)
      // nobody follows themselves
      expect((await t.db.query(`SELECT 1 FROM follows WHERE creator_id = user_id`)).rowCount).toBe(0)

      await expect(seed(t.db, options)).rejects.toBeInstanceOf(NotEmptyError)
      await seed(t.db, {...options, reset: true})
      expect(await fingerprint(t.db)).toEqual(first)

      await seed(t.db, {...options, seed: 8, reset: true})
      expect((await fingerprint(t.db)).users).not.toEqual(first.users)
      // new rows get ids after the seeded ones
      const next = await t.db.query<{id: number}>(`INSERT INTO users (handle, display_name) VALUES ('new', 'New') RETURNING id`)
      expect(next.rows[0].id).toBe(3001)
    })

    it('leaves the copied tables vacuumed and all-visible, so the first run neither meets autovacuum nor fetches heap pages in index-only scans', async () => {
      await seed(t.db, {...options, reset: true})
      // VACUUM reports itself to the statistics as it ends (ANALYZE alone leaves last_vacuum empty)
      const {rows} = await t.db.query<{relname: string}>(
        `SELECT relname FROM pg_stat_user_tables WHERE relname IN ('users', 'creators', 'products') AND last_vacuum IS NOT NULL ORDER BY relname`,
      )
      expect(rows.map((r) => r.relname)).toEqual(['creators', 'products', 'users'])
      // every page in the visibility map (follows is partitioned: its partitions hold the pages)
      const visibility = await t.db.query<{relname: string; relpages: number; relallvisible: number}>(
        `SELECT relname, relpages, relallvisible FROM pg_class WHERE relkind = 'r' AND (relname = 'users' OR relname LIKE 'follows_p%') ORDER BY relname`,
      )
      expect(visibility.rows.length).toBeGreaterThan(1)
      for (const r of visibility.rows) expect(r, r.relname).toMatchObject({relallvisible: r.relpages})
    })

    it('raises users when a celebrity needs more followers', async () => {
      const result = await seed(t.db, {...options, users: 100, creators: 5, celebrities: 1, celebrityFollowers: 1000, reset: true})
      expect(result.usersRaisedTo).toBe(1001)
      expect(result.rows.users).toBe(1001)
    })

    it('rejects impossible options naming the fields, writing nothing', async () => {
      await t.db.exec('TRUNCATE users, creators, follows, products CASCADE')
      await expect(seed(t.db, {...options, creators: 5, celebrities: 6, users: 0})).rejects.toThrow(/--users.*--celebrities|--celebrities/)
      await expect(seed(t.db, {...options, celebrities: 6, creators: 5})).rejects.toBeInstanceOf(UsageError)
      expect((await t.db.query(`SELECT 1 FROM users`)).rowCount).toBe(0)
    })
  })
}
