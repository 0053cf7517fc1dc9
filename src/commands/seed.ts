import {Flags} from '@oclif/core'
import {existsSync, statfsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {getHeapStatistics} from 'node:v8'
import {createTable} from '../cli/table.js'
import {BaseCommand, dbFlags} from '../cli/base-command.js'
import {createProgress} from '../cli/progress.js'
import {checkSeedFits, estimateSeed, SEED_DEFAULTS, seed, validateSeedOptions, type SeedResult} from '../core/catalog/seed.js'
import type {DbTarget} from '../core/db/types.js'
import {migrate} from '../core/db/migrate.js'

export default class Seed extends BaseCommand {
  static override summary = 'Build a realistic, deterministic dataset: users, creators, skewed follows, products'
  static override description = `The same --seed gives the same rows. Follows are skewed: most creators have a few followers,
celebrities have --celebrity-followers each (users are raised to make that possible).
Rows are loaded with COPY (the embedded Postgres and a server alike).
Migrates the database first if needed; refuses a non-empty database unless --reset.`
  static override examples = [
    '<%= config.bin %> seed',
    '<%= config.bin %> seed --users 100000 --creators 200 --celebrities 1 --celebrity-followers 1000000 --seed 42 --db postgres://root@127.0.0.1:5432/test',
    '<%= config.bin %> seed --reset --json',
  ]
  static override flags = {
    ...dbFlags,
    users: Flags.integer({description: 'users with profiles', default: SEED_DEFAULTS.users, min: 1}),
    creators: Flags.integer({description: 'creators (celebrities included)', default: SEED_DEFAULTS.creators, min: 1}),
    celebrities: Flags.integer({description: 'how many creators are celebrities', default: SEED_DEFAULTS.celebrities, min: 0}),
    'celebrity-followers': Flags.integer({description: 'followers of each celebrity', default: SEED_DEFAULTS.celebrityFollowers, min: 0}),
    'products-per-creator': Flags.integer({description: 'products per creator', default: SEED_DEFAULTS.productsPerCreator, min: 0}),
    seed: Flags.integer({description: 'PRNG seed; the same seed gives the same data', default: SEED_DEFAULTS.seed, min: 0}),
    reset: Flags.boolean({description: 'wipe a non-empty database first'}),
  }

  async run(): Promise<SeedResult & {database: string}> {
    const {flags} = await this.parse(Seed)
    const options = {
      users: flags.users,
      creators: flags.creators,
      celebrities: flags.celebrities,
      celebrityFollowers: flags['celebrity-followers'],
      productsPerCreator: flags['products-per-creator'],
      seed: flags.seed,
      reset: flags.reset,
    }
    // what cannot fit is refused before a database is opened or a row written
    validateSeedOptions(options)
    checkSeedFits(estimateSeed(options), seedBudget(this.dataConfig(flags, {create: true}).db))
    const db = await this.openDatabase(flags, {create: true})
    const progress = createProgress({json: this.jsonEnabled()})
    try {
      await migrate(db)
      const result = await seed(db, options, (p) => progress.update(p.table, p.done, p.total))
      progress.stop()
      if (result.usersRaisedTo) this.note(`Note: users raised to ${result.usersRaisedTo} so each celebrity can have its followers.`)
      const table = createTable(['table', 'rows'], ['left', 'right'])
      for (const [name, n] of Object.entries(result.rows)) table.push([name, n.toLocaleString('en-US')])
      this.log(table.toString())
      this.log(`Seeded ${db.label} in ${result.seconds.toFixed(2)} s (${result.rowsPerSecond.toLocaleString('en-US')} rows/s).`)
      return {database: db.label, ...result}
    } finally {
      progress.stop()
      await db.close()
    }
  }
}

/**
 * What this machine gives a seed: most of Node's heap limit, and the free disk where the embedded
 * database lives (a Postgres server's disk is not visible from here).
 */
function seedBudget(target: DbTarget): {memoryBytes: number; freeDiskBytes?: number; diskWhere?: string} {
  const memoryBytes = Math.floor(getHeapStatistics().heap_size_limit * 0.8)
  if (target.kind !== 'embedded') return {memoryBytes}
  let dir = target.dir ?? tmpdir()
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  const fs = statfsSync(dir)
  return {memoryBytes, freeDiskBytes: fs.bavail * fs.bsize, diskWhere: dir}
}
