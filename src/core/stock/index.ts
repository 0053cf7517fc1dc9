import type {Queryable} from '../db/types.js'
import {UsageError} from '../errors.js'
import {buckets} from './buckets.js'
import {redisGate} from './redis-gate.js'
import {row} from './row.js'
import type {StockStrategy} from './types.js'

export type {Admission, ClaimedOrder, DropRef, OrderContext, Reconciled, StockStrategy} from './types.js'
export {DEFAULT_BUCKETS} from './buckets.js'

/** Every stock strategy by its name: a new strategy is one file in this folder and one line here. */
const REGISTRY = {
  row,
  buckets,
  'redis-gate': redisGate,
} satisfies Record<string, StockStrategy>

/** A strategy's name, as stored in drops.strategy. */
export type StockStrategyName = keyof typeof REGISTRY

/** The strategies' names, the default first. */
export const STOCK_STRATEGIES = Object.keys(REGISTRY) as StockStrategyName[]

export function isStockStrategy(name: string): name is StockStrategyName {
  return Object.hasOwn(REGISTRY, name)
}

/** The strategy of that name; a UsageError naming `field` for any other. */
export function strategyFor(name: string, field = 'strategy'): StockStrategy {
  if (!isStockStrategy(name)) throw new UsageError(field, `must be one of ${STOCK_STRATEGIES.join(', ')}, got ${name}`)
  return REGISTRY[name]
}

/**
 * Runs every strategy's fresh-order statement once on this connection, writing nothing. A backend
 * that has not run it yet parses, plans and loads the catalog for it on its first order: 6–10 ms
 * instead of 1–2, on every pooled connection at once when a drop opens (engine start calls this).
 */
export async function warmOrderStatements(session: Queryable): Promise<void> {
  for (const strategy of Object.values(REGISTRY)) await strategy.warmFresh(session)
}

/**
 * SQL for the authoritative units left of the drops row aliased `d`, whatever its strategy: each
 * strategy's own expression. Example: availableSql('d') in `SELECT ${availableSql('d')} AS available FROM drops d`.
 */
export function availableSql(d: string): string {
  const cases = Object.values(REGISTRY).map((s) => `WHEN '${s.name}' THEN ${s.available(d)}`)
  return `(CASE ${d}.strategy ${cases.join(' ')} END)::int`
}

const AVAILABLE = {name: 'stock.available', text: `SELECT ${availableSql('d')} AS available FROM drops d WHERE d.id = $1`}

/** The authoritative units left of a drop (see availableSql); null for an unknown drop. */
export async function availableStock(q: Queryable, dropId: number): Promise<number | null> {
  const {rows} = await q.query<{available: number}>(AVAILABLE, [dropId])
  return rows.length ? Number(rows[0].available) : null
}
