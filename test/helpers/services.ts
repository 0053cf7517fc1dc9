import {createHash} from 'node:crypto'
import {loadMigrations} from '../../src/core/db/migrate.js'

/** Where the test services are: DATABASE_URL / REDIS_URL, defaulting to the local ones. */
export const DEFAULT_ADMIN_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres'
export const DEFAULT_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
/** The migrated template test databases are copied from; named after the migrations' hash. */
export const TEMPLATE_DB = `livedrop_tpl_${createHash('sha256').update(loadMigrations().map((m) => m.sql).join('\n')).digest('hex').slice(0, 10)}`
export const REQUIRE_SERVICES = process.env.LIVEDROP_REQUIRE_SERVICES === '1'

/** The same server as adminUrl, another database. */
export function databaseUrlOn(adminUrl: string, name: string): string {
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** What global setup found or started, handed to every test file. */
export interface Services {
  /** postgres://… of a database on the test server from which test databases are created. */
  adminDatabaseUrl: string
  /** Which Postgres the suite runs on. */
  postgresSource: 'server' | 'embedded'
  redisUrl: string
  redisSource: 'server' | 'started'
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services
  }
}
