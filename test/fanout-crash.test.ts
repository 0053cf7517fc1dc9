import {describe, expect, it} from 'vitest'
import {randomBytes} from 'node:crypto'
import {BACKENDS} from './helpers/db.js'
import {addEvent, addFollowers, createCreator, deliveredTo, eventRow} from './helpers/fanout-world.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import {drainOutbox, fanoutStatus} from '../src/core/fanout/index.js'
import type {Db} from '../src/core/db/types.js'

const FOLLOWERS = 100_000

for (const backend of BACKENDS) {
  describe(`fan-out crash and takeover on ${backend.name}`, () => {
    const t = backend.use()

    // no users rows: follows and notifications carry no foreign keys, and 100k users would only slow setup
    it('a worker dying mid-page is taken over after its lease: every follower notified exactly once', async () => {
      const {creatorId, dropId} = await createCreator(t.db)
      await addFollowers(t.db, creatorId, 1, FOLLOWERS)
      const eventId = await addEvent(t.db, 'drop_started', dropId, {creatorId})
      const pageSize = 2500
      const killAtPage = 12
      const victimName = `fanout-victim-${randomBytes(4).toString('hex')}`
      // on Postgres the victim has its own pool whose backend we terminate mid-page
      const victim: Db = t.url ? new PostgresDb(t.url, {applicationName: victimName, max: 2}) : t.db
      if (victim instanceof PostgresDb) {
        // PostgresDb.transaction leaves a checked-out client without an 'error' listener, so a
        // terminated backend would surface as an uncaught exception (reported to the lead);
        // the failure we test reaches the worker through its next query either way
        victim.pool.on('connect', (client) => client.on('error', () => {}))
      }
      let pages = 0
      let insertedInKilledPage = 0
      try {
        const run = drainOutbox(victim, {
          workers: 1,
          pageSize,
          pullThreshold: FOLLOWERS,
          leaseMs: 1500,
          pollMs: 20,
          ownerPrefix: 'victim',
          hooks: {
            async inPage(page) {
              if (++pages < killAtPage) return
              insertedInKilledPage = page.inserted
              if (t.url) {
                const killed = await t.db.query(
                  `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
                  [victimName],
                )
                expect(killed.rows.length).toBeGreaterThan(0)
              } else {
                throw new Error('simulated crash mid-page')
              }
            },
          },
        })
        await expect(run).rejects.toThrow()
      } finally {
        if (victim !== t.db) await victim.close()
      }
      // the killed page had inserted its rows, which rolled back with it
      expect(insertedInKilledPage).toBe(pageSize)
      const crashed = await eventRow(t.db, eventId)
      expect(crashed.processed_at).toBeNull()
      expect(crashed.lease_owner).toBe('victim-w0')
      expect(crashed.delivered).toBe((killAtPage - 1) * pageSize)
      expect(crashed.cursor_user_id).toBe((killAtPage - 1) * pageSize)
      expect((await deliveredTo(t.db, eventId, creatorId)).n).toBe((killAtPage - 1) * pageSize)
      const status = await fanoutStatus(t.db)
      expect(status.events.find((e) => e.id === eventId)).toMatchObject({delivered: (killAtPage - 1) * pageSize, leaseOwner: 'victim-w0', delivery: 'push', target: FOLLOWERS})

      const rescue = await drainOutbox(t.db, {workers: 2, pageSize, pullThreshold: FOLLOWERS, leaseMs: 1500, pollMs: 20, ownerPrefix: 'rescuer'})
      expect(rescue.events).toBe(1)
      expect(rescue.notifications).toBe(FOLLOWERS - (killAtPage - 1) * pageSize)
      const done = await eventRow(t.db, eventId)
      expect(done.processed_at).not.toBeNull()
      // the rescuer waited for the dead worker's lease instead of racing it
      expect(done.processed_at!.getTime()).toBeGreaterThanOrEqual(crashed.lease_until!.getTime())
      expect(done.attempts).toBe(2)
      expect(done.delivered).toBe(FOLLOWERS)
      expect(done.lease_owner).toBeNull()
      expect(await deliveredTo(t.db, eventId, creatorId)).toEqual({n: FOLLOWERS, users: FOLLOWERS, strangers: 0})
      expect(rescue.latency.count).toBe(rescue.notifications)
    })
  })
}
