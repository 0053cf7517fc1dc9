import {NotFoundError, UsageError} from '../errors.js'
import type {Db, Queryable} from '../db/types.js'
import {decodeCursor, encodeCursor, InvalidCursorError, pageLimit, type Page, type PageOptions} from './cursor.js'

/**
 * The follow graph. follows is keyed (creator_id, user_id) and hash-partitioned by creator, so a
 * creator's followers page through one partition's primary key; follows_user_idx serves the
 * user side. creators.follower_count moves in the same transaction as the row it counts.
 */

export interface FollowOptions {
  /** "Notify me": push this creator's events even when they are pull-delivered. Default false on a
   * new follow; left as it is on an existing follow unless given. */
  notify?: boolean
}

export interface FollowResult {
  userId: number
  creatorId: number
  notify: boolean
  followedAt: Date
  /** false when the user already followed the creator (follow is idempotent). */
  created: boolean
}

export interface Follower {
  userId: number
  handle: string
  notify: boolean
  followedAt: Date
}

export interface Following {
  creatorId: number
  name: string
  notify: boolean
  followedAt: Date
}

export const MAX_PAGE = 1000
export const DEFAULT_PAGE = 100

const SQL = {
  creator: {name: 'follows.creator', text: 'SELECT id, user_id FROM creators WHERE id = $1'},
  user: {name: 'follows.user', text: 'SELECT id FROM users WHERE id = $1'},
  // the insert and the count move together: a concurrent duplicate follow waits on the key and
  // then inserts nothing, so it counts nothing
  insert: {
    name: 'follows.insert',
    text: `WITH ins AS (
             INSERT INTO follows (creator_id, user_id, notify) VALUES ($1, $2, coalesce($3::boolean, false))
             ON CONFLICT (creator_id, user_id) DO NOTHING
             RETURNING creator_id, notify, created_at),
           bump AS (UPDATE creators SET follower_count = follower_count + 1 WHERE id IN (SELECT creator_id FROM ins))
           SELECT notify, created_at FROM ins`,
  },
  setNotify: {
    name: 'follows.set-notify',
    text: `UPDATE follows SET notify = coalesce($3::boolean, notify) WHERE creator_id = $1 AND user_id = $2
           RETURNING notify, created_at`,
  },
  delete: {
    name: 'follows.delete',
    text: `WITH del AS (DELETE FROM follows WHERE creator_id = $1 AND user_id = $2 RETURNING creator_id)
           UPDATE creators SET follower_count = follower_count - 1 WHERE id IN (SELECT creator_id FROM del)
           RETURNING id`,
  },
  followers: {
    name: 'follows.followers',
    text: `SELECT f.user_id, u.handle, f.notify, f.created_at
             FROM follows f JOIN users u ON u.id = f.user_id
            WHERE f.creator_id = $1 AND f.user_id > $2
            ORDER BY f.user_id LIMIT $3`,
  },
  following: {
    name: 'follows.following',
    text: `SELECT f.creator_id, c.name, f.notify, f.created_at
             FROM follows f JOIN creators c ON c.id = f.creator_id
            WHERE f.user_id = $1 AND f.creator_id > $2
            ORDER BY f.creator_id LIMIT $3`,
  },
  does: {name: 'follows.does', text: 'SELECT 1 FROM follows WHERE creator_id = $2 AND user_id = $1'},
}

function creatorNotFound(creatorId: number): NotFoundError {
  return new NotFoundError(`creator ${creatorId} not found`, {hint: 'Check the creator id.', details: {creatorId}})
}

function userNotFound(userId: number): NotFoundError {
  return new NotFoundError(`user ${userId} not found`, {hint: 'Check the user id.', details: {userId}})
}

async function checkPair(q: Queryable, userId: number, creatorId: number): Promise<void> {
  const creator = await q.query<{user_id: number}>(SQL.creator, [creatorId])
  if (creator.rows.length === 0) throw creatorNotFound(creatorId)
  if ((await q.query(SQL.user, [userId])).rows.length === 0) throw userNotFound(userId)
  if (creator.rows[0].user_id === userId) {
    throw new UsageError('creatorId', `user ${userId} is creator ${creatorId}: a user cannot follow themselves`, {hint: 'Follow another creator.'})
  }
}

/** Follows a creator; following again is a no-op (or changes only `notify` when given). */
export async function follow(db: Db, userId: number, creatorId: number, options: FollowOptions = {}): Promise<FollowResult> {
  return db.transaction(async (tx) => {
    await checkPair(tx, userId, creatorId)
    const notify = options.notify ?? null
    const inserted = await tx.query<{notify: boolean; created_at: Date}>(SQL.insert, [creatorId, userId, notify])
    if (inserted.rows.length > 0) {
      const row = inserted.rows[0]
      return {userId, creatorId, notify: row.notify, followedAt: new Date(row.created_at), created: true}
    }
    const existing = await tx.query<{notify: boolean; created_at: Date}>(SQL.setNotify, [creatorId, userId, notify])
    // gone again between the two statements (a concurrent unfollow): report the state we saw
    const row = existing.rows[0] ?? {notify: notify ?? false, created_at: new Date()}
    return {userId, creatorId, notify: row.notify, followedAt: new Date(row.created_at), created: false}
  })
}

/** Unfollows; returns whether a follow was removed (unfollowing twice is a no-op). */
export async function unfollow(db: Db, userId: number, creatorId: number): Promise<{removed: boolean}> {
  return db.transaction(async (tx) => {
    const creator = await tx.query(SQL.creator, [creatorId])
    if (creator.rows.length === 0) throw creatorNotFound(creatorId)
    const deleted = await tx.query(SQL.delete, [creatorId, userId])
    return {removed: deleted.rows.length > 0}
  })
}

export async function doesFollow(db: Queryable, userId: number, creatorId: number): Promise<boolean> {
  return (await db.query(SQL.does, [userId, creatorId])).rows.length > 0
}

/** Follower and following pages: 100 by default, at most 1,000. */
export const FOLLOW_PAGE = {fallback: DEFAULT_PAGE, max: MAX_PAGE}

/** The keyset position after `cursor`, which must have been issued for the same owner id. */
function after(cursor: string | null | undefined, ownerId: number): number {
  if (!cursor) return 0
  const [owner, last] = decodeCursor(cursor, ['number', 'number']) as [number, number]
  if (owner !== ownerId) {
    throw new InvalidCursorError('cursor', 'was issued for another listing', {hint: 'Pass back the nextCursor of the previous page of this listing.'})
  }
  return last
}

/**
 * A creator's followers in user-id order, keyset-paged over (creator_id, user_id): a page never
 * repeats or skips a follow that exists for the whole walk, whatever is inserted meanwhile.
 */
export async function listFollowers(db: Queryable, creatorId: number, options: PageOptions = {}): Promise<Page<Follower>> {
  const limit = pageLimit(options.limit, FOLLOW_PAGE)
  const from = after(options.cursor, creatorId)
  if (!options.cursor && (await db.query(SQL.creator, [creatorId])).rows.length === 0) throw creatorNotFound(creatorId)
  const {rows} = await db.query<{user_id: number; handle: string; notify: boolean; created_at: Date}>(SQL.followers, [creatorId, from, limit])
  const items = rows.map((r) => ({userId: r.user_id, handle: r.handle, notify: r.notify, followedAt: new Date(r.created_at)}))
  return {items, nextCursor: rows.length === limit ? encodeCursor([creatorId, rows[rows.length - 1].user_id]) : null}
}

/** The creators a user follows in creator-id order, keyset-paged over (user_id, creator_id). */
export async function listFollowing(db: Queryable, userId: number, options: PageOptions = {}): Promise<Page<Following>> {
  const limit = pageLimit(options.limit, FOLLOW_PAGE)
  const from = after(options.cursor, userId)
  if (!options.cursor && (await db.query(SQL.user, [userId])).rows.length === 0) throw userNotFound(userId)
  const {rows} = await db.query<{creator_id: number; name: string; notify: boolean; created_at: Date}>(SQL.following, [userId, from, limit])
  const items = rows.map((r) => ({creatorId: r.creator_id, name: r.name, notify: r.notify, followedAt: new Date(r.created_at)}))
  return {items, nextCursor: rows.length === limit ? encodeCursor([userId, rows[rows.length - 1].creator_id]) : null}
}

const FOLLOWER_SAMPLE = {name: 'follows.sample', text: `SELECT user_id FROM follows WHERE creator_id = $1 ORDER BY user_id LIMIT $2`}

/** The first n followers of a creator by user id: a stable sample (a run watches their notifications). */
export async function followerSample(db: Queryable, creatorId: number, n: number): Promise<number[]> {
  const {rows} = await db.query<{user_id: number}>(FOLLOWER_SAMPLE, [creatorId, n])
  return rows.map((r) => Number(r.user_id))
}
