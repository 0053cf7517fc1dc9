import {randomBytes} from 'node:crypto'
import type {Queryable} from '../db/types.js'

export interface DropFixture {
  creatorId: number
  productId: number
  /** Buyer user ids, in order. */
  buyerIds: number[]
}

/** Creates a creator, a product and `buyers` users with handles unique to this run. */
export async function createDropFixture(db: Queryable, buyers: number, tag = randomBytes(4).toString('hex')): Promise<DropFixture> {
  const owner = await db.query<{id: number}>(`INSERT INTO users (handle, display_name) VALUES ($1, 'Drop run creator') RETURNING id`, [`run-${tag}-creator`])
  const creator = await db.query<{id: number}>(`INSERT INTO creators (user_id, name) VALUES ($1, $2) RETURNING id`, [owner.rows[0].id, `Run ${tag}`])
  const creatorId = Number(creator.rows[0].id)
  const product = await db.query<{id: number}>(
    `INSERT INTO products (creator_id, title, price_cents) VALUES ($1, $2, 4900) RETURNING id`,
    [creatorId, `Limited item ${tag}`],
  )
  const users = await db.query<{id: number}>(
    `INSERT INTO users (handle, display_name) SELECT $1 || g, 'Buyer ' || g FROM generate_series(1, $2::int) g RETURNING id`,
    [`run-${tag}-buyer-`, buyers],
  )
  return {creatorId, productId: Number(product.rows[0].id), buyerIds: users.rows.map((r) => Number(r.id)).sort((a, b) => a - b)}
}
