import {beforeAll, describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {addEvent, addFollowers, createCreator, createUsers, deliveredTo, eventRow} from './helpers/fanout-world.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import {drainOutbox, fanoutStatus, listNotifications, startFanoutWorkers, type DeliveryEvent} from '../src/core/fanout/index.js'
import {follow, unfollow} from '../src/core/catalog/follows.js'
import type {Db} from '../src/core/db/types.js'


async function feedIds(db: Db, userId: number): Promise<number[]> {
  const ids: number[] = []
  let cursor: string | null = null
  do {
    const page = await listNotifications(db, userId, {cursor, limit: 3})
    ids.push(...page.items.map((n) => n.eventId))
    cursor = page.nextCursor
  } while (cursor)
  return ids
}

for (const backend of BACKENDS) {
  describe(`fan-out on ${backend.name}`, () => {
    const t = backend.use()

    beforeAll(async () => {
      await createUsers(t.db, 1, 10_000)
    })

    it('concurrent workers in two drains deliver many events exactly once', async () => {
      const creators = [await createCreator(t.db), await createCreator(t.db), await createCreator(t.db)]
      for (const [i, c] of creators.entries()) await addFollowers(t.db, c.creatorId, 1 + i * 1000, 6000 + i * 1000)
      const events: Array<{id: number; creatorId: number}> = []
      for (const c of creators) {
        for (const type of ['drop_started', 'stock_low', 'sold_out'] as const) {
          // stock events name only the drop: the worker finds the creator through it
          events.push({id: await addEvent(t.db, type, c.dropId, type === 'drop_started' ? {creatorId: c.creatorId} : {}), creatorId: c.creatorId})
        }
      }
      const buyers = Array.from({length: 300}, (_, i) => 1 + ((i * 37) % 500))
      const orderEvents: Array<{id: number; buyer: number}> = []
      for (const buyer of buyers) orderEvents.push({id: await addEvent(t.db, 'order_confirmed', creators[0].dropId, {userId: buyer}), buyer})

      const other: Db = t.url ? new PostgresDb(t.url, {max: 4}) : t.db
      let results
      try {
        results = await Promise.all([
          drainOutbox(t.db, {workers: 3, pageSize: 700, orderBatch: 40, pollMs: 10}),
          drainOutbox(other, {workers: 3, pageSize: 700, orderBatch: 40, pollMs: 10}),
        ])
      } finally {
        if (other !== t.db) await other.close()
      }
      expect(results[0].events + results[1].events).toBe(events.length + orderEvents.length)
      expect(results[0].notifications + results[1].notifications).toBe(events.length * 6000 + orderEvents.length)
      for (const e of events) {
        expect(await deliveredTo(t.db, e.id, e.creatorId)).toEqual({n: 6000, users: 6000, strangers: 0})
        expect((await eventRow(t.db, e.id)).delivered).toBe(6000)
      }
      // order confirmations reach their buyer and nobody else
      const {rows} = await t.db.query<{event_id: number; user_id: number}>(`SELECT event_id, user_id FROM notifications WHERE event_id = ANY($1::bigint[])`, [
        orderEvents.map((o) => o.id),
      ])
      expect(rows.length).toBe(orderEvents.length)
      const byEvent = new Map(rows.map((r) => [r.event_id, r.user_id]))
      for (const o of orderEvents) expect(byEvent.get(o.id)).toBe(o.buyer)
      expect((await fanoutStatus(t.db)).pendingEvents).toBe(0)
    })

    it('rows that already exist (an event reset by hand) are skipped, never doubled', async () => {
      const c = await createCreator(t.db)
      await addFollowers(t.db, c.creatorId, 1, 900)
      const eventId = await addEvent(t.db, 'drop_started', c.dropId, {creatorId: c.creatorId})
      // rows for followers 301..330 exist although the event's progress says nothing was delivered
      await t.db.query(`INSERT INTO notifications (user_id, event_id, event_type, drop_id) SELECT g, $1, 'drop_started', $2 FROM generate_series(301, 330) g`, [eventId, c.dropId])
      const result = await drainOutbox(t.db, {eventId, pageSize: 200})
      expect(result.notifications).toBe(870)
      expect(await eventRow(t.db, eventId)).toMatchObject({delivered: 870, cursor_user_id: 900})
      expect(await deliveredTo(t.db, eventId, c.creatorId)).toEqual({n: 900, users: 900, strangers: 0})
    })

    it('celebrity: pull event is in every follower feed at commit; opted-in followers get one pushed row', async () => {
      const celeb = await createCreator(t.db)
      await addFollowers(t.db, celeb.creatorId, 1, 3000, 10)
      const eventId = await addEvent(t.db, 'drop_started', celeb.dropId, {creatorId: celeb.creatorId})
      // committed, no worker has run: already visible to followers, not to others
      for (const user of [1, 10, 2999, 3000]) expect((await listNotifications(t.db, user, {limit: 5})).items.map((n) => n.eventId)).toContain(eventId)
      expect((await listNotifications(t.db, 3001, {limit: 50})).items.map((n) => n.eventId)).not.toContain(eventId)

      const result = await drainOutbox(t.db, {eventId, pullThreshold: 1000, pageSize: 500})
      expect(result).toMatchObject({events: 1, pullEvents: 1, pushEvents: 0, notifications: 300})
      expect(await eventRow(t.db, eventId)).toMatchObject({delivery: 'pull', delivered: 300})
      const pushed = await t.db.query<{user_id: number}>(`SELECT user_id FROM notifications WHERE event_id = $1 ORDER BY user_id`, [eventId])
      expect(pushed.rows.map((r) => r.user_id)).toEqual(Array.from({length: 300}, (_, i) => (i + 1) * 10))

      // both paths apply to opted-in followers: the feed still lists the event once, as the pushed row
      const optedIn = (await listNotifications(t.db, 10, {limit: 50})).items.filter((n) => n.eventId === eventId)
      expect(optedIn).toHaveLength(1)
      expect(optedIn[0].via).toBe('push')
      const plain = (await listNotifications(t.db, 11, {limit: 50})).items.filter((n) => n.eventId === eventId)
      expect(plain).toHaveLength(1)
      expect(plain[0]).toMatchObject({via: 'pull', eventType: 'drop_started', dropId: celeb.dropId})

      // more events, paged 3 at a time: newest first, no duplicates, nothing skipped
      const more = [
        await addEvent(t.db, 'stock_low', celeb.dropId),
        await addEvent(t.db, 'sold_out', celeb.dropId),
        await addEvent(t.db, 'order_confirmed', celeb.dropId, {userId: 10}),
      ]
      await drainOutbox(t.db, {pullThreshold: 1000, dropId: celeb.dropId})
      const ids = await feedIds(t.db, 10)
      expect(new Set(ids).size).toBe(ids.length)
      expect(ids).toEqual([...ids].sort((a, b) => b - a))
      for (const id of [eventId, ...more]) expect(ids).toContain(id)
      const plainIds = await feedIds(t.db, 11)
      expect(plainIds).toContain(more[1])
      expect(plainIds).not.toContain(more[2])
    })

    it('follow late, unfollow: on both the push and the pull path', async () => {
      for (const threshold of [1_000_000, 10]) {
        const c = await createCreator(t.db)
        await addFollowers(t.db, c.creatorId, 1, 50)
        const before = await addEvent(t.db, 'drop_started', c.dropId, {creatorId: c.creatorId})
        await drainOutbox(t.db, {pullThreshold: threshold, dropId: c.dropId})
        await follow(t.db, 60, c.creatorId)
        await unfollow(t.db, 5, c.creatorId)
        const after = await addEvent(t.db, 'sold_out', c.dropId)
        // the follow-late user must not see the old event even while the new one is pending
        expect(await feedIds(t.db, 60)).not.toContain(before)
        await drainOutbox(t.db, {pullThreshold: threshold, dropId: c.dropId})

        const late = await feedIds(t.db, 60)
        expect(late).toContain(after)
        expect(late).not.toContain(before)
        expect(await feedIds(t.db, 5)).not.toContain(after)
        const stayed = await feedIds(t.db, 6)
        expect(stayed).toEqual(expect.arrayContaining([after, before]))
        if (threshold > 50) {
          // pushed rows: the old event stays with the unfollower, nobody else got a row for the new one
          expect(await feedIds(t.db, 5)).toContain(before)
          expect(await deliveredTo(t.db, after, c.creatorId)).toEqual({n: 50, users: 50, strangers: 0})
        } else {
          expect((await eventRow(t.db, after)).delivery).toBe('pull')
        }
      }
    })

    it('long-running workers report deliveries to listeners and stop cleanly', async () => {
      const c = await createCreator(t.db)
      await addFollowers(t.db, c.creatorId, 100, 199)
      const handle = startFanoutWorkers(t.db, {workers: 2, pollMs: 1000, pageSize: 40})
      const seen: DeliveryEvent[] = []
      const errors: unknown[] = []
      handle.onError((e) => errors.push(e))
      const finished = new Promise<void>((resolve) =>
        handle.onDelivered((d) => {
          seen.push(d)
          if (d.done) resolve()
        }),
      )
      try {
        const eventId = await addEvent(t.db, 'drop_started', c.dropId, {creatorId: c.creatorId})
        const started = performance.now()
        handle.wake()
        await finished
        // woken, not waiting out the 1 s idle poll
        expect(performance.now() - started).toBeLessThan(900)
        expect(seen.every((d) => d.eventId === eventId)).toBe(true)
        expect(seen.map((d) => d.inserted)).toEqual([40, 40, 20])
        expect(seen.flatMap((d) => d.userIds).sort((a, b) => a - b)).toEqual(Array.from({length: 100}, (_, i) => 100 + i))
      } finally {
        await handle.stop()
      }
      expect(errors).toEqual([])
    })
  })
}
