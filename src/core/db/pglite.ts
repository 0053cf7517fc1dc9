import {PGlite} from '@electric-sql/pglite'
import {mkdirSync} from 'node:fs'
import type {Results} from '@electric-sql/pglite'
import type {CopyColumn, CopyValue, Db, QueryResult, Queryable, Sql} from './types.js'
import {sqlText} from './types.js'

/** Rows returned (SELECT, … RETURNING) or rows affected, as node-postgres reports rowCount. */
function toResult<R>(result: Results<R>): QueryResult<R> {
  return {rows: result.rows, rowCount: result.fields.length > 0 ? result.rows.length : (result.affectedRows ?? 0)}
}

/** Rows per INSERT … SELECT FROM unnest(…) statement on the bulk path. */
const INSERT_CHUNK = 20_000

function toArrayValue(value: CopyValue): unknown {
  return value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? value.toString() : value
}

/** Postgres running in-process as WebAssembly: the embedded default. */
export class PgliteDb implements Db {
  readonly kind = 'pglite' as const
  readonly label: string

  private constructor(private readonly pg: PGlite, dataDir: string | null) {
    this.label = dataDir ? `embedded PGlite at ${dataDir}` : 'embedded PGlite (in memory)'
  }

  /** Opens (creating if needed) a database under dataDir, or a throwaway one in memory when null. */
  static async open(dataDir: string | null): Promise<PgliteDb> {
    if (dataDir) mkdirSync(dataDir, {recursive: true})
    const pg = dataDir ? await PGlite.create(dataDir) : await PGlite.create()
    return new PgliteDb(pg, dataDir)
  }

  async query<R>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>> {
    return toResult(await this.pg.query<R>(sqlText(sql), params))
  }

  async exec(script: string): Promise<void> {
    await this.pg.exec(script)
  }

  /** PGlite is one connection: its session is the database itself. */
  async withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T> {
    return fn(this)
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.pg.transaction(async (inner) => {
      const tx: Queryable = {
        async query<R>(sql: Sql, params?: unknown[]) {
          return toResult(await inner.query<R>(sqlText(sql), params))
        },
        async exec(script: string) {
          await inner.exec(script)
        },
      }
      return fn(tx)
    })
  }

  async copyRows(table: string, columns: CopyColumn[], batches: Iterable<CopyValue[][]> | AsyncIterable<CopyValue[][]>): Promise<number> {
    // one array parameter per column: a single statement inserts INSERT_CHUNK rows
    const names = columns.map((c) => `"${c.name}"`).join(', ')
    const unnest = columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')
    const text = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${unnest})`
    let count = 0
    let pending: CopyValue[][] = []
    const flush = async () => {
      if (pending.length === 0) return
      const arrays = columns.map((_, i) => pending.map((row) => toArrayValue(row[i])))
      await this.pg.query(text, arrays)
      count += pending.length
      pending = []
    }
    for await (const batch of batches) {
      for (const row of batch) {
        pending.push(row)
        if (pending.length >= INSERT_CHUNK) await flush()
      }
    }
    await flush()
    return count
  }

  async close(): Promise<void> {
    await this.pg.close()
  }
}
