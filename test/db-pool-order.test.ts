import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'

// A quiet spell must keep every pooled backend warm, so a burst does not meet cold ones
// (useLongestIdleFirst in src/core/db/postgres.ts): one query at a time goes round all of them.
describe('PostgresDb hands out its connections in turn', () => {
  const t = usePostgres({max: 4})

  it('runs sequential statements on each backend in turn, longest idle first', async () => {
    await t.db.prewarm()
    const pids: number[] = []
    for (let i = 0; i < 12; i++) pids.push((await t.db.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid)
    const first = pids.slice(0, 4)
    expect(new Set(first).size).toBe(4)
    expect(pids).toEqual([...first, ...first, ...first])
  })

  it('keeps the turn after a connection is lost', async () => {
    const victim = (await t.db.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid
    await t.db.query('SELECT pg_terminate_backend($1)', [victim])
    await new Promise((r) => setTimeout(r, 100))
    const pids: number[] = []
    for (let i = 0; i < 12; i++) {
      try {
        pids.push((await t.db.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid)
      } catch {
        // the dead client's one failure; the pool drops it
      }
    }
    expect(pids).not.toContain(victim)
    // the live backends, each in turn in a fixed order
    const live = new Set(pids).size
    expect(live).toBeGreaterThan(1)
    for (let i = live; i < pids.length; i++) expect(pids[i]).toBe(pids[i - live])
  })
})
