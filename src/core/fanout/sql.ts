/**
 * The fan-out's statements. One event is owned by one worker at a time through its lease
 * (lease_owner, lease_until); every page re-checks the lease under the event row's lock and
 * moves the keyset cursor in the same transaction as the page's notification rows.
 */

const leaseUntil = (param: string) => `clock_timestamp() + ${param}::double precision * interval '1 millisecond'`

/** Filters shared by the claims: $1 event id or null, $2 drop id or null. */
const MATCH = `($1::bigint IS NULL OR id = $1::bigint) AND ($2::bigint IS NULL OR drop_id = $2::bigint)`

/**
 * One page → one set-based INSERT … SELECT over the follows key range ($2, $3]: followers since
 * before the event ($7) get a row: all of them on push, only "notify me" ones on pull (a
 * celebrity's event is read from the feed; the page then walks the partial index follows_notify_idx,
 * which holds created_at too, so the page never reads the table).
 *
 * The plain form is the fast path: a page commits atomically with the cursor that moves past it,
 * so a page being (re)done has no rows yet, and the primary key turns any surprise into an error
 * instead of a duplicate. On that error the event switches to the ON CONFLICT DO NOTHING form
 * (about half as fast: speculative insertion) and the page is redone.
 */
function pushPage(delivery: 'push' | 'pull', onConflict: boolean, users: boolean) {
  return {
    name: `fanout.${delivery}-page${onConflict ? '-on-conflict' : ''}${users ? '-users' : ''}`,
    text: `INSERT INTO notifications (user_id, event_id, event_type, drop_id)
           SELECT user_id, $4, $5, $6 FROM follows
            WHERE creator_id = $1 AND user_id > $2 AND user_id <= $3 AND created_at < $7${delivery === 'pull' ? ' AND notify' : ''}
           ${onConflict ? 'ON CONFLICT DO NOTHING' : ''} ${users ? 'RETURNING user_id' : ''}`,
  }
}

/** The next keyset page of the followers a delivery reaches: how many (≤ $3) and the last user id. */
function pageBounds(delivery: 'push' | 'pull') {
  return {
    name: `fanout.${delivery}-page-bounds`,
    text: `SELECT count(*)::int AS scanned, max(user_id) AS last_user_id
             FROM (SELECT user_id FROM follows WHERE creator_id = $1 AND user_id > $2${delivery === 'pull' ? ' AND notify' : ''} ORDER BY user_id LIMIT $3) page`,
  }
}

/** The statements of one page, by delivery. */
function pageStatements(delivery: 'push' | 'pull') {
  return {
    bounds: pageBounds(delivery),
    insert: pushPage(delivery, false, false),
    insertUsers: pushPage(delivery, false, true),
    insertOnConflict: pushPage(delivery, true, false),
    insertOnConflictUsers: pushPage(delivery, true, true),
  }
}

/** Leases up to `limit` unprocessed events of a kind whose lease is free or expired: $3 owner, $4 lease ms. */
function claim(name: string, kind: string, limit: string) {
  return {
    name,
    text: `WITH c AS (
             SELECT id FROM outbox
              WHERE processed_at IS NULL AND ${kind}
                AND (lease_until IS NULL OR lease_until < clock_timestamp()) AND ${MATCH}
              ORDER BY id LIMIT ${limit}
              FOR UPDATE SKIP LOCKED)
           UPDATE outbox o SET lease_owner = $3, lease_until = ${leaseUntil('$4')}, attempts = o.attempts + 1
             FROM c WHERE o.id = c.id
           RETURNING o.id`,
  }
}

export const FANOUT_SQL = {
  /** One follower event (drop_started, stock_low, sold_out, drop_ended) whose lease is free or expired. */
  claimFollowerEvent: claim('fanout.claim-follower-event', `event_type <> 'order_confirmed'`, '1'),
  /** A batch of order confirmations: one recipient each, so many fit one transaction. */
  claimOrderEvents: claim('fanout.claim-order-events', `event_type = 'order_confirmed'`, '$5'),
  /** Delivers claimed order confirmations to their buyers and closes them, in one statement. */
  deliverOrderEvents: {
    name: 'fanout.deliver-order-events',
    text: `WITH ev AS (
             SELECT id, user_id, event_type, drop_id FROM outbox
              WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND processed_at IS NULL
              FOR UPDATE),
           ins AS (
             INSERT INTO notifications (user_id, event_id, event_type, drop_id)
             SELECT user_id, id, event_type, drop_id FROM ev WHERE user_id IS NOT NULL
             ON CONFLICT DO NOTHING
             RETURNING user_id, event_id)
           UPDATE outbox o
              SET processed_at = clock_timestamp(), delivery = 'push', lease_owner = NULL, lease_until = NULL,
                  delivered = o.delivered + (SELECT count(*) FROM ins WHERE ins.event_id = o.id)
             FROM ev WHERE o.id = ev.id
           RETURNING o.id, o.event_type, o.drop_id, o.creator_id, o.user_id,
                     (SELECT count(*) FROM ins WHERE ins.event_id = o.id)::int AS inserted,
                     extract(epoch FROM clock_timestamp() - o.created_at)::double precision * 1000 AS latency_ms`,
  },
  /** The event row, locked, with its creator resolved (stock events may name only the drop). */
  lockEvent: {
    name: 'fanout.lock-event',
    // a page commits without waiting for its WAL flush: a page lost to a server crash loses its
    // rows and its cursor move together, and is redone from the durable outbox row
    text: `SELECT set_config('synchronous_commit', 'off', true) AS sync, o.id, o.event_type, o.drop_id, coalesce(o.creator_id, d.creator_id) AS creator_id, o.created_at,
                  o.delivery, o.cursor_user_id, o.delivered, o.lease_owner, o.processed_at, c.follower_count
             FROM outbox o
             LEFT JOIN drops d ON d.id = o.drop_id
             LEFT JOIN creators c ON c.id = coalesce(o.creator_id, d.creator_id)
            WHERE o.id = $1
              FOR UPDATE OF o`,
  },
  /** Records push or pull; pull events need creator_id set for the feed's pull index. */
  setDelivery: {
    name: 'fanout.set-delivery',
    text: `UPDATE outbox SET delivery = $2, creator_id = $3 WHERE id = $1`,
  },
  page: {push: pageStatements('push'), pull: pageStatements('pull')},
  /** Progress in the page's transaction; the last page closes the event and frees the lease. */
  recordProgress: {
    name: 'fanout.record-progress',
    text: `UPDATE outbox
              SET cursor_user_id = coalesce($2, cursor_user_id), delivered = delivered + $3,
                  processed_at = CASE WHEN $4::boolean THEN clock_timestamp() END,
                  lease_owner = CASE WHEN $4::boolean THEN NULL ELSE lease_owner END,
                  lease_until = CASE WHEN $4::boolean THEN NULL ELSE ${leaseUntil('$5')} END
            WHERE id = $1
           RETURNING delivered, extract(epoch FROM clock_timestamp() - created_at)::double precision * 1000 AS latency_ms`,
  },
  /** Unprocessed events matching the filter (to know whether a drain is finished). */
  remaining: {
    name: 'fanout.remaining',
    text: `SELECT count(*)::int AS n FROM outbox WHERE processed_at IS NULL AND ${MATCH}`,
  },
  /** What a drain will scan: one row per order confirmation, the follower count per follower event. */
  plan: {
    name: 'fanout.plan',
    text: `SELECT count(*)::int AS events,
                  coalesce(sum(CASE WHEN o.event_type = 'order_confirmed' THEN 1 ELSE coalesce(c.follower_count, 0) END), 0)::bigint AS scan
             FROM outbox o
             LEFT JOIN drops d ON d.id = o.drop_id
             LEFT JOIN creators c ON c.id = coalesce(o.creator_id, d.creator_id)
            WHERE o.processed_at IS NULL AND ($1::bigint IS NULL OR o.id = $1::bigint) AND ($2::bigint IS NULL OR o.drop_id = $2::bigint)`,
  },
  releaseLease: {
    name: 'fanout.release-lease',
    text: `UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND processed_at IS NULL`,
  },
  eventExists: {name: 'fanout.event-exists', text: 'SELECT 1 FROM outbox WHERE id = $1'},
  dropExists: {name: 'fanout.drop-exists', text: 'SELECT 1 FROM drops WHERE id = $1'},
}
