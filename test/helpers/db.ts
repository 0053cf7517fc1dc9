import pg from 'pg'
import {randomBytes} from 'node:crypto'
import {afterAll, beforeAll, inject} from 'vitest'
import {PgliteDb} from '../../src/core/db/pglite.js'
import {PostgresDb} from '../../src/core/db/postgres.js'
import {migrate} from '../../src/core/db/migrate.js'
import type {Db} from '../../src/core/db/types.js'
import {ADMIN_DATABASE_URL, TEMPLATE_DB, databaseUrl} from './env.js'

export const services = inject('services')

export interface TestDatabase {
  /** The open database; valid between beforeAll and afterAll. */
  readonly db: Db
  /** Its postgres:// URL (null on PGlite), for spawning the CLI against it. */
  readonly url: string | null
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({connectionString: ADMIN_DATABASE_URL})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates a throwaway database from the migrated template; returns its URL. */
export async function createTestDatabase(): Promise<{name: string; url: string}> {
  const name = `livedrop_t_${randomBytes(6).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`))
  return {name, url: databaseUrl(name)}
}

export async function dropTestDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
}

/** A throwaway, migrated Postgres database for this test file (created in beforeAll, dropped in afterAll). */
export function usePostgres(options: {max?: number} = {}): TestDatabase {
  let db: PostgresDb | undefined
  let name = ''
  let url = ''
  beforeAll(async () => {
    ;({name, url} = await createTestDatabase())
    db = new PostgresDb(url, {max: options.max ?? 10})
  })
  afterAll(async () => {
    await db?.close()
    if (name) await dropTestDatabase(name)
  })
  return {
    get db() {
      if (!db) throw new Error('usePostgres: the database is opened in beforeAll')
      return db
    },
    get url() {
      return url
    },
  }
}

/** A migrated in-memory PGlite for this test file. */
export function usePglite(): TestDatabase {
  let db: PgliteDb | undefined
  beforeAll(async () => {
    db = await PgliteDb.open(null)
    await migrate(db)
  })
  afterAll(async () => {
    await db?.close()
  })
  return {
    get db() {
      if (!db) throw new Error('usePglite: the database is opened in beforeAll')
      return db
    },
    url: null,
  }
}

/**
 * The backends every storage suite runs on: embedded PGlite always, real Postgres when it is up
 * (global setup fails the run instead when LIVEDROP_REQUIRE_SERVICES=1).
 */
export const BACKENDS = [
  {name: 'pglite', available: true, use: usePglite},
  {name: 'postgres', available: services.postgres, use: usePostgres},
] as const
