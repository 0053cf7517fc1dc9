import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {userInfo} from 'node:os'
import pg from 'pg'
import {Redis} from 'ioredis'
import type {TestProject} from 'vitest/node'
import {openEmbedded, type EmbeddedCluster} from '../../src/core/db/embedded.js'
import {PostgresDb} from '../../src/core/db/postgres.js'
import {migrate} from '../../src/core/db/migrate.js'
import {DEFAULT_ADMIN_DATABASE_URL, DEFAULT_REDIS_URL, REQUIRE_SERVICES, TEMPLATE_DB, databaseUrlOn, type Services} from './services.js'
import {freePort} from '../../src/core/net.js'

/** What the tests need beyond npm: the command each one runs, and the Debian package that brings it. */
const TOOLS = [
  {command: 'chromium', pkg: 'chromium', why: 'renders the HTML report (test/report-html.test.ts)'},
  {command: 'promtool', pkg: 'prometheus', why: 'validates /metrics (test/server-api.test.ts)'},
  {command: 'redis-server', pkg: 'redis-server', why: 'the extra Redis servers the cache and fault tests start'},
]

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

/** Installs missing tools with apt when running as root; otherwise stops the run naming them. */
function ensureTools(): void {
  const missing = TOOLS.filter((t) => !onPath(t.command))
  if (missing.length === 0) return
  const pkgs = missing.map((t) => t.pkg)
  if (userInfo().uid === 0 && onPath('apt-get')) {
    process.stderr.write(`test setup: installing ${pkgs.join(', ')} with apt-get\n`)
    execFileSync('apt-get', ['update', '-qq'], {stdio: 'inherit'})
    execFileSync('apt-get', ['install', '-y', '-qq', ...pkgs], {stdio: 'inherit', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
    return
  }
  throw new Error(`the tests need ${missing.map((t) => `${t.command} (${t.why})`).join('; ')}: install ${pkgs.join(' ')} (e.g. sudo apt-get install ${pkgs.join(' ')})`)
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({connectionString: url, connectionTimeoutMillis: 3000})
  try {
    await client.connect()
    await client.end()
    return true
  } catch {
    return false
  }
}

/**
 * Builds the migrated template test databases are copied from. Its name carries a hash of the
 * migrations, so concurrent runs share a fresh one and a changed migration builds a new one; the
 * lock keeps two runs from building it twice.
 */
async function buildTemplate(adminUrl: string): Promise<void> {
  const client = new pg.Client({connectionString: adminUrl})
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock(7421002)')
    const {rowCount} = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DB])
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${TEMPLATE_DB}_building`).catch(async () => {
        await client.query(`DROP DATABASE ${TEMPLATE_DB}_building WITH (FORCE)`)
        await client.query(`CREATE DATABASE ${TEMPLATE_DB}_building`)
      })
      const db = new PostgresDb(databaseUrlOn(adminUrl, `${TEMPLATE_DB}_building`))
      await migrate(db)
      await db.close()
      await client.query(`ALTER DATABASE ${TEMPLATE_DB}_building RENAME TO ${TEMPLATE_DB}`)
    }
    // templates of earlier migrations are garbage; one still in use by another run stays (no FORCE)
    const {rows} = await client.query<{datname: string}>(`SELECT datname FROM pg_database WHERE datname LIKE 'livedrop\\_tpl\\_%' AND datname <> $1`, [TEMPLATE_DB])
    for (const {datname} of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => {})
  } finally {
    await client.query('SELECT pg_advisory_unlock(7421002)').catch(() => {})
    await client.end().catch(() => {})
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, {lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

function unreachable(what: string, url: string): Error {
  return new Error(`LIVEDROP_REQUIRE_SERVICES=1 but ${what} at ${url.replace(/:[^:@/]*@/, ':***@')} is unreachable: start it, or point ${what === 'Postgres' ? 'DATABASE_URL' : 'REDIS_URL'} at a running one`)
}

/**
 * Makes sure every service the tests use is there, and tells the test files where: the Postgres
 * and Redis at DATABASE_URL / REDIS_URL (default 127.0.0.1); where none answers, an embedded
 * Postgres and a redis-server of the suite's own, unless LIVEDROP_REQUIRE_SERVICES=1 (CI), where a
 * missing service fails the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureTools()
  let embedded: EmbeddedCluster | null = null
  let redisServer: ChildProcess | null = null

  let adminDatabaseUrl = DEFAULT_ADMIN_DATABASE_URL
  let postgresSource: Services['postgresSource'] = 'server'
  if (!(await postgresAnswers(adminDatabaseUrl))) {
    if (REQUIRE_SERVICES) throw unreachable('Postgres', adminDatabaseUrl)
    embedded = await openEmbedded(null, 'postgres')
    adminDatabaseUrl = embedded.url
    postgresSource = 'embedded'
  }
  let redisUrl = DEFAULT_REDIS_URL
  let redisSource: Services['redisSource'] = 'server'
  if (!(await redisAnswers(redisUrl))) {
    if (REQUIRE_SERVICES) throw unreachable('Redis', redisUrl)
    const port = await freePort()
    redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {stdio: 'ignore'})
    redisUrl = `redis://127.0.0.1:${port}`
    for (let i = 0; i < 100 && !(await redisAnswers(redisUrl)); i++) await new Promise((r) => setTimeout(r, 50))
    redisSource = 'started'
  }
  if (postgresSource !== 'server' || redisSource !== 'server') {
    process.stderr.write(`test setup: Postgres from the ${postgresSource === 'server' ? 'server at DATABASE_URL' : 'embedded package'}, Redis ${redisSource === 'server' ? 'at REDIS_URL' : `started at ${redisUrl}`}\n`)
  }
  await buildTemplate(adminDatabaseUrl)
  project.provide('services', {adminDatabaseUrl, postgresSource, redisUrl, redisSource})
  return async () => {
    redisServer?.kill('SIGTERM')
    await embedded?.release()
  }
}
