import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {checkDropInvariants} from '../src/core/audit/drop.js'
import {createDrop, startDrop} from '../src/core/catalog/drops.js'
import {createDropFixture} from '../src/core/catalog/fixture.js'
import {ChangeFeed} from '../src/core/events.js'

const ORDERS = 20_000

describe('every_ack_persisted', () => {
  const t = usePostgres()

  it('names each acknowledged order that is missing or stored otherwise, and checks 20,000 of a drop the statistics have not seen in well under a second', async () => {
    const f = await createDropFixture(t.db, ORDERS)
    const deps = {db: t.db, changes: new ChangeFeed()}
    const drop = await createDrop(deps, {creatorId: f.creatorId, productId: f.productId, stock: ORDERS, startsAt: new Date(), endsAt: new Date(Date.now() + 3_600_000), lowStockThreshold: 0})
    await startDrop(deps, drop.id)
    // the orders a run would have written, in one statement: no ANALYZE has seen them
    const {rows} = await t.db.query<{id: string; user_id: string; idempotency_key: string}>(
      `INSERT INTO orders (user_id, drop_id, qty, idempotency_key) SELECT u, $1, 1, 'k-' || u FROM unnest($2::bigint[]) u RETURNING id, user_id, idempotency_key`,
      [drop.id, f.buyerIds],
    )
    await t.db.query(`UPDATE drops SET available = 0 WHERE id = $1`, [drop.id])
    const acks = rows.map((r) => ({orderId: Number(r.id), userId: Number(r.user_id), key: r.idempotency_key}))

    const started = performance.now()
    const all = await checkDropInvariants(t.db, drop.id, acks)
    // 5 s on this machine with the plan it replaced (a nested loop over the drop's orders per acknowledgement)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(all.find((i) => i.name === 'every_ack_persisted')).toEqual({name: 'every_ack_persisted', ok: true, details: {acknowledged: ORDERS, missing: []}})

    // an order that was never stored, one stored under another key, and one cancelled since
    await t.db.query(`UPDATE orders SET status = 'cancelled' WHERE id = $1`, [acks[2].orderId])
    const wrong = [{...acks[0], orderId: acks[ORDERS - 1].orderId + 1000}, {...acks[1], key: 'another-key'}, acks[2], ...acks.slice(3)]
    const broken = (await checkDropInvariants(t.db, drop.id, wrong)).find((i) => i.name === 'every_ack_persisted')!
    expect(broken.ok).toBe(false)
    expect(new Set(broken.details.missing as number[])).toEqual(new Set([acks[ORDERS - 1].orderId + 1000, acks[1].orderId, acks[2].orderId]))
  })
})
