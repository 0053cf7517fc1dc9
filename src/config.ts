import {existsSync} from 'node:fs'
import path from 'node:path'
import {UsageError, throwUsageErrors} from './core/errors.js'
import type {DbTarget} from './core/db/types.js'

/**
 * The one place configuration resolves: flags > environment > scenario file > defaults.
 *
 * Environment: DATABASE_URL (--db), REDIS_URL (--redis), LIVEDROP_CACHE (--cache),
 * LIVEDROP_SECRET (--secret), LIVEDROP_DATA_DIR (where the embedded Postgres lives; default
 * ./.livedrop).
 */
export interface ConfigInput {
  /** `memory` (a throwaway embedded Postgres), `embedded`, a directory for the embedded Postgres, or a postgres:// URL. */
  db?: string
  /** redis://host:port of the Redis used for gates, pub/sub and (by default) caching. */
  redis?: string
  /** Cache nodes: `memory[:N]`, `redis://a,redis://b` (ring), or `redis-cluster://h:7000`. */
  cache?: string
  /** Secret that signs bearer tokens; every serve process behind one balancer needs the same. */
  secret?: string
}

/** Used when no secret is configured: fine for local tests and scenario runs, never for production. */
export const DEV_SECRET = 'livedrop-dev-secret'

export interface ResolvedConfig {
  db: DbTarget
  /** Where the db choice came from, for status output. */
  dbSource: 'flag' | 'env' | 'scenario' | 'default'
  redisUrl: string | null
  cache: string
  secret: string
  /** True when the secret is the built-in development one. */
  devSecret: boolean
}

export interface Env {
  [name: string]: string | undefined
}

export const DEFAULT_DATA_DIR = '.livedrop'

export function parseDbTarget(value: string, cwd: string, field = '--db', dataDir = path.resolve(cwd, DEFAULT_DATA_DIR)): DbTarget {
  if (value === 'memory') return {kind: 'embedded', dir: null}
  if (value === 'embedded') return {kind: 'embedded', dir: dataDir}
  if (/^postgres(ql)?:\/\//.test(value)) {
    try {
      new URL(value)
    } catch {
      throw new UsageError(field, `not a valid URL`, {hint: 'Use postgres://user:password@host:5432/dbname.'})
    }
    return {kind: 'postgres', url: value}
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new UsageError(field, `unsupported database URL scheme in ${value.replace(/\/\/.*@/, '//***@')}`, {
      hint: 'Use postgres://…, `memory`, `embedded`, or a directory for the embedded database.',
    })
  }
  return {kind: 'embedded', dir: path.resolve(cwd, value)}
}

function checkRedisUrl(value: string, field: string): string {
  if (!/^rediss?:\/\/[^/]/.test(value)) {
    throw new UsageError(field, `expected redis://host:port, got ${value}`, {hint: 'Example: --redis redis://127.0.0.1:6379'})
  }
  return value
}

export function resolveConfig(flags: ConfigInput, env: Env, cwd: string, scenario: ConfigInput = {}): ResolvedConfig {
  const errors: UsageError[] = []
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch (err) {
      if (err instanceof UsageError) errors.push(err)
      else throw err
      return undefined
    }
  }

  const dataDir = env.LIVEDROP_DATA_DIR ? path.resolve(cwd, env.LIVEDROP_DATA_DIR) : path.resolve(cwd, DEFAULT_DATA_DIR)
  let db: DbTarget | undefined = {kind: 'embedded', dir: dataDir}
  let dbSource: ResolvedConfig['dbSource'] = 'default'
  if (flags.db !== undefined) [db, dbSource] = [attempt(() => parseDbTarget(flags.db!, cwd, '--db', dataDir)), 'flag']
  else if (env.DATABASE_URL) [db, dbSource] = [attempt(() => parseDbTarget(env.DATABASE_URL!, cwd, 'DATABASE_URL', dataDir)), 'env']
  else if (scenario.db !== undefined) [db, dbSource] = [attempt(() => parseDbTarget(scenario.db!, cwd, 'db', dataDir)), 'scenario']
  // `--db "$DATABASE_URL"` with the variable unset must not quietly mean a database in the current directory
  for (const name of ['db', 'redis', 'cache'] as const) if (flags[name] === '') errors.push(new UsageError(`--${name}`, 'is empty (an unset shell variable?)', {hint: `Give --${name} a value, or leave the flag out.`}))
  if (db?.kind === 'postgres') attempt(() => checkPostgresOptions(db!.url, {flag: '--db', env: 'DATABASE_URL', scenario: 'db', default: '--db'}[dbSource]))

  const redisRaw = flags.redis ?? env.REDIS_URL ?? scenario.redis
  const redisField = flags.redis !== undefined ? '--redis' : env.REDIS_URL ? 'REDIS_URL' : 'redis'
  const redisUrl = redisRaw ? attempt(() => checkRedisUrl(redisRaw, redisField)) ?? null : null

  const cache = flags.cache ?? env.LIVEDROP_CACHE ?? scenario.cache ?? 'memory'

  const secret = flags.secret ?? env.LIVEDROP_SECRET ?? DEV_SECRET
  if (secret.length < 8) {
    errors.push(new UsageError(flags.secret !== undefined ? '--secret' : 'LIVEDROP_SECRET', 'must be at least 8 characters', {hint: 'Use a long random one, e.g. --secret "$(openssl rand -hex 32)", the same for every serve process and scenario run.'}))
  }

  throwUsageErrors(errors)
  return {db: db!, dbSource, redisUrl, cache, secret, devSecret: secret === DEV_SECRET}
}

/** Connection settings node-postgres reads from a URL's query, and what each accepts (null: any text). */
const POSTGRES_URL_OPTIONS: Record<string, RegExp | null> = {
  sslmode: /^(disable|prefer|require|verify-ca|verify-full|no-verify)$/,
  // node-postgres reads ssl=false as a true string: 0 turns SSL off
  ssl: /^(true|0|1)$/,
  sslcert: null,
  sslkey: null,
  sslrootcert: null,
  host: null,
  port: /^\d{1,5}$/,
  user: null,
  password: null,
  application_name: null,
  fallback_application_name: null,
  options: null,
  client_encoding: null,
  connect_timeout: /^\d+$/,
  statement_timeout: /^\d+$/,
  lock_timeout: /^\d+$/,
  idle_in_transaction_session_timeout: /^\d+$/,
  query_timeout: /^\d+$/,
  keepalives: /^[01]$/,
  keepalives_idle: /^\d+$/,
}

/**
 * Refuses URL options node-postgres would ignore (a typo such as `sslmod=`) or misread (an unknown
 * sslmode turns SSL on; `statement_timeout=abc` fails at the first query), and SSL files that are
 * not there (read at connect time).
 */
function checkPostgresOptions(url: string, field: string): void {
  for (const [name, value] of new URL(url).searchParams) {
    const hint = `Options node-postgres reads: ${Object.keys(POSTGRES_URL_OPTIONS).join(', ')}; timeouts are whole milliseconds (connect_timeout: seconds).`
    if (!(name in POSTGRES_URL_OPTIONS)) throw new UsageError(field, `unknown connection option "${name}"`, {hint})
    const accepts = POSTGRES_URL_OPTIONS[name]
    if (accepts && !accepts.test(value)) throw new UsageError(field, `bad value for ${name}: "${value}"`, {hint})
    if (/^ssl(cert|key|rootcert)$/.test(name) && !existsSync(value)) throw new UsageError(field, `${name}: no such file ${value}`, {hint: 'Give the path of a PEM file that exists.'})
  }
}
