import pg from 'pg'
import {randomBytes} from 'node:crypto'
import {afterAll, beforeAll} from 'vitest'
import {openDb} from '../../src/core/db/index.js'
import {PostgresDb} from '../../src/core/db/postgres.js'
import {migrate} from '../../src/core/db/migrate.js'
import type {Db} from '../../src/core/db/types.js'
import {ADMIN_DATABASE_URL, TEMPLATE_DB, databaseUrl, services} from './env.js'

export {services}

export interface TestDatabase {
  /** The open database; valid between beforeAll and afterAll. */
  readonly db: Db
  /** Its postgres:// URL, for spawning the CLI against it. */
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

/** A migrated database on a throwaway embedded Postgres (the CLI's default engine) for this test file. */
export function useEmbedded(): TestDatabase {
  let db: Db | undefined
  beforeAll(async () => {
    db = await openDb({kind: 'embedded', dir: null})
    await migrate(db)
  })
  afterAll(async () => {
    await db?.close()
  })
  return {
    get db() {
      if (!db) throw new Error('useEmbedded: the database is opened in beforeAll')
      return db
    },
    get url() {
      return (db as PostgresDb).url
    },
  }
}

/**
 * The backends every storage suite runs on: the embedded Postgres users get by default, and the
 * test server (DATABASE_URL or 127.0.0.1:5432; global setup provides one or fails the run).
 */
export const BACKENDS = [
  {name: 'embedded', use: useEmbedded},
  {name: 'postgres', use: usePostgres},
] as const
