import {NotFoundError, UsageError} from '../errors.js'
import type {Queryable} from '../db/types.js'
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

export const FOLLOWS_SQL = {
  creator: {name: 'follows.creator', text: 'SELECT id, user_id FROM creators WHERE id = $1'},
  user: {name: 'follows.user', text: 'SELECT id FROM users WHERE id = $1'},
  // one statement each, so the creator's row (follower_count, hot for a celebrity) is locked only
  // while the statement runs, never across round trips to a busy server. The insert and the count
  // move together: a concurrent duplicate follow waits on the key and then inserts nothing, so it
  // counts nothing. An existing follow only has its notify changed (when given).
  follow: {
    name: 'follows.follow',
    text: `WITH c AS (SELECT id, user_id FROM creators WHERE id = $1),
           u AS (SELECT id FROM users WHERE id = $2),
           ok AS (SELECT 1 FROM c, u WHERE c.user_id <> $2),
           ins AS (
             INSERT INTO follows (creator_id, user_id, notify) SELECT $1, $2, coalesce($3::boolean, false) FROM ok
             ON CONFLICT (creator_id, user_id) DO NOTHING
             RETURNING notify, created_at),
           bump AS (UPDATE creators SET follower_count = follower_count + 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)),
           upd AS (
             UPDATE follows SET notify = coalesce($3::boolean, notify)
              WHERE creator_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM ok) AND NOT EXISTS (SELECT 1 FROM ins)
             RETURNING notify, created_at)
           SELECT (SELECT user_id FROM c) AS creator_user, EXISTS (SELECT 1 FROM u) AS user_known,
                  ins.notify IS NOT NULL AS created, coalesce(ins.notify, upd.notify) AS notify, coalesce(ins.created_at, upd.created_at) AS created_at
             FROM (SELECT 1) one LEFT JOIN ins ON true LEFT JOIN upd ON true`,
  },
  unfollow: {
    name: 'follows.unfollow',
    text: `WITH c AS (SELECT id FROM creators WHERE id = $1),
           del AS (DELETE FROM follows WHERE creator_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM c) RETURNING creator_id),
           bump AS (UPDATE creators SET follower_count = follower_count - 1 WHERE id IN (SELECT creator_id FROM del))
           SELECT EXISTS (SELECT 1 FROM c) AS creator_known, EXISTS (SELECT 1 FROM del) AS removed`,
  },
  followers: {
    name: 'follows.followers',
    // u.id > $2 as well: a merge join (the plan a big creator's page gets) then starts the users
    // index at the cursor, where without it it walked every user below it (135 ms at depth 400,000)
    text: `SELECT f.user_id, u.handle, f.notify, f.created_at
             FROM follows f JOIN users u ON u.id = f.user_id
            WHERE f.creator_id = $1 AND f.user_id > $2 AND u.id > $2
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

/** Follows a creator; following again is a no-op (or changes only `notify` when given). */
export async function follow(db: Queryable, userId: number, creatorId: number, options: FollowOptions = {}): Promise<FollowResult> {
  const notify = options.notify ?? null
  type Row = {creator_user: number | null; user_known: boolean; created: boolean; notify: boolean | null; created_at: Date | null}
  const row = (await db.query<Row>(FOLLOWS_SQL.follow, [creatorId, userId, notify])).rows[0]
  if (row.creator_user === null) throw creatorNotFound(creatorId)
  if (!row.user_known) throw userNotFound(userId)
  if (Number(row.creator_user) === userId) {
    throw new UsageError('creatorId', `user ${userId} is creator ${creatorId}: a user cannot follow themselves`, {hint: 'Follow another creator.'})
  }
  // neither inserted nor updated: a concurrent follow committed after this statement's snapshot
  // (or an unfollow removed it): report the state asked for
  return {userId, creatorId, notify: row.notify ?? notify ?? false, followedAt: row.created_at ? new Date(row.created_at) : new Date(), created: row.created}
}

/** Unfollows; returns whether a follow was removed (unfollowing twice is a no-op). */
export async function unfollow(db: Queryable, userId: number, creatorId: number): Promise<{removed: boolean}> {
  const row = (await db.query<{creator_known: boolean; removed: boolean}>(FOLLOWS_SQL.unfollow, [creatorId, userId])).rows[0]
  if (!row.creator_known) throw creatorNotFound(creatorId)
  return {removed: row.removed}
}

export async function doesFollow(db: Queryable, userId: number, creatorId: number): Promise<boolean> {
  return (await db.query(FOLLOWS_SQL.does, [userId, creatorId])).rows.length > 0
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
  const {rows} = await db.query<{user_id: number; handle: string; notify: boolean; created_at: Date}>(FOLLOWS_SQL.followers, [creatorId, from, limit])
  // follows are made only for existing creators (and creators are never deleted), so only an
  // empty first page needs the second statement: no followers, or no such creator
  if (!options.cursor && rows.length === 0 && (await db.query(FOLLOWS_SQL.creator, [creatorId])).rows.length === 0) throw creatorNotFound(creatorId)
  const items = rows.map((r) => ({userId: r.user_id, handle: r.handle, notify: r.notify, followedAt: new Date(r.created_at)}))
  return {items, nextCursor: rows.length === limit ? encodeCursor([creatorId, rows[rows.length - 1].user_id]) : null}
}

/** The creators a user follows in creator-id order, keyset-paged over (user_id, creator_id). */
export async function listFollowing(db: Queryable, userId: number, options: PageOptions = {}): Promise<Page<Following>> {
  const limit = pageLimit(options.limit, FOLLOW_PAGE)
  const from = after(options.cursor, userId)
  if (!options.cursor && (await db.query(FOLLOWS_SQL.user, [userId])).rows.length === 0) throw userNotFound(userId)
  const {rows} = await db.query<{creator_id: number; name: string; notify: boolean; created_at: Date}>(FOLLOWS_SQL.following, [userId, from, limit])
  const items = rows.map((r) => ({creatorId: r.creator_id, name: r.name, notify: r.notify, followedAt: new Date(r.created_at)}))
  return {items, nextCursor: rows.length === limit ? encodeCursor([userId, rows[rows.length - 1].creator_id]) : null}
}

const FOLLOWER_SAMPLE = {name: 'follows.sample', text: `SELECT user_id FROM follows WHERE creator_id = $1 ORDER BY user_id LIMIT $2`}

/** The first n followers of a creator by user id: a stable sample (a run watches their notifications). */
export async function followerSample(db: Queryable, creatorId: number, n: number): Promise<number[]> {
  const {rows} = await db.query<{user_id: number}>(FOLLOWER_SAMPLE, [creatorId, n])
  return rows.map((r) => Number(r.user_id))
}
