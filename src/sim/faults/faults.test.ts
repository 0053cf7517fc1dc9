import {describe, expect, it} from 'vitest'
import {checkFaultsPossible, FaultsSchema, runFault} from './index.js'

describe('the faults: list', () => {
  it('parses the issue example into milliseconds', () => {
    const faults = FaultsSchema.parse([
      {at: '25s', kind: 'kill-worker'},
      {at: '30s', kind: 'redis-restart'},
      {at: 35, kind: 'pg-terminate-backends'},
      {at: '40s', kind: 'cache-node-down', for: '5s'},
    ])
    expect(faults.map((f) => [f.at, f.kind, f.for])).toEqual([
      [25_000, 'kill-worker', undefined],
      [30_000, 'redis-restart', undefined],
      [35_000, 'pg-terminate-backends', undefined],
      [40_000, 'cache-node-down', 5_000],
    ])
  })

  it('refuses unknown kinds, bad durations, unknown fields and `for` on an instant fault, naming the path', () => {
    const r = FaultsSchema.safeParse([
      {at: '5s', kind: 'kill-everything'},
      {at: 'soon', kind: 'kill-worker'},
      {at: '5s', kind: 'kill-worker', for: '2s'},
      {at: '5s', kind: 'redis-restart', when: 'now'},
      {at: '5s', kind: 'cache-node-down', for: '0s'},
    ])
    expect(r.success).toBe(false)
    const paths = r.error!.issues.map((i) => i.path.join('.')).sort()
    expect(paths).toEqual(['0.kind', '1.at', '2.for', '3', '4.for'])
  })
})

describe('checkFaultsPossible', () => {
  const faults = FaultsSchema.parse([
    {at: '1s', kind: 'kill-worker', worker: 3},
    {at: '2s', kind: 'redis-restart'},
    {at: '3s', kind: 'pg-terminate-backends'},
    {at: '4s', kind: 'cache-node-down', node: 2},
    {at: '90s', kind: 'pg-terminate-backends'},
  ])

  it('names every fault the run cannot cause, all at once', () => {
    const errors = checkFaultsPossible(faults, {workers: 0, localRedis: false, localCacheNodes: 0, postgres: false, durationMs: 60_000})
    expect(errors.map((e) => e.field)).toEqual(['faults[0].kind', 'faults[1].kind', 'faults[2].kind', 'faults[3].kind', 'faults[4].at', 'faults[4].kind'])
    expect(errors.every((e) => e.exitCode === 2 && e.hint)).toBe(true)
    expect(errors[1].hint).toMatch(/engine\.redis: local/)
  })

  it('checks the worker and node numbers against what the run has', () => {
    const errors = checkFaultsPossible(faults, {workers: 2, localRedis: true, localCacheNodes: 1, postgres: true, durationMs: 120_000})
    expect(errors.map((e) => e.message)).toEqual([
      'faults[0].kind: kill-worker names worker 3, but the run has 2',
      'faults[3].kind: cache-node-down names cache node 2, but the run has 1',
    ])
    expect(checkFaultsPossible(faults, {workers: 3, localRedis: true, localCacheNodes: 2, postgres: true})).toEqual([])
  })
})

describe('runFault', () => {
  it('reports a fault the run ended before, and a missing part as an error, never throwing', async () => {
    const abort = new AbortController()
    const t0 = performance.now()
    const pending = runFault({at: 60_000, kind: 'kill-worker'}, {startedAt: t0, signal: abort.signal})
    abort.abort()
    expect(await pending).toMatchObject({kind: 'kill-worker', startedMs: null, endedMs: null, action: 'not caused: the run ended first'})

    const missing = await runFault({at: 0, kind: 'redis-restart'}, {startedAt: performance.now()})
    expect(missing.startedMs).not.toBeNull()
    expect(missing.endedMs).toBeNull()
    expect(missing.error).toMatch(/this run has no Redis started by livedrop/)
  })
})
