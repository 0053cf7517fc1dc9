import type {Queryable} from '../db/types.js'
import {decodeCursor, encodeCursor, InvalidCursorError, pageLimit, type Page, type PageOptions} from '../catalog/cursor.js'
import {FOLLOW_PAGE} from '../catalog/follows.js'
import type {FanoutEventType} from './worker.js'

export interface Notification {
  eventId: number
  eventType: FanoutEventType
  dropId: number | null
  createdAt: Date
  /** Only pushed rows can be marked read; null otherwise. */
  readAt: Date | null
  /** How it reached the feed: a pushed row, or the event read from the outbox at read time. */
  via: 'push' | 'pull'
}

/**
 * A user's notifications, newest first (event id desc), merged from three sources:
 *  1. pushed rows in notifications;
 *  2. pull-delivered events of creators the user follows (celebrities), read at request time;
 *  3. follower events not yet processed, so an event is in every follower's feed as soon as it
 *     commits, before any worker has touched it.
 * 2 and 3 apply the follow rules of the push path: only events created after the follow, and
 * nothing from a creator no longer followed. An event reached by several sources appears once
 * (the pushed row wins, it carries read_at). Each branch is limited to the page size before the
 * merge, so a page costs the same however long the history. Branch 2 walks the user's few follows
 * and, per creator, the pull index (LATERAL): joined plainly, the generic plan a pooled connection
 * settles on walked the whole outbox backwards (every order confirmation ever) to find pull events,
 * thousands of buffers per call, which melted the server down when the drop opened.
 */
export const FEED = {
  name: 'fanout.feed',
  text: `SELECT DISTINCT ON (event_id) event_id, event_type, drop_id, created_at, read_at, via
           FROM (
             (SELECT n.event_id, n.event_type, n.drop_id, n.created_at, n.read_at, 'push' AS via, 0 AS rank
                FROM notifications n
               WHERE n.user_id = $1 AND n.event_id < $2
               ORDER BY n.event_id DESC LIMIT $3)
             UNION ALL
             (SELECT o.id, o.event_type, o.drop_id, o.created_at, NULL::timestamptz, 'pull', 1
                FROM follows f
                CROSS JOIN LATERAL (
                  SELECT o.id, o.event_type, o.drop_id, o.created_at FROM outbox o
                   WHERE o.creator_id = f.creator_id AND o.delivery = 'pull' AND o.id < $2 AND o.created_at > f.created_at
                   ORDER BY o.id DESC LIMIT $3) o
               WHERE f.user_id = $1
               ORDER BY o.id DESC LIMIT $3)
             UNION ALL
             (SELECT o.id, o.event_type, o.drop_id, o.created_at, NULL::timestamptz, 'pull', 2
                FROM outbox o
                LEFT JOIN drops d ON d.id = o.drop_id
                JOIN follows f ON f.creator_id = coalesce(o.creator_id, d.creator_id) AND f.user_id = $1 AND f.created_at < o.created_at
               WHERE o.processed_at IS NULL AND o.event_type <> 'order_confirmed' AND o.id < $2
               ORDER BY o.id DESC LIMIT $3)
           ) feed
          ORDER BY event_id DESC, rank
          LIMIT $3`,
}

const NEWEST = Number.MAX_SAFE_INTEGER

export async function listNotifications(db: Queryable, userId: number, options: PageOptions = {}): Promise<Page<Notification>> {
  const limit = pageLimit(options.limit, FOLLOW_PAGE)
  let before = NEWEST
  if (options.cursor) {
    const [owner, last] = decodeCursor(options.cursor, ['number', 'number']) as [number, number]
    if (owner !== userId) throw new InvalidCursorError('cursor', 'was issued for another user', {hint: 'Pass back the nextCursor of your previous page.'})
    before = last
  }
  const {rows} = await db.query<{event_id: number; event_type: FanoutEventType; drop_id: number | null; created_at: Date; read_at: Date | null; via: 'push' | 'pull'}>(
    FEED,
    [userId, before, limit],
  )
  const items = rows.map((r) => ({
    eventId: Number(r.event_id),
    eventType: r.event_type,
    dropId: r.drop_id === null ? null : Number(r.drop_id),
    createdAt: new Date(r.created_at),
    readAt: r.read_at ? new Date(r.read_at) : null,
    via: r.via,
  }))
  return {items, nextCursor: rows.length === limit ? encodeCursor([userId, items[items.length - 1].eventId]) : null}
}

const CONNECTED_FOLLOWERS = {
  name: 'feed.connected-followers',
  text: `SELECT f.user_id FROM follows f JOIN outbox o ON o.id = $3
          WHERE f.creator_id = $1 AND f.user_id = ANY($2::bigint[]) AND f.created_at < o.created_at`,
}

/**
 * Which of these users a pull event reaches: followers of its creator who followed before the
 * event was created (the feed's own rule), e.g. the users with a live stream open.
 */
export async function followersReached(db: Queryable, creatorId: number, userIds: number[], eventId: number): Promise<number[]> {
  const {rows} = await db.query<{user_id: number}>(CONNECTED_FOLLOWERS, [creatorId, userIds, eventId])
  return rows.map((r) => Number(r.user_id))
}
