import pg from 'pg'
import {Redis} from 'ioredis'
import type {TestProject} from 'vitest/node'
import {PostgresDb} from '../../src/core/db/postgres.js'
import {migrate} from '../../src/core/db/migrate.js'
import {ADMIN_DATABASE_URL, REDIS_URL, REQUIRE_SERVICES, TEMPLATE_DB, databaseUrl, type Services} from './env.js'

async function postgresUp(): Promise<boolean> {
  const client = new pg.Client({connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 3000})
  try {
    await client.connect()
  } catch {
    return false
  }
  try {
    // the template's name carries a hash of the migrations, so concurrent test runs share a fresh
    // one and a changed migration builds a new one; the lock keeps two runs from building it twice
    await client.query('SELECT pg_advisory_lock(7421002)')
    const {rowCount} = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DB])
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${TEMPLATE_DB}_building`).catch(async () => {
        await client.query(`DROP DATABASE ${TEMPLATE_DB}_building WITH (FORCE)`)
        await client.query(`CREATE DATABASE ${TEMPLATE_DB}_building`)
      })
      const db = new PostgresDb(databaseUrl(`${TEMPLATE_DB}_building`))
      await migrate(db)
      await db.close()
      await client.query(`ALTER DATABASE ${TEMPLATE_DB}_building RENAME TO ${TEMPLATE_DB}`)
    }
    // templates of earlier migrations are garbage; one still in use by another run stays (no FORCE)
    const {rows} = await client.query<{datname: string}>(`SELECT datname FROM pg_database WHERE datname LIKE 'livedrop\\_tpl\\_%' AND datname <> $1`, [TEMPLATE_DB])
    for (const {datname} of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => {})
    return true
  } finally {
    await client.query('SELECT pg_advisory_unlock(7421002)').catch(() => {})
    await client.end().catch(() => {})
  }
}

async function redisUp(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, {lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

/** Checks the services once, builds the migrated template database, and tells the test files. */
export default async function setup(project: TestProject): Promise<void> {
  const services: Services = {postgres: await postgresUp(), redis: await redisUp()}
  const missing = Object.entries(services).filter(([, up]) => !up).map(([name]) => name)
  if (missing.length > 0) {
    const message = `service-backed tests need ${missing.join(' and ')} (DATABASE_URL=${ADMIN_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}, REDIS_URL=${REDIS_URL})`
    if (REQUIRE_SERVICES) throw new Error(`LIVEDROP_REQUIRE_SERVICES=1 but ${message} and they are unreachable`)
    const bar = '!'.repeat(100)
    console.warn(`\n${bar}\n!! SKIPPING ${message}: unreachable.\n!! Start them, or set LIVEDROP_REQUIRE_SERVICES=1 to make this a failure.\n${bar}\n`)
  }
  project.provide('services', services)
}
