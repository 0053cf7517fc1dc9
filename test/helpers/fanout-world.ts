import type {Db, Queryable} from '../../src/core/db/types.js'

/**
 * Test data for fan-out: users 1..n in bulk, creators with a product and a drop, followers added
 * by generate_series (follows carry no foreign keys), outbox rows inserted directly (the drop
 * engine writes them in production; these tests must not depend on it).
 */
export async function createUsers(db: Queryable, from: number, to: number): Promise<void> {
  await db.query(`INSERT INTO users (id, handle, display_name) SELECT g, 'u' || g, 'User ' || g FROM generate_series($1::bigint, $2::bigint) g`, [from, to])
}

let creatorSeq = 0

/** A creator (backed by a new user with a high id), one product and one live drop. */
export async function createCreator(db: Queryable, name = `creator-${++creatorSeq}`): Promise<{creatorId: number; userId: number; dropId: number}> {
  const user = await db.query<{id: number}>(
    `INSERT INTO users (id, handle, display_name) VALUES ((SELECT greatest(coalesce(max(id), 0) + 1, 10000000) FROM users), $1, $1) RETURNING id`,
    [name],
  )
  const userId = user.rows[0].id
  const creator = await db.query<{id: number}>(`INSERT INTO creators (user_id, name) VALUES ($1, $2) RETURNING id`, [userId, name])
  const creatorId = creator.rows[0].id
  const product = await db.query<{id: number}>(`INSERT INTO products (creator_id, title, price_cents) VALUES ($1, 'thing', 1000) RETURNING id`, [creatorId])
  const drop = await db.query<{id: number}>(
    `INSERT INTO drops (product_id, creator_id, starts_at, ends_at, stock_total, available, status)
     VALUES ($1, $2, now(), now() + interval '1 hour', 100, 100, 'live') RETURNING id`,
    [product.rows[0].id, creatorId],
  )
  return {creatorId, userId, dropId: drop.rows[0].id}
}

/**
 * Users from..to follow the creator since an hour ago; every `notifyEvery`-th one opted in to
 * "notify me" (0: nobody). Keeps follower_count in step.
 */
export async function addFollowers(db: Queryable, creatorId: number, from: number, to: number, notifyEvery = 0): Promise<void> {
  await db.query(
    `INSERT INTO follows (creator_id, user_id, notify, created_at)
     SELECT $1, g, $4::int > 0 AND g % greatest($4::int, 1) = 0, now() - interval '1 hour' FROM generate_series($2::bigint, $3::bigint) g`,
    [creatorId, from, to, notifyEvery],
  )
  await db.query(`UPDATE creators SET follower_count = (SELECT count(*) FROM follows WHERE creator_id = $1) WHERE id = $1`, [creatorId])
}

/** Writes an outbox event the way the drop engine does; returns its id. */
export async function addEvent(
  db: Queryable,
  type: 'drop_started' | 'stock_low' | 'sold_out' | 'order_confirmed' | 'drop_ended',
  dropId: number,
  options: {creatorId?: number; userId?: number} = {},
): Promise<number> {
  const {rows} = await db.query<{id: number}>(`INSERT INTO outbox (event_type, drop_id, creator_id, user_id) VALUES ($1, $2, $3, $4) RETURNING id`, [
    type,
    dropId,
    options.creatorId ?? null,
    options.userId ?? null,
  ])
  return rows[0].id
}

export async function eventRow(db: Db, id: number) {
  const {rows} = await db.query<{delivery: string | null; delivered: number; cursor_user_id: number | null; lease_owner: string | null; lease_until: Date | null; attempts: number; processed_at: Date | null}>(
    `SELECT delivery, delivered, cursor_user_id, lease_owner, lease_until, attempts, processed_at FROM outbox WHERE id = $1`,
    [id],
  )
  return rows[0]
}

/** Rows for an event: total, distinct users, and how many of them are not followers of creatorId. */
export async function deliveredTo(db: Db, eventId: number, creatorId: number) {
  const {rows} = await db.query<{n: number; users: number; strangers: number}>(
    `SELECT count(*)::int AS n, count(DISTINCT n.user_id)::int AS users,
            (count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM follows f WHERE f.creator_id = $2 AND f.user_id = n.user_id)))::int AS strangers
       FROM notifications n WHERE n.event_id = $1`,
    [eventId, creatorId],
  )
  return rows[0]
}
