import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {createCreator} from './helpers/fanout-world.js'
import {STOCK_STRATEGIES, warmOrderStatements} from '../src/core/stock/index.js'

// Engine start warms every pooled connection for the drop's first orders (src/core/stock/index.ts):
// each strategy's fresh-order statement is prepared on the connection, and nothing is written.
describe('warmOrderStatements', () => {
  const t = usePostgres()

  it("prepares each strategy's fresh-order statement on the connection and writes nothing", async () => {
    const {dropId} = await createCreator(t.db, 'warm')
    const count = async () =>
      (await t.db.query<{n: string}>(`SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM idempotency_keys) AS n`)).rows[0].n
    const before = await count()
    const drop = async () => (await t.db.query(`SELECT available, status FROM drops WHERE id = $1`, [dropId])).rows[0]
    const dropBefore = await drop()

    const prepared = await t.db.withSession(async (session) => {
      await warmOrderStatements(session)
      return (await session.query<{name: string}>(`SELECT name FROM pg_prepared_statements ORDER BY name`)).rows.map((r) => r.name)
    })
    expect(prepared).toEqual(expect.arrayContaining(STOCK_STRATEGIES.map((s) => `orders.fresh.${s}`)))
    expect(await count()).toBe(before)
    expect(await drop()).toEqual(dropBefore)
  })
})
