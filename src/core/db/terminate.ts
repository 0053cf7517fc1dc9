import type {Queryable} from './types.js'

/**
 * The application_name a serve worker's pool announces (set in its connection URL by the serve
 * cluster), so a fault can find the engine's connections and nobody else's in pg_stat_activity.
 */
export const SERVE_APPLICATION_NAME = 'livedrop-serve'

const TERMINATE = {
  name: 'faults.terminate-backends',
  // only this database's backends, never the caller's own connection
  text: `SELECT pid, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()`,
}

/**
 * Terminates (pg_terminate_backend) every backend of this database whose application_name is
 * `applicationName`: each open transaction rolls back and its client sees the connection cut.
 * Returns the pids terminated. Needs superuser or pg_signal_backend over those backends.
 */
export async function terminateBackends(db: Queryable, applicationName: string): Promise<number[]> {
  const {rows} = await db.query<{pid: number; terminated: boolean}>(TERMINATE, [applicationName])
  return rows.filter((r) => r.terminated).map((r) => Number(r.pid))
}

/** Adds application_name to a postgres:// URL unless it names one already (the URL's own wins). */
export function withApplicationName(url: string, applicationName: string): string {
  const parsed = new URL(url)
  if (!parsed.searchParams.has('application_name')) parsed.searchParams.set('application_name', applicationName)
  return parsed.toString()
}
