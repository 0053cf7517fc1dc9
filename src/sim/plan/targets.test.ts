import {describe, expect, it} from 'vitest'
import {ScenarioInvalidError, UsageError} from '../../core/errors.js'
import {DEFAULT_TARGETS, parseTargets, resolveTargets, targetsFromFlags} from './targets.js'

describe('plan targets', () => {
  it('reads a file: durations, shares and numbers', () => {
    const t = parseTargets('readsPerSecond: 50000\nheadroom: 40%\nnotificationDeadline: 5s\nidempotencyRetention: 3d\nstrategy: buckets\n')
    expect(t).toMatchObject({readsPerSecond: 50_000, headroom: 0.4, notificationDeadlineMs: 5000, idempotencyRetentionMs: 3 * 86_400_000, strategy: 'buckets'})
  })

  it('names every bad field with file:line:column (exit 4)', () => {
    let err: unknown
    try {
      parseTargets('readsPerSecond: 100\nheadroom: 130%\nfollowers: 5\n', 'plan.yaml')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ScenarioInvalidError)
    const e = err as ScenarioInvalidError
    expect(e.exitCode).toBe(4)
    expect(e.message).toContain('plan.yaml:2:11 headroom:')
    expect(e.message).toContain('plan.yaml:3:1 followers: unknown field "followers"')
  })

  it('flags: numbers with separators, and a usage error naming the flag (exit 2)', () => {
    expect(targetsFromFlags({followers: '50,000,000', headroom: '25%', deadline: '3s'})).toMatchObject({celebrityFollowers: 50_000_000, headroom: 0.25, notificationDeadlineMs: 3000})
    let err: unknown
    try {
      targetsFromFlags({reads: '-5'})
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(2)
    expect((err as UsageError).message).toMatch(/^--reads: .*"-5"/)
  })

  it('flags over the file over the defaults', () => {
    const t = resolveTargets({readsPerSecond: 10, users: 5}, {readsPerSecond: 20})
    expect(t).toMatchObject({readsPerSecond: 20, users: 5, orderAttemptsPerSecond: DEFAULT_TARGETS.orderAttemptsPerSecond})
  })
})
