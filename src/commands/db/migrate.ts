import {BaseCommand, dbFlags} from '../../cli/base-command.js'
import {migrate, schemaState} from '../../core/db/migrate.js'

export default class DbMigrate extends BaseCommand {
  static override summary = 'Apply pending schema migrations'
  static override description = 'Applies every numbered migration the database does not have yet, in one transaction.'
  static override examples = ['<%= config.bin %> db migrate', '<%= config.bin %> db migrate --db postgres://root@127.0.0.1:5432/test --json']
  static override flags = {...dbFlags}

  async run(): Promise<{database: string; applied: number[]; version: number}> {
    const {flags} = await this.parse(DbMigrate)
    const db = await this.openDatabase(flags, {create: true})
    try {
      const applied = await migrate(db)
      const {current} = await schemaState(db)
      this.log(applied.length ? `Applied migrations ${applied.join(', ')} to ${db.label}; schema version ${current}.` : `${db.label} is up to date (schema version ${current}).`)
      return {database: db.label, applied, version: current}
    } finally {
      await db.close()
    }
  }
}
