import {UsageError} from '../errors.js'
import type {Queryable} from '../db/types.js'

/**
 * Table sizes for capacity planning: rows, the bytes of an average row (pg_column_size of the
 * whole row over a sample) and the relation's whole size (heap, TOAST and every index, summed over
 * partitions, pg_total_relation_size) divided by its rows.
 *
 * A small table's whole size is mostly empty pages (every heap and index starts at 8 KiB), so its
 * whole-size-per-row is only trusted from MIN_ROWS_FOR_TOTAL rows on; below that a planner should
 * use the row bytes plus the tuple overhead, as `bytesPerRow` does.
 */

/** The platform's tables that grow with users, follows, drops and orders. */
export const STORAGE_TABLES = ['users', 'creators', 'follows', 'products', 'drops', 'drop_stock_buckets', 'orders', 'idempotency_keys', 'outbox', 'notifications'] as const

/** Rows from which a table's whole size (pages, indexes) divided by its rows describes a row. */
export const MIN_ROWS_FOR_TOTAL = 10_000
/**
 * Heap tuple header (23 bytes, padded to 24) plus its 4-byte line pointer: what a row costs in the
 * heap beyond its data (PostgreSQL docs, "Database Page Layout").
 */
export const TUPLE_OVERHEAD_BYTES = 28
/** Rows sampled for the average row size; the planner's figure does not need more. */
const SAMPLE_ROWS = 1000
/** Below this many estimated rows the table is counted exactly (cheap, and reltuples is coarse there). */
const EXACT_COUNT_BELOW = 1_000_000

export interface TableStorage {
  /** Rows: counted exactly below 1,000,000, else the planner's estimate (pg_class.reltuples). */
  rows: number
  rowsEstimated: boolean
  /** Average pg_column_size of a whole row over up to 1,000 rows; null for an empty table. */
  rowBytes: number | null
  /** Heap + TOAST + indexes of the table and all its partitions, bytes. */
  totalBytes: number
  /** totalBytes ÷ rows; null for an empty table. */
  totalBytesPerRow: number | null
  /**
   * The bytes one more row costs: totalBytesPerRow from MIN_ROWS_FOR_TOTAL rows on, else
   * rowBytes + TUPLE_OVERHEAD_BYTES (indexes not included: too few rows to measure them). Null when empty.
   */
  bytesPerRow: number | null
  basis: 'total' | 'row' | 'empty'
}

export interface StorageReport {
  measuredAt: string
  tables: Record<string, TableStorage>
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/

const RELATION = {
  name: 'storage.relation',
  // a partitioned parent has no storage of its own: sum its leaf partitions (pg_partition_tree lists nothing for a plain table)
  text: `WITH parts AS (
      SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
      UNION ALL SELECT $1::regclass WHERE NOT EXISTS (SELECT 1 FROM pg_partition_tree($1::regclass)))
    SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0)::bigint AS total_bytes,
      coalesce(sum(greatest(c.reltuples, 0)), 0)::float8 AS estimate,
      bool_or(c.reltuples < 0) AS never_analyzed
    FROM parts p JOIN pg_class c ON c.oid = p.relid`,
}

/** Measures the given tables (default STORAGE_TABLES) in the database db is connected to. */
export async function measureStorage(db: Queryable, tables: readonly string[] = STORAGE_TABLES): Promise<StorageReport> {
  const out: Record<string, TableStorage> = {}
  for (const table of tables) {
    if (!IDENTIFIER.test(table)) throw new UsageError('tables', `"${table}" is not a plain table name`)
    const exists = (await db.query<{oid: string | null}>('SELECT to_regclass($1)::text AS oid', [table])).rows[0].oid
    if (!exists) throw new UsageError('tables', `no table "${table}" in this database`, {hint: 'Migrate the database (`livedrop db migrate`) or name only existing tables.'})
    const rel = (await db.query<{total_bytes: string | number; estimate: number; never_analyzed: boolean | null}>(RELATION, [table])).rows[0]
    const estimated = !rel.never_analyzed && rel.estimate >= EXACT_COUNT_BELOW
    const rows = estimated ? Math.round(rel.estimate) : Number((await db.query<{n: string}>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
    const sample = await db.query<{bytes: number | null}>(`SELECT avg(pg_column_size(t.*))::float8 AS bytes FROM (SELECT * FROM ${table} LIMIT ${SAMPLE_ROWS}) t`)
    const rowBytes = rows > 0 && sample.rows[0].bytes !== null ? round1(sample.rows[0].bytes) : null
    const totalBytes = Number(rel.total_bytes)
    const totalBytesPerRow = rows > 0 ? round1(totalBytes / rows) : null
    const basis = rows === 0 || rowBytes === null ? 'empty' : rows >= MIN_ROWS_FOR_TOTAL ? 'total' : 'row'
    out[table] = {
      rows,
      rowsEstimated: estimated,
      rowBytes,
      totalBytes,
      totalBytesPerRow,
      bytesPerRow: basis === 'total' ? totalBytesPerRow : basis === 'row' ? round1(rowBytes! + TUPLE_OVERHEAD_BYTES) : null,
      basis,
    }
  }
  return {measuredAt: new Date().toISOString(), tables: out}
}

const round1 = (v: number) => Math.round(v * 10) / 10
