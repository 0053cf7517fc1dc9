import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {MAX_ORDER_QTY} from '../src/core/orders/place-order.js'
import {mintToken} from '../src/core/tokens.js'
import {seedWorld, TEST_SECRET, useServer} from './helpers/server.js'

/** Every route (but the endless event stream) with placeholders fast-check fills with hostile values; true when it needs a user. */
const ROUTES: Array<[string, string, boolean]> = [
  ['POST', '/creators/{id}/follow', true],
  ['DELETE', '/creators/{id}/follow', true],
  ['GET', '/creators/{id}/followers', false],
  ['GET', '/me/following', true],
  ['GET', '/me/follows/{id}', true],
  ['POST', '/orders', true],
  ['GET', '/orders/{id}', true],
  ['GET', '/me/orders', true],
  ['GET', '/me/notifications', true],
  ['GET', '/products/{id}', false],
  ['GET', '/creators/{id}', false],
  ['GET', '/creators/{id}/products', false],
  ['GET', '/drops', false],
  ['GET', '/drops/{id}', false],
  ['GET', '/drops/{id}/stock', false],
  ['GET', '/healthz', false],
]

const ORDERS = ROUTES.find(([m, path]) => m === 'POST' && path === '/orders')!
const FOLLOWERS = ROUTES.find(([, path]) => path === '/creators/{id}/followers')!

const DAY_MS = 24 * 3600 * 1000
const valid = mintToken(2, TEST_SECRET)
/** Authorization headers: the valid token in any case of the scheme, or a token that must not authenticate. */
const AUTH: Record<string, string | undefined> = {
  none: undefined,
  valid: `Bearer ${valid}`,
  lower: `bearer ${valid}`,
  expired: `Bearer ${mintToken(2, TEST_SECRET, new Date(Date.now() - 2 * DAY_MS))}`,
  otherSecret: `Bearer ${mintToken(2, 'another-secret')}`,
  garbage: 'Bearer abc.def.ghi',
}
const AUTHENTICATED = new Set(['valid', 'lower'])

/** Statuses that blame one part of the request: their error names it in `field`. */
const BLAMING = new Set([400, 401, 413, 414, 415])
const FIELD = /^(body|querystring|params|headers|url|request)(\.|$)/

const badEncoding = fc.constantFrom('%', '%E0%A4%A', '%zz', '%C0%AF', '%FF')
const segment = fc.oneof(
  {arbitrary: fc.constantFrom('1', '2'), weight: 4},
  fc.constantFrom('0', '-1', '99999999999999999999', '1.5', 'abc', '%00', '%27%20OR%201=1'),
  badEncoding,
  fc.nat().map(String),
  fc.string({maxLength: 12}).map(encodeURIComponent),
)
const queryValue = fc.oneof(
  fc.constantFrom('', '0', '-5', '100000', 'live', 'ended', 'upcoming', 'x.y', 'WzFd.00000000', 'WzEsMl0.4e1a2b3c.AAAAAAAAAAAAAAAAAAAAAA', valid),
  badEncoding,
  fc.string({maxLength: 40}).map(encodeURIComponent),
)
const query = fc.oneof({arbitrary: fc.constant({}), weight: 2}, fc.dictionary(fc.constantFrom('cursor', 'limit', 'status', 'extra', 'access_token', 'fields'), queryValue, {maxKeys: 3}))
const json = fc.oneof(
  fc.jsonValue({maxDepth: 3}),
  fc.record({dropId: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)), qty: fc.oneof(fc.integer({min: -5, max: 2000}), fc.string()), payload: fc.option(fc.jsonValue({maxDepth: 2}))}, {requiredKeys: []}),
)
const order = fc.record({dropId: fc.constantFrom(1, 2, 999), qty: fc.integer({min: 0, max: MAX_ORDER_QTY + 2})})
const rawBody = fc.oneof({arbitrary: order.map((v) => JSON.stringify(v)), weight: 3}, json.map((v) => JSON.stringify(v) ?? ''), fc.constantFrom('', '{', '{"dropId": 1,', 'null', '[]', '{"__proto__": {"admin": true}}', '\u0000'), fc.string({maxLength: 50}))
const contentType = fc.oneof({arbitrary: fc.constant('application/json'), weight: 4}, fc.constantFrom(undefined, 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream'))
const auth = fc.oneof({arbitrary: fc.constantFrom('valid', 'lower'), weight: 3}, fc.constantFrom(...Object.keys(AUTH)))
const idempotencyKey = fc.option(fc.oneof(fc.uuid().map((u) => `"${u}"`), fc.string({maxLength: 300})))

describe('HTTP fuzz', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1e6, rateLimitBurst: 1e6})

  it('answers every hostile request below 500 in the API error shape, naming the field at fault', async () => {
    await seedWorld(s.engine, {users: 5, stock: 1000})
    const seen = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        segment,
        query,
        rawBody,
        contentType,
        auth,
        idempotencyKey,
        async ([method, template, needsUser], id, q, payload, type, who, key) => {
          const search = Object.entries(q).map(([k, v]) => `${k}=${v}`).join('&')
          const url = template.replace('{id}', id) + (search ? `?${search}` : '')
          const headers: Record<string, string> = {}
          if (AUTH[who]) headers.authorization = AUTH[who]
          if (key !== null) headers['idempotency-key'] = key
          if (type && method === 'POST') headers['content-type'] = type
          const res = await s.app.inject({method: method as 'GET', url, headers, ...(method === 'POST' ? {payload} : {})})
          const what = `${method} ${url} [${who}, ${type}] ${JSON.stringify(payload)} → ${res.statusCode} ${res.body}`
          expect(res.statusCode, what).toBeLessThan(500)
          // a token in the URL, an expired, forged or missing token never opens a user's route
          if (needsUser && !AUTHENTICATED.has(who)) expect([400, 401], what).toContain(res.statusCode)
          if (res.statusCode < 400) return void seen.set(String(res.statusCode), (seen.get(String(res.statusCode)) ?? 0) + 1)
          const error = (res.json() as {error: {code: unknown; field?: unknown}}).error
          expect(error.code, what).toMatch(/^[A-Z][A-Z0-9_]*$/)
          seen.set(`${res.statusCode} ${error.code}`, (seen.get(`${res.statusCode} ${error.code}`) ?? 0) + 1)
          if (!BLAMING.has(res.statusCode)) return
          expect(res.headers['x-request-id'], what).toBeTypeOf('string')
          expect(error.field, what).toMatch(FIELD)
          const param = /^querystring\.(.+)$/.exec(error.field as string)?.[1]
          if (param) expect(Object.keys(q), what).toContain(param)
        },
      ),
      {
        numRuns: 600,
        // one request of each shape first, so every run checks them all
        examples: [
          [ORDERS, '1', {}, JSON.stringify({dropId: 1, qty: 1}), 'application/json', 'valid', '"fuzz-first"'],
          [ORDERS, '1', {}, '{"dropId": 1,', 'application/json', 'valid', '"fuzz-2"'],
          [ORDERS, '1', {}, '', 'application/json', 'valid', '"fuzz-3"'],
          [ORDERS, '1', {}, JSON.stringify({dropId: 1, qty: 1}), 'text/plain', 'valid', '"fuzz-4"'],
          [ORDERS, '1', {}, JSON.stringify({dropId: 1, qty: MAX_ORDER_QTY + 1}), 'application/json', 'valid', '"fuzz-5"'],
          [ORDERS, '1', {access_token: valid}, JSON.stringify({dropId: 1, qty: 1}), 'application/json', 'none', '"fuzz-6"'],
          [FOLLOWERS, '%E0%A4%A', {}, '', undefined, 'none', null],
          [FOLLOWERS, '1', {cursor: 'WzEsMl0.4e1a2b3c.AAAAAAAAAAAAAAAAAAAAAA'}, '', undefined, 'none', null],
          [FOLLOWERS, '1', {fields: 'all'}, '', undefined, 'expired', null],
          [FOLLOWERS, '999', {}, '', undefined, 'lower', null],
        ],
      },
    )
    // the run reached the shapes it is meant to check
    for (const shape of ['200', '201', '400 VALIDATION', '400 EMPTY_BODY', '400 UNKNOWN_FIELD', '400 INVALID_JSON', '400 BAD_URL', '400 INVALID_CURSOR', '401 UNAUTHENTICATED', '404 NOT_FOUND', '415 UNSUPPORTED_MEDIA_TYPE']) {
      expect([...seen.keys()]).toContain(shape)
    }
    // nothing half-written: every order row has a completed idempotency key behind it
    const {rows} = await s.engine.db.query<{n: number}>(
      `SELECT count(*)::int AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.user_id = o.user_id AND k.key = o.idempotency_key AND k.state = 'completed')`,
    )
    expect(rows[0].n).toBe(0)
  })
})
