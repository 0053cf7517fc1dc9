import {STATUS_CODES} from 'node:http'
import type {Socket} from 'node:net'
import type {FastifyError, FastifyReply, FastifyRequest} from 'fastify'
import {LivedropError, ServiceUnreachableError, UsageError, describeError, isConnectionError} from '../core/errors.js'

/**
 * The one JSON error shape every route answers with: {"error": {"code", "message", "hint"?, "field"?}}.
 * `field` names the part of the request at fault: body.qty, querystring.cursor, headers.content-type,
 * url. Every error response carries the request id in X-Request-Id; a 5xx also in the body, and
 * the same id is in its log line.
 */
export function sendError(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  reply.header('x-request-id', reply.request.id)
  return reply.code(status).send({error: {code, message, ...extra, ...(status >= 500 ? {requestId: reply.request.id} : {})}})
}

/** Fastify's own request errors, as the API names them: [status, code, field, message]. */
const FRAMEWORK_ERRORS: Record<string, [number, string, string, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON', 'body', 'the body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'EMPTY_BODY', 'body', 'the body is empty but content-type says JSON'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'headers.content-type', 'send JSON with content-type: application/json'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE', 'body', 'request body is too large'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_CONTENT_LENGTH', 'headers.content-length', 'content-length does not match the body'],
  FST_ERR_BAD_URL: [400, 'BAD_URL', 'url', 'the URL is not valid percent-encoding'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'URL_TOO_LONG', 'url', 'a path segment of the URL is too long'],
}

/** Seconds a client waits before retrying after the database or Redis connection failed. */
const RETRY_AFTER_LOST_CONNECTION_SECONDS = 1

/** Maps every error to a status: domain errors carry theirs; framework errors are the client's fault. */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  let err = error
  if (!(err instanceof LivedropError) && isConnectionError(err)) {
    // a backend killed or unreachable mid-request: retry-safe (reads, follows and keyed orders)
    err = new ServiceUnreachableError(`the database or Redis connection failed: ${err.message}`, {
      hint: 'Retry after Retry-After seconds; a retry with the same Idempotency-Key is safe.',
      cause: err,
    })
  }
  if (err instanceof LivedropError) {
    const retryAfter = typeof err.details?.retryAfterSeconds === 'number' ? err.details.retryAfterSeconds : err instanceof ServiceUnreachableError ? RETRY_AFTER_LOST_CONNECTION_SECONDS : undefined
    if (retryAfter !== undefined) reply.header('retry-after', Math.ceil(retryAfter))
    if (err.httpStatus >= 500) request.log.error({err, route: request.routeOptions.url}, 'request failed')
    const field = err instanceof UsageError ? queryField(err.field, request) : undefined
    return sendError(reply, err.httpStatus, err.code, err.message, {...(err.hint ? {hint: err.hint} : {}), ...(field ? {field} : {})})
  }
  const fe = err as FastifyError
  if (fe.validation) {
    const first = fe.validation[0]
    const params = first?.params as {missingProperty?: string; additionalProperty?: string} | undefined
    const where = fe.validationContext ?? 'request'
    const path = first?.instancePath?.replace(/^\//, '').replaceAll('/', '.') || params?.missingProperty || params?.additionalProperty || ''
    const field = path ? `${where}.${path}` : where
    if (params?.additionalProperty) return sendError(reply, 400, 'UNKNOWN_FIELD', `${field} is not accepted here`, {field})
    return sendError(reply, 400, 'VALIDATION', `${field} ${first?.message ?? 'is invalid'}`, {field})
  }
  const known = fe.code ? FRAMEWORK_ERRORS[fe.code] : undefined
  if (known) return sendError(reply, known[0], known[1], known[3], {field: known[2]})
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return sendError(reply, fe.statusCode, 'BAD_REQUEST', fe.message, {field: 'request'})
  request.log.error({err, route: request.routeOptions.url}, 'unexpected error')
  return sendError(reply, 500, 'INTERNAL', describeError(err).message)
}

/** The core names an option (`cursor`, `limit`); the API names where it came from, as validation does. */
function queryField(field: string, request: FastifyRequest): string {
  return Object.hasOwn((request.query as object | undefined) ?? {}, field) ? `querystring.${field}` : field
}

/**
 * Errors Node's HTTP parser meets before there is a request (headers too large, a malformed
 * request line), answered in the API's shape instead of Node's empty 400/431.
 */
export function clientErrorHandler(err: Error & {code?: string}, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, field, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'headers', 'the request line and headers are larger than the server accepts']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'request', 'the request was not received in time']
        : [400, 'MALFORMED_REQUEST', 'request', 'the request is not valid HTTP/1.1']
  const body = JSON.stringify({error: {code, message, field}})
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}
