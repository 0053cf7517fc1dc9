import {afterAll, beforeAll} from 'vitest'
import type {FastifyInstance} from 'fastify'
import {createEngine, type Engine, type EngineConfig} from '../../src/core/engine.js'
import {buildServer, type ServerOptions} from '../../src/server/app.js'
import {mintToken} from '../../src/core/tokens.js'
import {createTestDatabase, dropTestDatabase} from './db.js'

export const TEST_SECRET = 'test-secret-123'

export interface TestServer {
  readonly app: FastifyInstance
  readonly engine: Engine
  readonly url: string | null
  /** Authorization header for a user. */
  auth(userId: number): {authorization: string}
}

/**
 * An engine plus HTTP app on a throwaway database: on the test server (`postgres`) or on a
 * throwaway embedded Postgres (`embedded`). Requests go through fastify.inject unless the test listens itself.
 */
export function useServer(backend: 'postgres' | 'embedded', options: Partial<ServerOptions> & {engine?: Partial<EngineConfig>} = {}): TestServer {
  let app: FastifyInstance | undefined
  let engine: Engine | undefined
  let name = ''
  let url: string | null = null
  beforeAll(async () => {
    if (backend === 'postgres') ({name, url} = await createTestDatabase())
    engine = await createEngine({db: url ? {kind: 'postgres', url} : {kind: 'embedded', dir: null}, migrate: backend === 'embedded', ...options.engine})
    ;({app} = await buildServer(engine, {secret: TEST_SECRET, ...options}))
    await app.ready()
  })
  afterAll(async () => {
    await app?.close()
    await engine?.close()
    if (name) await dropTestDatabase(name)
  })
  return {
    get app() {
      return app!
    },
    get engine() {
      return engine!
    },
    get url() {
      return url
    },
    auth: (userId: number) => ({authorization: `Bearer ${mintToken(userId, TEST_SECRET)}`}),
  }
}

/** Users 1..n, creator 1 (user 1) with one product, and a live `row` drop of `stock` units. */
export async function seedWorld(engine: Engine, options: {users?: number; stock?: number} = {}): Promise<{dropId: number; productId: number; creatorId: number}> {
  const users = options.users ?? 10
  await engine.db.exec(`
    INSERT INTO users (id, handle, display_name) SELECT g, 'user' || g, 'User ' || g FROM generate_series(1, ${users}) g;
    SELECT setval(pg_get_serial_sequence('users', 'id'), ${users});
    INSERT INTO creators (id, user_id, name) VALUES (1, 1, 'Creator One');
    SELECT setval(pg_get_serial_sequence('creators', 'id'), 1);
    INSERT INTO products (id, creator_id, title, price_cents) VALUES (1, 1, 'Sneaker', 12000);
    SELECT setval(pg_get_serial_sequence('products', 'id'), 1);`)
  const {createDrop, startDrop} = await import('../../src/core/catalog/drops.js')
  const drop = await createDrop(engine.deps, {
    creatorId: 1,
    productId: 1,
    stock: options.stock ?? 5,
    startsAt: new Date(Date.now() - 1000),
    endsAt: new Date(Date.now() + 3_600_000),
    lowStockThreshold: 1,
  })
  await startDrop(engine.deps, drop.id)
  return {dropId: drop.id, productId: 1, creatorId: 1}
}
