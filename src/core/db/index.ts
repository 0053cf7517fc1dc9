import {PgliteDb} from './pglite.js'
import {PostgresDb, type PostgresOptions} from './postgres.js'
import type {Db, DbTarget} from './types.js'

export * from './types.js'
export {PgliteDb} from './pglite.js'
export {PostgresDb} from './postgres.js'

/** Opens the database a target names. Postgres connects lazily; the first query reports failures. */
export async function openDb(target: DbTarget, options: PostgresOptions = {}): Promise<Db> {
  return target.kind === 'postgres' ? new PostgresDb(target.url, options) : PgliteDb.open(target.dataDir)
}
