/** How a drop's stock is taken; chosen per drop at creation. */
export type StockStrategy = 'row' | 'buckets' | 'redis-gate'

export const STOCK_STRATEGIES: readonly StockStrategy[] = ['row', 'buckets', 'redis-gate']

/** Buckets a `buckets` drop is split into unless told otherwise. */
export const DEFAULT_BUCKETS = 16
