import pg from 'pg'
import {randomBytes} from 'node:crypto'
import {PostgresDb} from '../src/core/db/postgres.js'
import {migrate} from '../src/core/db/migrate.js'

/** The Postgres server benchmarks use: DATABASE_URL's server, default 127.0.0.1:5432. */
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres'

/** A freshly migrated throwaway database; drop() removes it. */
export async function benchDatabase(label: string, poolSize = 20): Promise<{db: PostgresDb; url: string; drop: () => Promise<void>}> {
  const name = `livedrop_bench_${label}_${randomBytes(3).toString('hex')}`
  const admin = new pg.Client({connectionString: ADMIN_URL})
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  const db = new PostgresDb(url.toString(), {max: poolSize})
  await migrate(db)
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close()
      const c = new pg.Client({connectionString: ADMIN_URL})
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}
