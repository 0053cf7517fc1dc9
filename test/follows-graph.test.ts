import {beforeAll, describe, expect, it} from 'vitest'
import {BACKENDS} from './helpers/db.js'
import {addFollowers, createCreator, createUsers} from './helpers/fanout-world.js'
import {doesFollow, follow, listFollowers, listFollowing, unfollow} from '../src/core/catalog/follows.js'
import {NotFoundError, UsageError} from '../src/core/errors.js'
import {InvalidCursorError} from '../src/core/catalog/cursor.js'
import type {Db} from '../src/core/db/types.js'
import {createRandom} from '../src/core/random.js'

async function followerCount(db: Db, creatorId: number): Promise<{stored: number; actual: number}> {
  const {rows} = await db.query<{stored: number; actual: number}>(
    `SELECT follower_count::int AS stored, (SELECT count(*) FROM follows WHERE creator_id = $1)::int AS actual FROM creators WHERE id = $1`,
    [creatorId],
  )
  return rows[0]
}

for (const backend of BACKENDS) {
  describe(`follow graph on ${backend.name}`, () => {
    const t = backend.use()

    beforeAll(async () => {
      await createUsers(t.db, 1, 3000)
    })

    it('follow is idempotent, keeps follower_count in step, and rejects unknown ids and self-follows', async () => {
      const c = await createCreator(t.db)
      const first = await follow(t.db, 7, c.creatorId)
      expect(first).toMatchObject({userId: 7, creatorId: c.creatorId, notify: false, created: true})
      const again = await follow(t.db, 7, c.creatorId)
      expect(again).toMatchObject({created: false, notify: false})
      expect(again.followedAt).toEqual(first.followedAt)
      // following again with notify changes only the opt-in
      expect(await follow(t.db, 7, c.creatorId, {notify: true})).toMatchObject({created: false, notify: true})
      expect(await follow(t.db, 7, c.creatorId)).toMatchObject({notify: true})
      expect(await followerCount(t.db, c.creatorId)).toEqual({stored: 1, actual: 1})
      expect(await doesFollow(t.db, 7, c.creatorId)).toBe(true)
      expect(await doesFollow(t.db, 8, c.creatorId)).toBe(false)

      expect(await unfollow(t.db, 7, c.creatorId)).toEqual({removed: true})
      expect(await unfollow(t.db, 7, c.creatorId)).toEqual({removed: false})
      expect(await followerCount(t.db, c.creatorId)).toEqual({stored: 0, actual: 0})
      expect(await doesFollow(t.db, 7, c.creatorId)).toBe(false)

      await expect(follow(t.db, 7, 999_999)).rejects.toBeInstanceOf(NotFoundError)
      await expect(follow(t.db, 999_999, c.creatorId)).rejects.toBeInstanceOf(NotFoundError)
      await expect(unfollow(t.db, 7, 999_999)).rejects.toMatchObject({code: 'NOT_FOUND', httpStatus: 404})
      const self = follow(t.db, c.userId, c.creatorId)
      await expect(self).rejects.toBeInstanceOf(UsageError)
      await expect(self).rejects.toThrow(/cannot follow themselves/)
      expect(await followerCount(t.db, c.creatorId)).toEqual({stored: 0, actual: 0})
    })

    it('concurrent follows and unfollows of the same pairs leave an exact follower_count', async () => {
      const c = await createCreator(t.db)
      const users = Array.from({length: 40}, (_, i) => 100 + i)
      // every user follows three times and unfollows once, all at once, in a shuffled order
      const ops: Array<() => Promise<unknown>> = []
      for (const u of users) ops.push(() => follow(t.db, u, c.creatorId), () => follow(t.db, u, c.creatorId), () => unfollow(t.db, u, c.creatorId), () => follow(t.db, u, c.creatorId, {notify: true}))
      const random = createRandom(5)
      for (let i = ops.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1))
        ;[ops[i], ops[j]] = [ops[j], ops[i]]
      }
      await Promise.all(ops.map((op) => op()))
      expect((await followerCount(t.db, c.creatorId)).stored).toBe((await followerCount(t.db, c.creatorId)).actual)
      // a second wave: everyone ends unfollowed
      await Promise.all(users.flatMap((u) => [unfollow(t.db, u, c.creatorId), unfollow(t.db, u, c.creatorId)]))
      expect(await followerCount(t.db, c.creatorId)).toEqual({stored: 0, actual: 0})
    })

    it('follower pages are keyset-ordered and deterministic while follows are inserted concurrently', async () => {
      const c = await createCreator(t.db)
      // odd users follow up front; even users follow while we page
      await t.db.query(
        `INSERT INTO follows (creator_id, user_id, created_at) SELECT $1, g, now() - interval '1 hour' FROM generate_series(1, 2999, 2) g`,
        [c.creatorId],
      )
      await t.db.query(`UPDATE creators SET follower_count = 1500 WHERE id = $1`, [c.creatorId])
      const seen: number[] = []
      let cursor: string | null = null
      let inserter = Promise.resolve()
      let pages = 0
      let added = 0
      do {
        const page = await listFollowers(t.db, c.creatorId, {cursor, limit: 97})
        seen.push(...page.items.map((f) => f.userId))
        cursor = page.nextCursor
        if (pages++ < 20) {
          const evens = Array.from({length: 10}, (_, i) => 2 * (pages * 10 + i + 1))
          added += evens.length
          inserter = inserter.then(async () => {
            for (const u of evens) await follow(t.db, u, c.creatorId)
          })
        }
      } while (cursor)
      await inserter
      expect(seen).toEqual([...seen].sort((a, b) => a - b))
      expect(new Set(seen).size).toBe(seen.length)
      const odd = seen.filter((u) => u % 2 === 1)
      expect(odd).toEqual(Array.from({length: 1500}, (_, i) => 2 * i + 1))
      expect(added).toBeGreaterThan(100)
      expect(await followerCount(t.db, c.creatorId)).toEqual({stored: 1500 + added, actual: 1500 + added})
      // a walk after the inserts sees every follower exactly once
      const all: number[] = []
      cursor = null
      do {
        const page = await listFollowers(t.db, c.creatorId, {cursor, limit: 1000})
        all.push(...page.items.map((f) => f.userId))
        cursor = page.nextCursor
      } while (cursor)
      expect(all.length).toBe(1500 + added)
      expect(page0Handle(await listFollowers(t.db, c.creatorId, {limit: 1}))).toBe('u1')
    })

    it('lists whom a user follows, and rejects foreign or forged cursors', async () => {
      const creators = [await createCreator(t.db), await createCreator(t.db), await createCreator(t.db)]
      for (const c of creators) await follow(t.db, 2500, c.creatorId, {notify: c === creators[1]})
      const first = await listFollowing(t.db, 2500, {limit: 2})
      expect(first.items.map((f) => f.creatorId)).toEqual(creators.slice(0, 2).map((c) => c.creatorId))
      expect(first.items[1].notify).toBe(true)
      const second = await listFollowing(t.db, 2500, {cursor: first.nextCursor, limit: 2})
      expect(second.items.map((f) => f.creatorId)).toEqual([creators[2].creatorId])
      expect(second.nextCursor).toBeNull()

      await expect(listFollowing(t.db, 2501, {cursor: first.nextCursor})).rejects.toBeInstanceOf(InvalidCursorError)
      await expect(listFollowers(t.db, creators[0].creatorId, {cursor: first.nextCursor!.replace(/.$/, 'x')})).rejects.toBeInstanceOf(InvalidCursorError)
      await expect(listFollowers(t.db, creators[0].creatorId, {limit: 0})).rejects.toBeInstanceOf(UsageError)
      await expect(listFollowers(t.db, 999_999)).rejects.toBeInstanceOf(NotFoundError)
      await expect(listFollowing(t.db, 999_999)).rejects.toBeInstanceOf(NotFoundError)
      await addFollowers(t.db, creators[2].creatorId, 1, 10)
      expect((await listFollowers(t.db, creators[2].creatorId, {limit: 100})).items.map((f) => f.userId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2500])
    })
  })
}

function page0Handle(page: {items: Array<{handle: string}>}): string {
  return page.items[0].handle
}
