import {describe, expect, it} from 'vitest'
import {UsageError} from '../errors.js'
import {STOCK_STRATEGIES, availableSql, isStockStrategy, strategyFor} from './index.js'

describe('stock strategy registry (pure)', () => {
  it('registers each strategy under its own name, row first (the default)', () => {
    expect(STOCK_STRATEGIES[0]).toBe('row')
    expect(STOCK_STRATEGIES).toEqual(expect.arrayContaining(['row', 'buckets', 'redis-gate']))
    for (const name of STOCK_STRATEGIES) expect(strategyFor(name).name).toBe(name)
  })

  it('refuses an unknown name as a usage error naming the field', () => {
    expect(isStockStrategy('nope')).toBe(false)
    expect(isStockStrategy('toString')).toBe(false)
    expect(() => strategyFor('nope', 'engine.strategy')).toThrow(UsageError)
    expect(() => strategyFor('nope', 'engine.strategy')).toThrow(/engine\.strategy: must be one of row, buckets, redis-gate, got nope/)
  })

  it("builds availability from every strategy's own expression", () => {
    const sql = availableSql('d')
    for (const name of STOCK_STRATEGIES) expect(sql).toContain(`WHEN '${name}' THEN ${strategyFor(name).available('d')}`)
    expect(strategyFor('row').available('d')).toBe('d.available')
  })
})
