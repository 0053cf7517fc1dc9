import {describe, expect, it} from 'vitest'
import {resolveConfig, parseDbTarget} from './config.js'
import {UsageError} from './core/errors.js'

describe('resolveConfig', () => {
  const cwd = '/work/x'

  it('defaults to the embedded database under ./.livedrop', () => {
    const c = resolveConfig({}, {}, cwd)
    expect(c.db).toEqual({kind: 'embedded', dir: '/work/x/.livedrop'})
    expect(c.dbSource).toBe('default')
    expect(c.redisUrl).toBeNull()
    expect(c.cache).toBe('memory')
  })

  it('takes flags over env over scenario', () => {
    const env = {DATABASE_URL: 'postgres://env@h/db', REDIS_URL: 'redis://env:6379'}
    const scenario = {db: 'memory', redis: 'redis://scenario:6379', cache: 'redis://s:1'}
    expect(resolveConfig({db: 'memory'}, env, cwd, scenario).db).toEqual({kind: 'embedded', dir: null})
    const fromEnv = resolveConfig({}, env, cwd, scenario)
    expect(fromEnv.db).toEqual({kind: 'postgres', url: 'postgres://env@h/db'})
    expect(fromEnv.dbSource).toBe('env')
    expect(fromEnv.redisUrl).toBe('redis://env:6379')
    expect(resolveConfig({}, {}, cwd, scenario).dbSource).toBe('scenario')
    expect(resolveConfig({cache: 'memory:4'}, {LIVEDROP_CACHE: 'redis://a:1'}, cwd, scenario).cache).toBe('memory:4')
  })

  it('reports every bad value at once, naming each field', () => {
    try {
      resolveConfig({db: 'mysql://u:pw@h/db', redis: 'localhost'}, {}, cwd)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError)
      expect((err as UsageError).field).toBe('--db, --redis')
      expect((err as Error).message).not.toContain('pw')
    }
  })

  it('parses a directory as an embedded database', () => {
    expect(parseDbTarget('./data', cwd)).toEqual({kind: 'embedded', dir: '/work/x/data'})
  })
})
