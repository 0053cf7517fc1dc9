import type {AddressInfo} from 'node:net'
import {performance} from 'node:perf_hooks'
import type {FastifyInstance} from 'fastify'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {createCatalogCache, type CatalogCache} from '../src/core/cache/catalog-cache.js'
import {createCacheNodes} from '../src/core/cache/nodes.js'
import {createEngine, type Engine} from '../src/core/engine.js'
import {createRandom} from '../src/core/random.js'
import {buildServer} from '../src/server/app.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import type {RequestType} from '../src/sim/scenario/schema.js'
import {createBuilders, type OrderLedger} from '../src/sim/traffic/builders.js'
import {checkStaleReads} from '../src/sim/traffic/stale-reads.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'

const SECRET = 'stale-reads-secret-0123'
const STALE_AFTER_MS = 300
/** Long enough for several edits to pass the bound while the crowd reads. */
const DRIVE_MS = 2000
const READERS = 8
const EDIT_EVERY_MS = 40

const scenario = parseScenario(`
name: edits-while-reading
dataset: {users: 50, creators: 2, productsPerCreator: 3}
engine: {staleAfter: ${STALE_AFTER_MS}ms}
drop: {stock: 10}
phases:
  - name: edits
    duration: 2s
    rates: {browse_product: 1, edit_product: 1, remove_product: 1}
`)

/**
 * The celebrity edits its products (and removes one, once) while READERS concurrent readers read
 * them through the real server, every request built and every answer recorded by the generator's
 * builders; returns their ledger and the answers that were failures.
 */
async function drive(baseUrl: string): Promise<{ledger: OrderLedger; failures: string[]; sent: number}> {
  const {builders, ledger} = createBuilders(scenario, {users: 50, creators: 2, products: 6, dropId: 1, secret: SECRET})
  const random = createRandom(7)
  const t0 = performance.now()
  const failures: string[] = []
  let seq = 0
  const send = async (type: RequestType) => {
    const spec = builders[type]({type, phase: 'edits', seq: seq++, intendedMs: performance.now() - t0, random})
    const res = await request(baseUrl + spec.path, {
      method: spec.method as 'GET',
      headers: {...spec.headers, ...(spec.body === undefined ? {} : {'content-type': 'application/json'})},
      body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
    })
    const text = await res.body.text()
    if (!(spec.ok ?? (() => true))(res.statusCode)) failures.push(`${type} ${spec.path} → ${res.statusCode} ${text}`)
    spec.onResponse?.(res.statusCode, text)
  }
  const until = t0 + DRIVE_MS
  const reader = async () => {
    while (performance.now() < until) await send('browse_product')
  }
  const editor = async () => {
    let removed = false
    while (performance.now() < until) {
      await send('edit_product')
      if (!removed && performance.now() > t0 + DRIVE_MS / 3) {
        removed = true
        await send('remove_product')
      }
      await new Promise((r) => setTimeout(r, EDIT_EVERY_MS))
    }
  }
  await Promise.all([editor(), ...Array.from({length: READERS}, reader)])
  return {ledger, failures, sent: seq}
}

async function listen(engine: Engine): Promise<{app: FastifyInstance; url: string}> {
  // one client IP sends everything here: the per-IP rate limit would answer 429s instead
  const {app} = await buildServer(engine, {secret: SECRET, rateLimitPerSecond: 1_000_000, rateLimitBurst: 1_000_000, log: false})
  await app.listen({port: 0, host: '127.0.0.1'})
  return {app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`}
}

describe('no_stale_reads against a real server while the celebrity edits its products', () => {
  let name = ''
  let engine: Engine
  beforeAll(async () => {
    const db = await createTestDatabase()
    name = db.name
    engine = await createEngine({db: {kind: 'postgres', url: db.url}, cache: 'memory:3'})
    await engine.db.exec(`
      INSERT INTO users (id, handle, display_name) SELECT g, 'user' || g, 'User ' || g FROM generate_series(1, 50) g;
      INSERT INTO creators (id, user_id, name, is_celebrity) VALUES (1, 1, 'Celebrity', true), (2, 2, 'Other', false);
      INSERT INTO products (id, creator_id, title, price_cents) SELECT g, CASE WHEN g <= 3 THEN 1 ELSE 2 END, 'P' || g, 1000 FROM generate_series(1, 6) g;`)
  })
  afterAll(async () => {
    await engine?.close()
    if (name) await dropTestDatabase(name)
  })

  it('the engine as built: every read held to the bound shows the acknowledged edit or removal', async () => {
    const {app, url} = await listen(engine)
    try {
      const {ledger, failures, sent} = await drive(url)
      const l = ledger.staleReads
      expect(failures).toEqual([])
      expect(l.edits).toBeGreaterThan(10)
      expect(l.removals).toBeGreaterThanOrEqual(1)
      expect(l.checked).toBeGreaterThan(100)
      expect(l.reads).toBeGreaterThan(l.checked)
      expect(sent).toBeGreaterThan(l.reads)
      expect(l).toMatchObject({staleAfterMs: STALE_AFTER_MS, violations: 0, examples: [], unversioned: 0})
      expect(checkStaleReads(ledger)).toEqual({name: 'no_stale_reads', ok: true, details: expect.objectContaining({violations: 0, checked: l.checked})})
    } finally {
      await app.close()
    }
  }, 30_000)

  it('a cache that does not hear the edits (built without the change feed) is caught', async () => {
    // the same engine, but its reads go through a cache the writers' changes never reach
    const deaf: CatalogCache = await createCatalogCache({db: engine.db, nodes: await createCacheNodes('memory:3')})
    const {app, url} = await listen({...engine, catalog: deaf})
    try {
      const {ledger} = await drive(url)
      const check = checkStaleReads(ledger)
      expect(check.ok).toBe(false)
      expect(ledger.staleReads.violations).toBeGreaterThan(0)
      const examples = ledger.staleReads.examples
      expect(examples.length).toBeGreaterThan(0)
      for (const e of examples) {
        expect(e.sinceAckMs).toBeGreaterThan(STALE_AFTER_MS)
        expect([1, 2, 3]).toContain(e.productId)
        // what it saw is older than what the bound required
        if (typeof e.expected === 'number') expect(e.seen === 'gone' || e.seen < e.expected).toBe(true)
        else expect(e.seen).not.toBe('gone')
      }
      expect(check.details).toMatchObject({violations: ledger.staleReads.violations, examples})
    } finally {
      await app.close()
      await deaf.close()
    }
  }, 30_000)
})
