import {createTable} from '../../cli/table.js'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {rowCounts, schemaState} from '../../core/db/migrate.js'

export default class DbStatus extends BaseCommand {
  static override summary = 'Show the connection, schema version and row counts'
  static override examples = ['<%= config.bin %> db status', '<%= config.bin %> db status --db postgres://root@127.0.0.1:5432/test --json']
  static override flags = {...dbFlags}

  async run(): Promise<{database: string; kind: string; version: number; latest: number; pending: number[]; rows: Record<string, number>}> {
    const {flags} = await this.parse(DbStatus)
    const db = await this.openDatabase(flags)
    try {
      const state = await schemaState(db)
      const rows = state.current > 0 ? await rowCounts(db) : {}
      this.log(`Database:       ${db.label}`)
      this.log(`Schema version: ${state.current} (this livedrop: ${state.latest})${state.pending.length ? ` — pending: ${state.pending.join(', ')}; run \`livedrop db migrate\`` : ''}`)
      if (state.current > 0) {
        const table = createTable(['table', 'rows'], ['left', 'right'])
        for (const [name, n] of Object.entries(rows)) table.push([name, n.toLocaleString('en-US')])
        this.log(table.toString())
      }
      return {database: db.label, kind: db.kind, version: state.current, latest: state.latest, pending: state.pending, rows}
    } finally {
      await db.close()
    }
  }
}
