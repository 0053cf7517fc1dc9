import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import type {RunResult} from '../src/sim/run/index.js'
import {BLACK_BOX_INVARIANTS} from '../src/sim/invariants/black-box.js'
import {runCli} from './helpers/cli.js'
import {TEST_SECRET, seedWorld, useServer} from './helpers/server.js'
import {startShop, type Shop} from './profile-shop.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-profile-'))
const file = (name: string, text: string) => {
  const f = path.join(dir, name)
  writeFileSync(f, text)
  return f
}

/** Orders race for 40 units (3 in 10 attempts retry an earlier key) while the crowd browses, follows and pages. */
const RACE = file(
  'shop-race.yaml',
  `
name: shop-race
dataset: {users: 200, creators: 1, productsPerCreator: 1}
drop: {stock: 40}
order: {retryRate: 0.3}
phases:
  - name: race
    duration: 3s
    rates: {order: 150, browse_product: 20, browse_drop: 20, list_followers: 5, follow: 10, unfollow: 5, notifications: 5}
thresholds: ['errors.rate < 1%']
`,
)

const invariantsOf = (r: RunResult) => Object.fromEntries(r.invariants.map((i) => [i.name, i]))

describe('scenario run --profile: a foreign API driven end to end, no database', () => {
  let shop: Shop | undefined
  afterEach(async () => {
    await shop?.close()
    shop = undefined
  })

  it('drives the shop through profiles/shop.yaml (login JWTs, uuid ids, setup calls) and passes the black-box invariants: exit 0', async () => {
    shop = await startShop()
    const out = path.join(dir, 'ok.json')
    const r = await runCli(['scenario', 'run', RACE, '--target', shop.url, '--profile', 'profiles/shop.yaml', '--out', out], {env: {DATABASE_URL: undefined}, timeoutMs: 90_000})
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    const inv = invariantsOf(result)
    expect(Object.keys(inv)).toEqual([...BLACK_BOX_INVARIANTS])
    expect(result.invariants.every((i) => i.pass && i.data?.source === 'answers')).toBe(true)
    expect(inv.no_sold_out_then_sale.data?.warning).toBe(false)
    // what the answers said is what the shop holds: every unit sold, each acknowledged once
    const state = shop.state()
    expect(state.unitsSold).toBe(40)
    expect(result.stats).toMatchObject({profile: 'shop', stock: 40, unitsAcknowledged: state.unitsSold, ordersConfirmed: state.orders})
    expect(result.stats.soldOutAnswers).toBeGreaterThan(0)
    // retries were sent and compared with their first answer
    expect(inv.replay_identical.data?.compared).toBeGreaterThan(0)
    expect(result.stats.fixture).toMatchObject({drop: expect.stringMatching(/^[0-9a-f-]{36}$/), product: expect.stringMatching(/^[0-9a-f-]{36}$/)})
    for (const type of ['order', 'list_followers', 'follow', 'unfollow', 'notifications']) expect(result.phases[0].requests[type]?.completed, type).toBeGreaterThan(0)
    expect(r.stdout).toContain('acked_units_le_stock')
  })

  it('catches the broken shop (read-then-write stock, replays placing second orders) with exit 98 naming the requests', async () => {
    shop = await startShop({broken: true})
    const out = path.join(dir, 'broken.json')
    const r = await runCli(['scenario', 'run', RACE, '--target', shop.url, '--profile', 'profiles/shop.yaml', '--out', out], {env: {DATABASE_URL: undefined}, timeoutMs: 90_000})
    expect(r.code, r.stderr + r.stdout).toBe(98)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    const inv = invariantsOf(result)
    // the shop's own state agrees: it sold more than it had
    expect(shop.state().unitsSold).toBeGreaterThan(40)
    expect(inv.acked_units_le_stock).toMatchObject({pass: false, data: {stock: 40, ackedUnits: shop.state().unitsSold}})
    expect(inv.one_order_per_key.pass).toBe(false)
    expect(inv.replay_identical.pass).toBe(false)
    // a warning never fails the run
    expect(inv.no_sold_out_then_sale.pass).toBe(true)
    // the requests are named: time, user, key, answer
    const named = /\d+\.\d{3}s user [0-9a-f-]{36} key r[0-9a-f]{8}-o\d+ → 201 \{"purchase":\{"id":"[0-9a-f-]{36}"/
    expect(inv.acked_units_le_stock.detail).toMatch(named)
    expect(inv.one_order_per_key.detail).toMatch(new RegExp(`first ${named.source}.*; then ${named.source}`))
    expect(r.stderr).toMatch(/one_order_per_key \(\d+ repeated key\(s\) acknowledged with another order id: first /)
  })

  it('refuses a profile run without --target, with --db, and an invalid profile file (exit 2, 2, 4)', async () => {
    const noTarget = await runCli(['scenario', 'run', RACE, '--profile', 'profiles/shop.yaml'])
    expect(noTarget.code).toBe(2)
    expect(noTarget.stderr).toMatch(/--profile.*needs --target/)
    const withDb = await runCli(['scenario', 'run', RACE, '--profile', 'profiles/shop.yaml', '--target', 'http://127.0.0.1:9', '--db', 'postgres://root@127.0.0.1:5432/x'])
    expect(withDb.code).toBe(2)
    expect(withDb.stderr).toMatch(/--db.*not used with --profile/)
    const bad = file('bad.yaml', 'name: bad\nrequests:\n  order:\n    method: POST\n    path: buy\n')
    const invalid = await runCli(['scenario', 'run', RACE, '--profile', bad, '--target', 'http://127.0.0.1:9'])
    expect(invalid.code).toBe(4)
    expect(invalid.stderr).toContain(`${bad}:5:11 requests.order.path: a path starts with /`)
  })
})

describe('profile check', () => {
  let shop: Shop | undefined
  afterEach(async () => {
    await shop?.close()
    shop = undefined
  })

  it('makes one request of each type and shows what it read from each answer', async () => {
    shop = await startShop()
    const r = await runCli(['profile', 'check', '--target', shop.url, '--profile', 'profiles/shop.yaml', '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const check = JSON.parse(r.stdout)
    const byType = Object.fromEntries(check.requests.map((q: {type: string}) => [q.type, q]))
    expect(Object.keys(byType)).toEqual(['browse_product', 'browse_drop', 'list_followers', 'list_followers (page 2)', 'follow', 'unfollow', 'order', 'order (replay)', 'notifications'])
    expect(byType.order).toMatchObject({status: 201, outcome: 'success', read: {orderId: expect.stringMatching(/^[0-9a-f-]{36}$/), units: 1, stock: expect.any(Number)}, problems: []})
    expect(byType['order (replay)']).toMatchObject({status: 200, outcome: 'replay', read: {orderId: byType.order.read.orderId}, problems: []})
    expect(byType.browse_drop.read.stock).toBe(check.fixture.stock)
    expect(byType.list_followers).toMatchObject({path: expect.stringMatching(/\?page=1&limit=20$/), next: 2})
    expect(byType['list_followers (page 2)'].path).toMatch(/page=2/)
    expect(check.usersLoggedIn).toBe(41)
    expect(shop.state().orders).toBe(1)

    const text = await runCli(['profile', 'check', '--target', shop.url, '--profile', 'profiles/shop.yaml'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/orderId="[0-9a-f-]{36}"/)
    expect(text.stdout).toContain('All 9 requests answered as the profile says.')
  })

  it('names what does not fit (a wrong path, an unlisted status) with exit 2; an unreachable target is exit 3', async () => {
    shop = await startShop()
    const wrong = file('wrong.yaml', readFileSync('profiles/shop.yaml', 'utf8').replace('orderId: purchase.id', 'orderId: order.id').replace('ok: [204, 404]', 'ok: [204]'))
    const r = await runCli(['profile', 'check', '--target', shop.url, '--profile', wrong])
    expect(r.code).toBe(2)
    expect(r.stdout).toContain('read.orderId: nothing at order.id')
    expect(r.stdout).toContain('status 404 is not among the answers the profile accepts')
    expect(r.stderr).toMatch(/requests were not answered as the profile "shop" says/)
    const down = await runCli(['profile', 'check', '--target', 'http://127.0.0.1:9', '--profile', 'profiles/shop.yaml'])
    expect(down.code).toBe(3)
  })
})

describe("livedrop serve through its own profile (profiles/livedrop.yaml), no database for the run", () => {
  const server = useServer('postgres')
  let url = ''
  let dropId = 0
  beforeAll(async () => {
    ;({dropId} = await seedWorld(server.engine, {users: 30, stock: 12}))
    url = await server.app.listen({port: 0, host: '127.0.0.1'})
  })
  afterAll(async () => {
    await server.app.close()
  })

  it('acknowledges exactly what the database holds, and the black-box invariants pass', async () => {
    const scenario = file(
      'own.yaml',
      `
name: own
dataset: {users: 30, creators: 1, productsPerCreator: 1}
drop: {stock: 12}
order: {retryRate: 0.3}
phases:
  - name: race
    duration: 2s
    rates: {order: 60, browse_product: 10, browse_drop: 10, list_followers: 5}
`,
    )
    const out = path.join(dir, 'own.json')
    const r = await runCli(['scenario', 'run', scenario, '--target', url, '--profile', 'profiles/livedrop.yaml', '--fixture', `drop=${dropId}`, '--secret', TEST_SECRET, '--out', out], {
      env: {DATABASE_URL: undefined},
      timeoutMs: 90_000,
    })
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    expect(result.invariants.map((i) => [i.name, i.pass])).toEqual(BLACK_BOX_INVARIANTS.map((n) => [n, true]))
    const {rows} = await server.engine.db.query<{n: number; units: number}>('SELECT count(*)::int AS n, coalesce(sum(qty), 0)::int AS units FROM orders WHERE drop_id = $1', [dropId])
    expect(rows[0].units).toBe(12)
    expect(result.stats).toMatchObject({unitsAcknowledged: rows[0].units, ordersConfirmed: rows[0].n})
    expect(invariantsOf(result).replay_identical.data?.compared).toBeGreaterThan(0)
  })
})
