import {describe, expect, it} from 'vitest'
import {checkSeedFits, estimateSeed} from '../src/core/catalog/seed.js'
import {TooLargeError} from '../src/core/errors.js'

describe('seed estimate (livedrop seed refuses what cannot fit, before writing)', () => {
  it('is close to what Postgres 15 took for a measured seed (150 MB for 300,000 users and 628,000 follows)', () => {
    const e = estimateSeed({users: 300_000, creators: 2000, celebrities: 2, celebrityFollowers: 300_000, productsPerCreator: 20})
    expect(e.rows).toMatchObject({users: 300_001, creators: 2000, products: 40_000})
    expect(e.rows.follows).toBeGreaterThan(600_000)
    expect(e.diskBytes / 150e6).toBeGreaterThan(0.9)
    expect(e.diskBytes / 150e6).toBeLessThan(1.6)
  })

  it('names the flag most of the need is for, with the estimate in the message and details', () => {
    const e = estimateSeed({users: 1000, creators: 10, celebrities: 1, celebrityFollowers: 50_000_000, productsPerCreator: 3})
    expect(e.diskFlag).toBe('--celebrity-followers')
    let err: unknown
    try {
      checkSeedFits(e, {memoryBytes: 16 * 2 ** 30, freeDiskBytes: 2 ** 30, diskWhere: '/data'})
    } catch (x) {
      err = x
    }
    expect(err).toBeInstanceOf(TooLargeError)
    expect((err as TooLargeError).exitCode).toBe(2)
    expect((err as Error).message).toMatch(/^--celebrity-followers: the seed needs about \d+\.\d GiB of disk \(50,000,001 users, .*\); \/data has 1\.0 GiB free$/)
    expect((err as TooLargeError).details).toMatchObject({estimate: {rows: {users: 50_000_001}}})
    expect(() => checkSeedFits(estimateSeed({users: 1000, creators: 20, celebrities: 1, celebrityFollowers: 500, productsPerCreator: 3}), {memoryBytes: 2 ** 30, freeDiskBytes: 2 ** 30})).not.toThrow()
  })
})
