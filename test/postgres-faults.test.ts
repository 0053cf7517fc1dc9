import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {isConnectionError} from '../src/core/errors.js'

describe('PostgresDb under a killed backend', () => {
  const t = usePostgres()

  it('rejects the transaction (no uncaught error) and keeps serving on fresh connections', async () => {
    const tx = t.db.transaction(async (q) => {
      const {rows} = await q.query<{pid: number}>('SELECT pg_backend_pid() AS pid')
      // kill this very backend from another connection while the transaction is open
      await t.db.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
      await new Promise((r) => setTimeout(r, 100))
      await q.query('SELECT 1')
    })
    const err = await tx.then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).not.toBeNull()
    expect(isConnectionError(err)).toBe(true)
    // the pool dropped the dead client: the next queries work
    for (let i = 0; i < 12; i++) expect((await t.db.query('SELECT 1 AS one')).rows[0]).toEqual({one: 1})
  })
})
