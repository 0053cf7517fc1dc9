import {describe, expect, it} from 'vitest'
import {UsageError} from '../errors.js'
import {createCacheNodes, parseCacheSpec} from './nodes.js'

describe('parseCacheSpec', () => {
  it('reads every documented form', () => {
    expect(parseCacheSpec('memory')).toEqual({kind: 'memory', nodes: 1})
    expect(parseCacheSpec('memory:4')).toEqual({kind: 'memory', nodes: 4})
    expect(parseCacheSpec('redis://h:6379,redis://h:6380')).toEqual({kind: 'redis', urls: ['redis://h:6379', 'redis://h:6380']})
    expect(parseCacheSpec('redis-cluster://h:7000')).toEqual({kind: 'redis-cluster', seeds: [{host: 'h', port: 7000}]})
    expect(parseCacheSpec('redis-cluster://a:7000,b:7001')).toEqual({kind: 'redis-cluster', seeds: [{host: 'a', port: 7000}, {host: 'b', port: 7001}]})
  })

  it('rejects bad values naming the field, with passwords hidden', () => {
    for (const bad of ['memcached://h', 'memory:0', 'memory:x', 'redis://h:1,redis://h:1', 'redis-cluster://h', 'redis://h,http://x']) {
      expect(() => parseCacheSpec(bad, 'LIVEDROP_CACHE')).toThrow(UsageError)
    }
    try {
      parseCacheSpec('mongodb://u:secret@h', '--cache')
    } catch (err) {
      expect((err as UsageError).message).toContain('--cache')
      expect((err as UsageError).message).not.toContain('secret')
    }
  })
})

describe('memory nodes', () => {
  it('route a key to the same node every time and to distinct nodes in failover order', async () => {
    const set = await createCacheNodes('memory:4')
    const route = set.route('p:1').map((n) => n.id)
    expect(new Set(route).size).toBe(4)
    expect(set.route('p:1').map((n) => n.id)).toEqual(route)
    await set.nodes[0].set('x:a', 'v', 50)
    expect(await set.nodes[0].get('x:a')).toBe('v')
    expect(await set.nodes[0].purge('x:')).toBe(1)
    expect(await set.nodes[0].get('x:a')).toBeNull()
    await set.nodes[1].set('x:b', 'v', 20)
    await new Promise((r) => setTimeout(r, 40))
    expect(await set.nodes[1].get('x:b')).toBeNull()
    await set.close()
  })
})
