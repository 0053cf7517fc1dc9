import {describe, expect, it} from 'vitest'
import {
  cacheNodesForMemory,
  coreDemand,
  dailyRows,
  firstToBreak,
  hottestNodeShare,
  keyRetention,
  predictCapacity,
  sizeHotRow,
  sizePrimary,
  sizePushFanout,
  sizeServe,
  withHeadroom,
  zipfForHottestShare,
} from './formulas.js'

describe('plan formulas (hand-computed)', () => {
  it('coreDemand: Σ cost × rate ÷ 1000, a null cost with no traffic counts nothing', () => {
    // 0.5 × 1500 / 1000 + 2 × 150 / 1000 = 0.75 + 0.3
    expect(coreDemand({read: 0.5, order: 2, write: null}, {read: 1500, order: 150, write: 0})).toBeCloseTo(1.05, 10)
  })

  it('withHeadroom: demand ÷ (1 − headroom)', () => {
    expect(withHeadroom(1.4, 0.3)).toBeCloseTo(2, 10)
  })

  it('sizeServe: ⌈cores⌉ processes, ⌈processes ÷ cores per server⌉ + 1 machines', () => {
    // 7 ÷ 0.7 = 10 cores → 10 processes → ⌈10/8⌉ + 1 = 3 machines
    expect(sizeServe(7, 0.3, 8)).toEqual({coresNeeded: expect.closeTo(10, 10), processes: 10, servers: 3})
    // never fewer than one process
    expect(sizeServe(0, 0.3, 8)).toMatchObject({processes: 1, servers: 2})
  })

  it('sizePrimary: fits only within the largest primary', () => {
    expect(sizePrimary(3.5, 0.3, 64)).toEqual({coresNeeded: expect.closeTo(5, 10), cores: 5, fits: true})
    expect(sizePrimary(70, 0.3, 64)).toMatchObject({cores: 100, fits: false})
  })

  it('sizeHotRow: needed = orders ÷ (1 − headroom); buckets = ⌈needed ÷ per row⌉', () => {
    // 150 ÷ 0.75 = 200 needed; 200 ÷ 60 → 4 buckets
    expect(sizeHotRow(150, 60, 0.25)).toEqual({needed: 200, capped: true, buckets: 4})
    expect(sizeHotRow(150, 500, 0.25)).toEqual({needed: 200, capped: false, buckets: 1})
  })

  it('zipfForHottestShare: 1 ÷ Σ k^-s equals the share', () => {
    // two keys, s = 1: 1 ÷ (1 + 1/2) = 2/3
    expect(zipfForHottestShare(2, 2 / 3)).toBeCloseTo(1, 6)
    // three keys, s = 2: 1 ÷ (1 + 1/4 + 1/9) = 36/49
    expect(zipfForHottestShare(3, 36 / 49)).toBeCloseTo(2, 6)
    expect(zipfForHottestShare(100, 0.01)).toBe(0)
  })

  it('hottestNodeShare: hot key over its replicas plus the rest with the ring imbalance', () => {
    expect(hottestNodeShare(0.3, 3, 4, 1.1)).toBeCloseTo(0.1 + (0.7 * 1.1) / 4, 10)
    // replicas are capped by the node count
    expect(hottestNodeShare(0.5, 3, 2, 1)).toBeCloseTo(0.25 + 0.25, 10)
  })

  it('cacheNodesForMemory: ⌈keys × bytes ÷ (node bytes × fill)⌉', () => {
    // 10,000,000 × 300 B = 3e9 B; 2 GiB × 0.75 = 1,610,612,736 → 1.86 → 2
    expect(cacheNodesForMemory(10_000_000, 300, 2 * 1024 ** 3, 0.75)).toBe(2)
  })

  it('sizePushFanout: workers = ⌈followers ÷ (rows/s × deadline)⌉', () => {
    // 50M ÷ (100k × 2) = 250
    expect(sizePushFanout(50_000_000, 2, 100_000, 100)).toEqual({rowsPerSecond: 25_000_000, workers: 250, bytesPerEvent: 5_000_000_000})
    expect(sizePushFanout(50_000_000, 2, 100_000, null).bytesPerEvent).toBeNull()
  })

  it('dailyRows: orders, keys, outbox and notifications per day', () => {
    const t = {dropsPerDay: 100, stockPerDrop: 1000, attemptsPerOrder: 3, users: 1_000_000, followsPerUser: 10, creators: 2000, pullThreshold: 10_000}
    // orders = 100 × 1000 ÷ 2 = 50,000; average followers 1e6 × 10 ÷ 2000 = 5,000 (pushed)
    expect(dailyRows(t, 2)).toEqual({orders: 50_000, idempotency_keys: 150_000, outbox: 400 + 50_000, notifications: 50_000 + 100 * 3 * 5000})
    // above the pull threshold nothing is pushed to followers
    expect(dailyRows({...t, pullThreshold: 1000}, 2).notifications).toBe(50_000)
  })

  it('keyRetention: keys/day × (retention days + 1)', () => {
    expect(keyRetention(1000, 72 * 3_600_000)).toEqual({keysRetained: 4000, purgeEveryDays: 2, partitionsPerPurge: 2})
    // 25 h rounds up to 2 days
    expect(keyRetention(1000, 25 * 3_600_000).keysRetained).toBe(3000)
  })

  it('predictCapacity: one shared machine divides its cores by the total demand', () => {
    const costs = {server: {read: 1, order: 4, write: null}, database: {read: 0.5, order: 2, write: null}, generator: null}
    const mix = {read: 100, order: 50, write: 0}
    // server 0.1 + 0.2 = 0.3 cores, database 0.05 + 0.1 = 0.15; 2 cores ÷ 0.45
    const p = predictCapacity(costs, mix, 2)
    expect(p.scale).toBeCloseTo(2 / 0.45, 10)
    expect(p.reqPerSec).toBeCloseTo((2 / 0.45) * 150, 8)
    expect(p.limitedBy).toBe('machine')
    expect(p.demand).toEqual({server: expect.closeTo(0.3, 10), database: expect.closeTo(0.15, 10)})
  })

  it('predictCapacity: with cores per component the least cores ÷ demand limits', () => {
    const costs = {server: {read: 1, order: 4, write: null}, database: {read: 0.5, order: 2, write: null}}
    const p = predictCapacity(costs, {read: 100, order: 50, write: 0}, {server: 3, database: 1})
    // server 3 ÷ 0.3 = 10, database 1 ÷ 0.15 = 6.67
    expect(p.limitedBy).toBe('database')
    expect(p.scale).toBeCloseTo(1 / 0.15, 10)
  })

  it('firstToBreak: the component with the highest utilisation reaches 100% first', () => {
    expect(firstToBreak({serve: 0.5, postgres: 0.8, cache: 0})).toEqual({component: 'postgres', atLoad: 1.25})
    expect(firstToBreak({})).toBeNull()
  })
})
