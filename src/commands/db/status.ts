import {createTable} from '../../cli/table.js'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {EMBEDDED_SETTINGS, embeddedStatus} from '../../core/db/embedded.js'
import {openDb} from '../../core/db/index.js'
import {latestVersion, rowCounts, schemaState} from '../../core/db/migrate.js'

interface EmbeddedInfo {
  dir: string | null
  pgdata: string | null
  /** `shared`: another livedrop process had the server running; `started`: started for this command. */
  server: 'shared' | 'started' | 'none'
  settings: Record<string, string>
}

export default class DbStatus extends BaseCommand {
  static override summary = 'Show the connection, schema version and row counts'
  static override description = `On the embedded Postgres it also says whether the server was already running for another
livedrop command (shared) or was started for this one, and the settings livedrop gives it. A data
directory that does not exist yet is reported, never created.`
  static override examples = ['<%= config.bin %> db status', '<%= config.bin %> db status --db postgres://root@127.0.0.1:5432/test --json']
  static override flags = {...dbFlags}

  async run(): Promise<{database: string; kind: string; version: number; latest: number; pending: number[]; rows: Record<string, number>; embedded?: EmbeddedInfo}> {
    const {flags} = await this.parse(DbStatus)
    const target = this.config_(flags).db
    let embedded: EmbeddedInfo | undefined
    if (target.kind === 'embedded') {
      const before = target.dir ? embeddedStatus(target.dir) : null
      embedded = {dir: target.dir, pgdata: before?.pgdata ?? null, server: before?.running ? 'shared' : 'started', settings: {...EMBEDDED_SETTINGS}}
      if (before && !before.exists) {
        this.log(`Database:       none yet at ${before.dir} (\`livedrop seed\` or \`livedrop db migrate\` creates it)`)
        return {database: before.dir, kind: 'embedded', version: 0, latest: latestVersion(), pending: [], rows: {}, embedded: {...embedded, server: 'none'}}
      }
    }
    const db = await openDb(target)
    try {
      const state = await schemaState(db)
      const rows = state.current > 0 ? await rowCounts(db) : {}
      this.log(`Database:       ${db.label}`)
      if (embedded) {
        if (embedded.pgdata && !embedded.pgdata.startsWith(embedded.dir + '/')) this.log(`Data:           ${embedded.pgdata} (the postgres user cannot reach ${embedded.dir})`)
        this.log(`Server:         ${embedded.server === 'shared' ? 'shared with another livedrop process' : 'started for this command, stopped after it'}`)
        this.log(`Settings:       ${Object.entries(embedded.settings).map(([k, v]) => `${k}=${v}`).join(' ')}`)
      }
      this.log(`Schema version: ${state.current} (this livedrop: ${state.latest})${state.pending.length ? ` — pending: ${state.pending.join(', ')}; run \`livedrop db migrate\`` : ''}`)
      if (state.current > 0) {
        const table = createTable(['table', 'rows'], ['left', 'right'])
        for (const [name, n] of Object.entries(rows)) table.push([name, n.toLocaleString('en-US')])
        this.log(table.toString())
      }
      return {database: db.label, kind: target.kind, version: state.current, latest: state.latest, pending: state.pending, rows, ...(embedded ? {embedded} : {})}
    } finally {
      await db.close()
    }
  }
}
