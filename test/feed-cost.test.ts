import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {addFollowers, createCreator, createUsers} from './helpers/fanout-world.js'
import {FEED, listNotifications} from '../src/core/fanout/feed.js'

/**
 * The notifications feed is read at 200/s when a drop opens. Its cost must not grow with the
 * outbox: every order confirmation ever stays there. A pooled connection runs the statement with a
 * generic plan after five executions, so that is the plan measured here (buffers touched, which do
 * not depend on the machine's speed).
 */
describe('notifications feed cost', () => {
  const t = usePostgres()

  it('touches a bounded number of buffers however many order confirmations the outbox holds', async () => {
    const db = t.db
    await createUsers(db, 1, 3000)
    const celebrity = await createCreator(db, 'celebrity')
    // a celebrity's follows as the seed makes them (follows carry no foreign keys)
    await addFollowers(db, celebrity.creatorId, 1, 300_000)
    // the outbox after many drops: each a few pull-delivered events of the celebrity among a
    // thousand processed order confirmations
    await db.query(
      `INSERT INTO outbox (event_type, drop_id, creator_id, user_id, delivery, delivered, processed_at)
       SELECT CASE WHEN g % 1000 = 0 THEN 'stock_low' ELSE 'order_confirmed' END, $1,
              CASE WHEN g % 1000 = 0 THEN $2::bigint END, CASE WHEN g % 1000 = 0 THEN NULL ELSE 1 + g % 3000 END,
              CASE WHEN g % 1000 = 0 THEN 'pull' ELSE 'push' END, 1, now()
         FROM generate_series(1, 30000) g`,
      [celebrity.dropId, celebrity.creatorId],
    )
    // and the confirmations pushed to their buyers' feeds
    await db.query(`INSERT INTO notifications (user_id, event_id, event_type, drop_id) SELECT user_id, id, event_type, drop_id FROM outbox WHERE delivery = 'push'`)
    await db.query('ANALYZE notifications')
    await db.query('ANALYZE outbox')
    await db.query('ANALYZE follows')

    const page = await listNotifications(db, 7, {limit: 20})
    expect(page.items).toHaveLength(20)
    expect(page.items.filter((n) => n.via === 'pull').length).toBeGreaterThan(0)

    const buffers = await db.transaction(async (tx) => {
      await tx.query(`SET LOCAL plan_cache_mode = force_generic_plan`)
      // the generic plan seen on the seeded dataset: nested loops in event id order (a small test
      // database alone would let the planner pick a hash join and hide the walk)
      await tx.query(`SET LOCAL enable_hashjoin = off`)
      await tx.query(`SET LOCAL enable_sort = off`)
      await tx.query(`PREPARE feed_cost(bigint, bigint, int) AS ${FEED.text}`)
      const {rows} = await tx.query<{'QUERY PLAN': Array<{Plan: {'Shared Hit Blocks': number; 'Shared Read Blocks': number}}>}>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE feed_cost(7, ${Number.MAX_SAFE_INTEGER}, 20)`,
      )
      await tx.query('DEALLOCATE feed_cost')
      const plan = rows[0]['QUERY PLAN'][0].Plan
      return plan['Shared Hit Blocks'] + plan['Shared Read Blocks']
    })
    // a page walks the user's follows and each creator's pull index: tens of buffers, where a
    // backward walk of the outbox touches one per fifty events (hundreds here, thousands in a real run)
    expect(buffers).toBeLessThan(150)
  })
})
