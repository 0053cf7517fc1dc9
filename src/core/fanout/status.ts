import type {Queryable} from '../db/types.js'
import type {FanoutEventType} from './worker.js'

export interface FanoutBacklog {
  /** Events not yet fully delivered. */
  pendingEvents: number
  /** Of those, held by a worker under a live lease. */
  leasedEvents: number
  /** Age of the oldest pending event in ms; 0 when none. */
  oldestPendingMs: number
}

export interface EventProgress {
  id: number
  eventType: FanoutEventType
  dropId: number | null
  creatorId: number | null
  delivery: 'push' | 'pull' | null
  /** Notification rows written so far. */
  delivered: number
  /** The creator's follower count (the most a push can reach); 1 for an order confirmation. */
  target: number
  cursorUserId: number | null
  leaseOwner: string | null
  /** ms until the lease expires; negative when it has (another worker may take over). */
  leaseRemainingMs: number | null
  attempts: number
  ageMs: number
}

export interface FanoutStatus extends FanoutBacklog {
  processedEvents: number
  notifications: number
  /** The oldest pending events, up to `limit`. */
  events: EventProgress[]
}

const SQL = {
  backlog: {
    name: 'fanout.backlog',
    text: `SELECT count(*)::int AS pending,
                  (count(*) FILTER (WHERE lease_until > clock_timestamp()))::int AS leased,
                  coalesce(extract(epoch FROM clock_timestamp() - min(created_at)) * 1000, 0)::double precision AS oldest_ms
             FROM outbox WHERE processed_at IS NULL`,
  },
  totals: {
    name: 'fanout.totals',
    text: `SELECT (SELECT count(*) FROM outbox WHERE processed_at IS NOT NULL)::bigint AS processed,
                  (SELECT count(*) FROM notifications)::bigint AS notifications`,
  },
  pending: {
    name: 'fanout.pending-events',
    text: `SELECT o.id, o.event_type, o.drop_id, coalesce(o.creator_id, d.creator_id) AS creator_id, o.delivery, o.delivered,
                  CASE WHEN o.event_type = 'order_confirmed' THEN 1 ELSE coalesce(c.follower_count, 0) END AS target,
                  o.cursor_user_id, o.lease_owner, o.attempts,
                  (extract(epoch FROM o.lease_until - clock_timestamp()) * 1000)::double precision AS lease_ms,
                  (extract(epoch FROM clock_timestamp() - o.created_at) * 1000)::double precision AS age_ms
             FROM outbox o
             LEFT JOIN drops d ON d.id = o.drop_id
             LEFT JOIN creators c ON c.id = coalesce(o.creator_id, d.creator_id)
            WHERE o.processed_at IS NULL
            ORDER BY o.id LIMIT $1`,
  },
}

/** Cheap backlog figures for /metrics. */
export async function fanoutBacklog(db: Queryable): Promise<FanoutBacklog> {
  const r = (await db.query<{pending: number; leased: number; oldest_ms: number}>(SQL.backlog)).rows[0]
  return {pendingEvents: Number(r.pending), leasedEvents: Number(r.leased), oldestPendingMs: Math.round(Number(r.oldest_ms))}
}

/** Backlog, totals and the progress of the oldest pending events (default 20). */
export async function fanoutStatus(db: Queryable, options: {limit?: number} = {}): Promise<FanoutStatus> {
  const backlog = await fanoutBacklog(db)
  const totals = (await db.query<{processed: number; notifications: number}>(SQL.totals)).rows[0]
  const {rows} = await db.query<{
    id: number
    event_type: FanoutEventType
    drop_id: number | null
    creator_id: number | null
    delivery: 'push' | 'pull' | null
    delivered: number
    target: number
    cursor_user_id: number | null
    lease_owner: string | null
    attempts: number
    lease_ms: number | null
    age_ms: number
  }>(SQL.pending, [options.limit ?? 20])
  return {
    ...backlog,
    processedEvents: Number(totals.processed),
    notifications: Number(totals.notifications),
    events: rows.map((r) => ({
      id: Number(r.id),
      eventType: r.event_type,
      dropId: r.drop_id === null ? null : Number(r.drop_id),
      creatorId: r.creator_id === null ? null : Number(r.creator_id),
      delivery: r.delivery,
      delivered: Number(r.delivered),
      target: Number(r.target),
      cursorUserId: r.cursor_user_id === null ? null : Number(r.cursor_user_id),
      leaseOwner: r.lease_owner,
      leaseRemainingMs: r.lease_ms === null ? null : Math.round(Number(r.lease_ms)),
      attempts: r.attempts,
      ageMs: Math.round(Number(r.age_ms)),
    })),
  }
}
