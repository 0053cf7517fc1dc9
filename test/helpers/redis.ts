import {Redis} from 'ioredis'
import {randomBytes} from 'node:crypto'
import {afterAll, beforeAll} from 'vitest'
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
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
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
