import {describe, expect, it} from 'vitest'
import {usePostgres} from './helpers/db.js'
import {runCli} from './helpers/cli.js'
import {addEvent, addFollowers, createCreator, createUsers} from './helpers/fanout-world.js'

describe('livedrop fanout run / status (Postgres)', () => {
  const t = usePostgres()

  it('shows the backlog, drains it with a report, and refuses bad selections', async () => {
    await createUsers(t.db, 1, 1200)
    const c = await createCreator(t.db)
    await addFollowers(t.db, c.creatorId, 1, 1200)
    await addEvent(t.db, 'drop_started', c.dropId, {creatorId: c.creatorId})
    await addEvent(t.db, 'order_confirmed', c.dropId, {userId: 5})

    const before = await runCli(['fanout', 'status', '--json', '--db', t.url!])
    expect(before.stderr + before.stdout).not.toMatch(/Error/)
    expect(before.code).toBe(0)
    const status = JSON.parse(before.stdout)
    expect(status).toMatchObject({pendingEvents: 2, leasedEvents: 0})
    expect(status.events.map((e: {eventType: string; target: number}) => [e.eventType, e.target])).toEqual([
      ['drop_started', 1200],
      ['order_confirmed', 1],
    ])

    const run = await runCli(['fanout', 'run', '--json', '--workers', '2', '--page-size', '500', '--db', t.url!])
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout)
    expect(result).toMatchObject({events: 2, pushEvents: 2, pullEvents: 0, notifications: 1201, aborted: false})
    expect(result.latency.count).toBe(1201)
    expect(result.latency.p95).toBeGreaterThan(0)
    expect(result.lastNotificationMs).toBeGreaterThanOrEqual(result.firstNotificationMs)
    expect((await t.db.query<{n: number}>('SELECT count(*)::int AS n FROM notifications')).rows[0].n).toBe(1201)

    const table = await runCli(['fanout', 'status', '--db', t.url!])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/0 pending event\(s\).*2 processed, 1,201 notification rows/)

    const missing = await runCli(['fanout', 'run', '--event', '999999', '--json', '--db', t.url!])
    expect(missing.code).toBe(2)
    expect(JSON.parse(missing.stdout).error.code).toBe('NOT_FOUND')
    const both = await runCli(['fanout', 'run', '--event', '1', '--drop', '1', '--db', t.url!])
    expect(both.code).toBe(2)
  })
})
