/** A statement: plain text, or named so node-postgres prepares it once per connection. */
export type Sql = string | {name: string; text: string}

export interface QueryResult<R> {
  rows: R[]
  rowCount: number
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>>
  /** Runs a parameterless multi-statement script (migrations, DDL). */
  exec(script: string): Promise<void>
}

/** A column of a bulk load and its Postgres type. */
export interface CopyColumn {
  name: string
  type: 'bigint' | 'integer' | 'text' | 'boolean' | 'timestamptz' | 'date' | 'jsonb'
}

export type CopyValue = string | number | bigint | boolean | Date | null

/**
 * Where the engine keeps its data: a Postgres server, or the embedded one in `dir` (null: a
 * throwaway), in `database` (default 'livedrop'; created when missing).
 */
export type DbTarget = {kind: 'postgres'; url: string} | {kind: 'embedded'; dir: string | null; database?: string}

export interface Db extends Queryable {
  /** Where it connects, safe to print (password hidden). */
  readonly label: string
  /**
   * Opens every pooled connection now, so a burst does not wait for connections to be made, and
   * runs `warm` on each (all at once, each on its own connection).
   */
  prewarm(warm?: (session: Queryable) => Promise<void>): Promise<void>
  /** Runs fn on one connection outside a transaction, for session state such as advisory locks. */
  withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T>
  /** Runs fn in one transaction on one connection; rolls back if fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /**
   * Bulk-loads rows with COPY FROM STDIN.
   * Rows come in batches so generators need not hold a million rows at once. Returns rows loaded.
   */
  copyRows(table: string, columns: CopyColumn[], batches: Iterable<CopyValue[][]> | AsyncIterable<CopyValue[][]>): Promise<number>
  close(): Promise<void>
}

