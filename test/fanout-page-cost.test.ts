import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {addFollowers, createCreator} from './helpers/fanout-world.js'
import {FANOUT_SQL} from '../src/core/fanout/sql.js'

/**
 * A celebrity's event is pulled from the feed and pushed only to the "notify me" followers, a page
 * of 5,000 at a time, when the drop opens. The page must not read the follows table itself: on a
 * freshly started server each of its rows was a heap page read from disk or the OS cache (36 ms a
 * page against 2 ms). So the page's scan of follows is index-only, created_at included.
 */
describe('fan-out page cost', () => {
  const t = usePostgres()

  it("walks a celebrity's notify-me followers with an index-only scan", async () => {
    const db = t.db
    const celebrity = await createCreator(db, 'celebrity')
    await addFollowers(db, celebrity.creatorId, 1, 50_000, 100)
    await db.exec('VACUUM (ANALYZE) follows')

    const scans = await db.transaction(async (tx) => {
      // the plan the seeded million-follower table gets; a small test table alone would be read whole
      await tx.query('SET LOCAL enable_seqscan = off')
      await tx.query('SET LOCAL enable_bitmapscan = off')
      const {rows} = await tx.query<{'QUERY PLAN': string}>(`EXPLAIN ${FANOUT_SQL.page.pull.insert.text}`, [celebrity.creatorId, 0, 25_000, 1, 'drop_started', celebrity.dropId, new Date()])
      // EXPLAIN without ANALYZE plans the INSERT and writes nothing
      return rows.map((r) => r['QUERY PLAN']).filter((line) => / Scan /.test(line) && /follows/.test(line))
    })
    expect(scans.length).toBeGreaterThan(0)
    for (const scan of scans) expect(scan).toMatch(/Index Only Scan using \S+ on follows/)
  })
})
