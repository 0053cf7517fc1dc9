import {inject} from 'vitest'
import {databaseUrlOn} from './services.js'

export {TEMPLATE_DB, REQUIRE_SERVICES} from './services.js'

/** The services global setup found or started (see global-setup.ts). */
export const services = inject('services')
export const ADMIN_DATABASE_URL = services.adminDatabaseUrl
export const REDIS_URL = services.redisUrl

/** The same server as ADMIN_DATABASE_URL, another database. */
export function databaseUrl(name: string): string {
  return databaseUrlOn(ADMIN_DATABASE_URL, name)
}
