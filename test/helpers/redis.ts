import {Redis} from 'ioredis'
import {randomBytes} from 'node:crypto'
import {afterAll, beforeAll} from 'vitest'
import {scanKeys} from '../../src/core/redis.js'
import {REDIS_URL} from './env.js'

export {REDIS_URL}

/** A key prefix unique to this test file; every key it used is deleted afterwards. */
export function useRedisPrefix(): {readonly prefix: string; readonly client: Redis} {
  const prefix = `livedrop-test:${randomBytes(4).toString('hex')}:`
  let client: Redis | undefined
  beforeAll(() => {
    client = new Redis(REDIS_URL)
  })
  afterAll(async () => {
    if (!client) return
    await scanKeys(client, prefix, async (keys) => void (await client!.del(...keys)))
    client.disconnect()
  })
  return {
    prefix,
    get client() {
      if (!client) throw new Error('useRedisPrefix: the client opens in beforeAll')
      return client
    },
  }
}
