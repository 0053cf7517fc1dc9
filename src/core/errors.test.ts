import {describe, expect, it} from 'vitest'
import {ExitCode, ServiceUnreachableError, UsageError, describeError, isConnectionError, isRetryableSqlError, redactUrl} from './errors.js'

describe('errors', () => {
  it('hides passwords in URLs', () => {
    expect(redactUrl('postgres://root:s3cret@127.0.0.1:5432/test')).toBe('postgres://root:***@127.0.0.1:5432/test')
    expect(redactUrl('postgres://root@127.0.0.1/test')).toBe('postgres://root@127.0.0.1/test')
    expect(redactUrl('not a url://a:b@c')).not.toContain(':b@')
  })

  it('classifies driver errors by SQLSTATE and node codes, not message text', () => {
    expect(isRetryableSqlError({code: '40001'})).toBe(true)
    expect(isRetryableSqlError({code: '40P01'})).toBe(true)
    expect(isRetryableSqlError({code: '23505'})).toBe(false)
    expect(isConnectionError({code: '57P01'})).toBe(true)
    expect(isConnectionError({code: 'ECONNREFUSED'})).toBe(true)
    expect(isConnectionError({code: '23505'})).toBe(false)
  })

  it('maps classes to the exit-code table', () => {
    expect(new UsageError('--users', 'bad').exitCode).toBe(ExitCode.usage)
    expect(new ServiceUnreachableError('down').exitCode).toBe(3)
    expect(describeError(new Error('boom')).exitCode).toBe(1)
    expect(new UsageError('--users', 'must be positive').message).toBe('--users: must be positive')
  })
})
