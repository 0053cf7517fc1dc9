/**
 * Every failure a user can act on: a class with a stable `code`, an exit code from the table in
 * DESIGN.md, an HTTP status for the server, and a hint saying how to fix it.
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  serviceUnreachable: 3,
  invalidScenario: 4,
  purgeIncomplete: 5,
  regression: 97,
  invariantViolated: 98,
  thresholdFailed: 99,
  voidRun: 100,
} as const

export interface ErrorOptions {
  hint?: string
  details?: Record<string, unknown>
  cause?: unknown
}

export class LivedropError extends Error {
  readonly code: string = 'INTERNAL'
  readonly exitCode: number = ExitCode.internal
  readonly httpStatus: number = 500
  readonly hint?: string
  readonly details?: Record<string, unknown>

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, {cause: options.cause})
    this.name = new.target.name
    this.hint = options.hint
    this.details = options.details
  }

  toJSON(): Record<string, unknown> {
    return {code: this.code, message: this.message, hint: this.hint, ...(this.details ? {details: this.details} : {})}
  }
}

// ---- usage and configuration (exit 2) ----

/** A flag, option or value is wrong; `field` names it. */
export class UsageError extends LivedropError {
  override readonly code: string = 'USAGE'
  override readonly exitCode: number = ExitCode.usage
  override readonly httpStatus: number = 400
  constructor(readonly field: string, message: string, options: ErrorOptions = {}) {
    super(`${field}: ${message}`, {...options, details: {field, ...options.details}})
  }
}

/** Collects a UsageError unless value is a whole number ≥ min (validation reports every field at once). */
export function checkWholeNumber(errors: UsageError[], field: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) errors.push(new UsageError(field, `must be a whole number ≥ ${min}, got ${value}`))
}

/** Throws all usage errors found at once: one as it is, several combined naming every field. */
export function throwUsageErrors(errors: UsageError[]): void {
  if (errors.length === 0) return
  if (errors.length === 1) throw errors[0]
  throw new UsageError(errors.map((e) => e.field).join(', '), errors.map((e) => e.message).join('; '), {
    hint: errors.map((e) => e.hint).filter(Boolean).join(' ') || undefined,
    details: {errors: errors.map((e) => e.toJSON())},
  })
}

/** `serve --port`: another process listens there (EADDRINUSE). */
export class AddressInUseError extends UsageError {
  override readonly code = 'ADDRESS_IN_USE'
}

/** `serve --host`: not an address of this machine (EADDRNOTAVAIL), or not one at all. */
export class AddressNotAvailableError extends UsageError {
  override readonly code = 'ADDRESS_NOT_AVAILABLE'
}

/** The database URL demands SSL (sslmode=require, ssl=true) of a server that does not offer it. */
export class SslNotSupportedError extends UsageError {
  override readonly code = 'SSL_NOT_SUPPORTED'
}

/** Postgres refused the login or the connection's settings (SQLSTATE class 28: user, password, pg_hba.conf). */
export class DatabaseLoginError extends UsageError {
  override readonly code = 'DATABASE_LOGIN_REFUSED'
}

/** The target deployment refused tokens signed with --secret (401): its secret is another one. */
export class SecretRejectedError extends UsageError {
  override readonly code = 'SECRET_REJECTED'
}

/** What was asked for does not fit this machine (memory or disk); details.estimate says how much it needs. */
export class TooLargeError extends UsageError {
  override readonly code = 'TOO_LARGE'
}

export class SchemaTooNewError extends LivedropError {
  override readonly code = 'SCHEMA_TOO_NEW'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 503
}

export class SchemaNotMigratedError extends LivedropError {
  override readonly code = 'SCHEMA_NOT_MIGRATED'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 503
}

export class NotEmptyError extends LivedropError {
  override readonly code = 'DATABASE_NOT_EMPTY'
  override readonly exitCode = ExitCode.usage
}

export class ConfirmationRequiredError extends LivedropError {
  override readonly code = 'CONFIRMATION_REQUIRED'
  override readonly exitCode = ExitCode.usage
}

export class NotFoundError extends LivedropError {
  override readonly code: string = 'NOT_FOUND'
  override readonly exitCode: number = ExitCode.usage
  override readonly httpStatus: number = 404
}

/** The user an order names is not in the database (a token minted for an id that was never seeded). */
export class UserNotFoundError extends NotFoundError {
  override readonly code = 'USER_NOT_FOUND'
}

// ---- services (exit 3) ----

export class ServiceUnreachableError extends LivedropError {
  override readonly code = 'SERVICE_UNREACHABLE'
  override readonly exitCode = ExitCode.serviceUnreachable
  override readonly httpStatus = 503
}

/** The connection to Postgres broke under a statement: its transaction rolled back unless it had already committed. */
export class ConnectionLostError extends LivedropError {
  override readonly code = 'CONNECTION_LOST'
  override readonly exitCode = ExitCode.serviceUnreachable
  override readonly httpStatus = 503
}

// ---- scenario files (exit 4) ----

export class ScenarioInvalidError extends LivedropError {
  override readonly code = 'SCENARIO_INVALID'
  override readonly exitCode = ExitCode.invalidScenario
}

// ---- run verdicts ----

export class PurgeIncompleteError extends LivedropError {
  override readonly code = 'PURGE_INCOMPLETE'
  override readonly exitCode = ExitCode.purgeIncomplete
}

export class RegressionError extends LivedropError {
  override readonly code = 'REGRESSION'
  override readonly exitCode = ExitCode.regression
}

export class InvariantViolatedError extends LivedropError {
  override readonly code = 'INVARIANT_VIOLATED'
  override readonly exitCode = ExitCode.invariantViolated
}

export class ThresholdFailedError extends LivedropError {
  override readonly code = 'THRESHOLD_FAILED'
  override readonly exitCode = ExitCode.thresholdFailed
}

export class VoidRunError extends LivedropError {
  override readonly code = 'VOID_RUN'
  override readonly exitCode = ExitCode.voidRun
}

// ---- Postgres driver errors, translated at the core boundary by SQLSTATE ----

/** SQLSTATEs after which the whole transaction may be retried as it was. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01'])
/**
 * The connection was cut or never made: SQLSTATE class 08 (connection exception) and the server
 * going away (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now). A transaction
 * cut so rolled back unless it had already committed.
 */
const CONNECTION_SQLSTATE_CLASS = '08'
const SHUTDOWN_SQLSTATES = new Set(['57P01', '57P02', '57P03'])
/** Node's socket errors (errno codes) for a peer that is not there or went away. */
const CONNECTION_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE'])

export function sqlState(err: unknown): string | undefined {
  const code = (err as {code?: unknown} | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

export function isRetryableSqlError(err: unknown): boolean {
  const state = sqlState(err)
  return state !== undefined && RETRYABLE_SQLSTATES.has(state)
}

/** A connection failure, decided by the error's code: a Node socket errno, or a SQLSTATE (class 08, 57P01-03). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof ConnectionLostError) return true
  const {code, syscall} = (err ?? {}) as {code?: unknown; syscall?: unknown}
  // node codes first: EPIPE has the shape of a SQLSTATE
  if (typeof code === 'string' && CONNECTION_NODE_CODES.has(code)) return true
  // a Unix-socket path that does not exist (postgres://…?host=/no/such/dir)
  if (code === 'ENOENT' && syscall === 'connect') return true
  const state = sqlState(err)
  return state !== undefined && (state.startsWith(CONNECTION_SQLSTATE_CLASS) || SHUTDOWN_SQLSTATES.has(state))
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (sqlState(err) !== '23505') return false
  return constraint === undefined || (err as {constraint?: string}).constraint === constraint
}

/**
 * Driver errors a user can act on that reach the command line untranslated, by SQLSTATE or errno
 * (the core translates connection failures itself); anything else is returned as it is.
 */
export function translateDriverError(err: unknown): unknown {
  if (err instanceof LivedropError) return err
  if (isConnectionError(err)) {
    return new ServiceUnreachableError(`cannot connect: ${(err as Error).message}`, {hint: 'Start the service, or check the address in --db / DATABASE_URL or --redis / REDIS_URL.', cause: err})
  }
  // class 28 (invalid authorization): only a login raises it
  if (sqlState(err)?.startsWith('28')) {
    return new DatabaseLoginError('--db', `Postgres refused the login (SQLSTATE ${sqlState(err)}): ${(err as Error).message}`, {
      hint: "Check the user and password in --db / DATABASE_URL; the server's pg_hba.conf decides who may connect from where.",
      cause: err,
    })
  }
  return err
}

/** Hides the password of a connection URL: postgres://u:secret@h/db → postgres://u:***@h/db. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')
  }
}

/** The short, user-facing form of any error: code, message, hint, exit code (driver errors translated first). */
export function describeError(error: unknown): {code: string; message: string; hint?: string; exitCode: number; details?: Record<string, unknown>} {
  const err = translateDriverError(error)
  if (err instanceof LivedropError) return {code: err.code, message: err.message, hint: err.hint, exitCode: err.exitCode, ...(err.details ? {details: err.details} : {})}
  const message = err instanceof Error ? err.message : String(err)
  return {code: 'INTERNAL', message, hint: 'This is a bug in livedrop; please report it with the command you ran.', exitCode: ExitCode.internal}
}

// ---- drop engine: drops and orders (HTTP status is what the server answers) ----

/** The drop is not live (scheduled or ended): orders are refused, nothing is stored. */
export class DropNotLiveError extends LivedropError {
  override readonly code = 'DROP_NOT_LIVE'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 409
}

/** A lifecycle change the drop's status does not allow (status only moves forward). */
export class DropStateError extends LivedropError {
  override readonly code = 'DROP_STATE'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 409
}

export class InvalidQuantityError extends LivedropError {
  override readonly code = 'INVALID_QUANTITY'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 400
}

/** The Idempotency-Key was first used with a different request (IETF draft: 422). */
export class KeyReusedWithDifferentRequestError extends LivedropError {
  override readonly code = 'KEY_REUSED_WITH_DIFFERENT_REQUEST'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 422
}

/** The first request with this key is still being processed; details.retryAfterSeconds says when to retry. */
export class RequestInFlightError extends LivedropError {
  override readonly code = 'REQUEST_IN_FLIGHT'
  override readonly exitCode = ExitCode.usage
  override readonly httpStatus = 409
}

/** An error described by another thread or process (code, message, hint, exit code), raised here as it was. */
export class RelayedError extends LivedropError {
  override readonly code: string
  override readonly exitCode: number
  constructor(info: {code: string; message: string; hint?: string; exitCode: number}) {
    super(info.message, {hint: info.hint})
    this.code = info.code
    this.exitCode = info.exitCode
  }
}

// ---- idempotency purge ----

/** Another purge holds the purge lock; run again later (exit 5, like a purge stopped with work left). */
export class PurgeLockedError extends LivedropError {
  override readonly code = 'PURGE_LOCKED'
  override readonly exitCode = ExitCode.purgeIncomplete
  override readonly httpStatus = 409
}
