import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {services} from './helpers/db.js'
import {seedWorld, useServer} from './helpers/server.js'

/** Every route with placeholders fast-check fills with hostile values. */
const ROUTES: Array<[string, string]> = [
  ['POST', '/creators/{id}/follow'],
  ['DELETE', '/creators/{id}/follow'],
  ['GET', '/creators/{id}/followers'],
  ['GET', '/me/following'],
  ['GET', '/me/follows/{id}'],
  ['POST', '/orders'],
  ['GET', '/orders/{id}'],
  ['GET', '/me/orders'],
  ['GET', '/me/notifications'],
  ['GET', '/products/{id}'],
  ['GET', '/creators/{id}/products'],
  ['GET', '/drops'],
  ['GET', '/drops/{id}'],
  ['GET', '/drops/{id}/stock'],
]

const segment = fc.oneof(fc.constantFrom('1', '2', '0', '-1', '99999999999999999999', '1.5', 'abc', '%00', '%27%20OR%201=1'), fc.nat().map(String), fc.string({maxLength: 12}).map(encodeURIComponent))
const queryValue = fc.oneof(fc.constantFrom('', '0', '-5', '100000', 'live', 'ended', 'upcoming', 'x.y', 'WzFd.00000000'), fc.string({maxLength: 40}).map(encodeURIComponent))
const query = fc.dictionary(fc.constantFrom('cursor', 'limit', 'status', 'extra'), queryValue, {maxKeys: 3})
const body = fc.oneof(
  fc.jsonValue({maxDepth: 3}),
  fc.record({dropId: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)), qty: fc.oneof(fc.integer({min: -5, max: 2000}), fc.string()), payload: fc.option(fc.jsonValue({maxDepth: 2}))}, {requiredKeys: []}),
)

describe.skipIf(!services.postgres)('HTTP fuzz', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1e6, rateLimitBurst: 1e6})

  it('answers every hostile request below 500, as JSON', async () => {
    await seedWorld(s.engine, {users: 5, stock: 1000})
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), segment, query, body, fc.boolean(), fc.option(fc.string({maxLength: 300})), async ([method, template], id, q, payload, authed, key) => {
        const search = new URLSearchParams(q as Record<string, string>).toString()
        const url = template.replace('{id}', id) + (search ? `?${search}` : '')
        const headers: Record<string, string> = {...(authed ? s.auth(2) : {}), ...(key !== null ? {'idempotency-key': key} : {})}
        const res = await s.app.inject({method: method as 'GET', url, headers, ...(method === 'GET' || method === 'DELETE' ? {} : {payload: payload as object})})
        expect(res.statusCode, `${method} ${url} → ${res.body}`).toBeLessThan(500)
        if (res.statusCode >= 400) expect(res.json().error.code, res.body).toBeTypeOf('string')
      }),
      {numRuns: 400},
    )
    // nothing half-written: every order row has a completed idempotency key behind it
    const {rows} = await s.engine.db.query<{n: number}>(
      `SELECT count(*)::int AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.user_id = o.user_id AND k.key = o.idempotency_key AND k.state = 'completed')`,
    )
    expect(rows[0].n).toBe(0)
  })
})
