import {openEmbedded} from './embedded.js'
import {PostgresDb, type PostgresOptions} from './postgres.js'
import type {Db, DbTarget, Queryable} from './types.js'

export * from './types.js'
export {PostgresDb} from './postgres.js'

/**
 * Opens the database a target names: a Postgres server (connected lazily; the first query reports
 * failures), or the embedded server, started or joined now and left when the Db closes.
 */
export async function openDb(target: DbTarget, options: PostgresOptions = {}): Promise<Db> {
  if (target.kind === 'postgres') return new PostgresDb(target.url, options)
  const cluster = await openEmbedded(target.dir, target.database)
  return new PostgresDb(cluster.url, {...options, label: cluster.label, onClose: () => cluster.release()})
}

/** The server process serving one of db's connections: its parent is the postmaster, when the server runs on this machine. */
export async function backendPid(db: Queryable): Promise<number> {
  const {rows} = await db.query<{pid: number}>({name: 'db.backend-pid', text: 'SELECT pg_backend_pid() AS pid'})
  return Number(rows[0].pid)
}
