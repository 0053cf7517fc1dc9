import {Flags} from '@oclif/core'
import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {resetSchema} from '../../core/db/migrate.js'

export default class DbReset extends BaseCommand {
  static override summary = 'Drop every livedrop table and migrate afresh (destroys data)'
  static override description = 'Asks for confirmation on a terminal; anywhere else it refuses unless --yes is given.'
  static override examples = ['<%= config.bin %> db reset', '<%= config.bin %> db reset --yes --db postgres://root@127.0.0.1:5432/test']
  static override flags = {...dbFlags, yes: Flags.boolean({char: 'y', description: 'Do not ask; destroy the data.'})}

  async run(): Promise<{database: string; reset: true; version: number}> {
    const {flags} = await this.parse(DbReset)
    const db = await this.openDatabase(flags)
    try {
      await this.confirm(`Destroy all livedrop data in ${db.label}?`, flags.yes, `reset ${db.label}`)
      const applied = await resetSchema(db)
      this.log(`Reset ${db.label}; schema version ${applied.at(-1)}.`)
      return {database: db.label, reset: true, version: applied.at(-1) ?? 0}
    } finally {
      await db.close()
    }
  }
}
