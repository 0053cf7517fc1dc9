import {readFileSync, readdirSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {SchemaNotMigratedError, SchemaTooNewError} from '../errors.js'
import type {Db, Queryable} from './types.js'

export interface Migration {
  version: number
  name: string
  sql: string
}

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))
/** Any constant: serialises concurrent migrators on one database. */
const MIGRATION_LOCK = 7_421_001
/**
 * Days of idempotency-key partitions kept ahead of today. Few on purpose: a key lookup probes every
 * partition (its day is not known), and a day without a partition lands in the default one anyway.
 */
export const PARTITION_DAYS_AHEAD = 2

/** The numbered migrations shipped with this build: 001_schema.sql → version 1. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number.parseInt(file, 10),
      name: file.replace(/^\d+_/, '').replace(/\.sql$/, ''),
      sql: readFileSync(new URL(file, `file://${dir}`), 'utf8'),
    }))
}

export function latestVersion(migrations = loadMigrations()): number {
  return migrations.at(-1)?.version ?? 0
}

/** Versions recorded as applied, ascending. */
async function appliedVersions(q: Queryable): Promise<number[]> {
  const {rows} = await q.query<{exists: boolean}>(`SELECT to_regclass('livedrop_schema') IS NOT NULL AS exists`)
  if (!rows[0].exists) return []
  const result = await q.query<{version: number}>('SELECT version FROM livedrop_schema ORDER BY version')
  return result.rows.map((r) => Number(r.version))
}

export interface SchemaState {
  current: number
  latest: number
  pending: number[]
}

export async function schemaState(db: Db): Promise<SchemaState> {
  const migrations = loadMigrations()
  const applied = await appliedVersions(db)
  // pending is by set, not by max: a lower-numbered migration merged later still gets applied
  return {
    current: applied.at(-1) ?? 0,
    latest: latestVersion(migrations),
    pending: migrations.filter((m) => !applied.includes(m.version)).map((m) => m.version),
  }
}

function tooNew(current: number, latest: number): SchemaTooNewError {
  return new SchemaTooNewError(`the database is at schema version ${current}, newer than this livedrop knows (${latest})`, {
    hint: 'Upgrade livedrop to the version that migrated this database, or use another database.',
  })
}

/** Applies pending migrations in one transaction under an advisory lock. Returns versions applied. */
export async function migrate(db: Db, now = new Date()): Promise<number[]> {
  const migrations = loadMigrations()
  const latest = latestVersion(migrations)
  const applied = await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await tx.exec(`CREATE TABLE IF NOT EXISTS livedrop_schema (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const applied = await appliedVersions(tx)
    const current = applied.at(-1) ?? 0
    if (current > latest) throw tooNew(current, latest)
    const done: number[] = []
    for (const m of migrations.filter((m) => !applied.includes(m.version))) {
      await tx.exec(m.sql)
      await tx.query('INSERT INTO livedrop_schema (version, name) VALUES ($1, $2)', [m.version, m.name])
      done.push(m.version)
    }
    return done
  })
  await ensureIdempotencyPartitions(db, now)
  return applied
}

/** Creates daily idempotency-key partitions from yesterday to PARTITION_DAYS_AHEAD ahead. */
export async function ensureIdempotencyPartitions(db: Queryable, now = new Date()): Promise<number> {
  const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10)
  const {rows} = await db.query<{created: number}>('SELECT livedrop_ensure_idempotency_partitions($1::date, $2) AS created', [
    yesterday,
    PARTITION_DAYS_AHEAD + 2,
  ])
  return Number(rows[0].created)
}

/** Refuses to work on a database that is not migrated to exactly this build's schema. */
export async function assertMigrated(db: Db): Promise<void> {
  const {current, latest, pending} = await schemaState(db)
  if (current > latest) throw tooNew(current, latest)
  if (pending.length > 0) {
    throw new SchemaNotMigratedError(`the database lacks migrations ${pending.join(', ')} (at version ${current}; this livedrop has ${latest}; ${db.label})`, {
      hint: 'Run `livedrop db migrate` first (add --db to pick the database).',
    })
  }
}

/** Every table of the schema, in an order that deletes safely (children first). */
export const TABLES = [
  'notifications',
  'outbox',
  'idempotency_keys',
  'orders',
  'drop_stock_buckets',
  'drops',
  'products',
  'follows',
  'creators',
  'users',
] as const

/** Drops everything livedrop created, then migrates afresh. */
export async function resetSchema(db: Db): Promise<number[]> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await tx.exec(`${TABLES.map((t) => `DROP TABLE IF EXISTS ${t} CASCADE;`).join('\n')}
      DROP TABLE IF EXISTS livedrop_dataset;
      DROP TABLE IF EXISTS livedrop_schema;
      DROP FUNCTION IF EXISTS livedrop_ensure_idempotency_partitions(date, integer);`)
  })
  return migrate(db)
}

/** Whether any livedrop table holds a row: one probe per table, not a count of millions. */
export async function holdsData(db: Db): Promise<boolean> {
  const {rows} = await db.query<{any: boolean}>(`SELECT ${TABLES.map((t) => `EXISTS (SELECT 1 FROM ${t})`).join(' OR ')} AS any`)
  return rows[0].any
}

export async function rowCounts(db: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const table of [...TABLES].reverse()) {
    const {rows} = await db.query<{n: number}>(`SELECT count(*)::bigint AS n FROM ${table}`)
    counts[table] = Number(rows[0].n)
  }
  return counts
}
