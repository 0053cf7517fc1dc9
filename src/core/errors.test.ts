import {describe, expect, it} from 'vitest'
import {DatabaseLoginError, ExitCode, ServiceUnreachableError, UsageError, describeError, isConnectionError, isRetryableSqlError, redactUrl, translateDriverError} from './errors.js'

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

  it('translates driver errors a user can act on by errno and SQLSTATE class, never by message', () => {
    // a Unix socket path that does not exist; EPIPE has a SQLSTATE's shape but is a node code
    expect(isConnectionError(Object.assign(new Error('x'), {code: 'ENOENT', syscall: 'connect'}))).toBe(true)
    expect(isConnectionError(Object.assign(new Error('x'), {code: 'ENOENT', syscall: 'open'}))).toBe(false)
    expect(isConnectionError({code: 'EPIPE'})).toBe(true)
    expect(translateDriverError(Object.assign(new Error('password authentication failed'), {code: '28P01'}))).toBeInstanceOf(DatabaseLoginError)
    expect(describeError(Object.assign(new Error('role "x" does not exist'), {code: '28000'}))).toMatchObject({code: 'DATABASE_LOGIN_REFUSED', exitCode: 2})
    expect(describeError(Object.assign(new Error('connect ECONNREFUSED'), {code: 'ECONNREFUSED'})).exitCode).toBe(3)
    const other = Object.assign(new Error('duplicate key'), {code: '23505'})
    expect(translateDriverError(other)).toBe(other)
    expect(describeError(new UsageError('--x', 'bad', {details: {a: 1}})).details).toEqual({field: '--x', a: 1})
  })
})
