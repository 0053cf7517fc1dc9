import type {FastifyError, FastifyReply, FastifyRequest} from 'fastify'
import {LivedropError, UsageError, describeError} from '../core/errors.js'

/** The one JSON error shape every route answers with: {"error": {"code", "message", "hint"?, "field"?}}. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(status).send({error: {code, message, ...extra}})
}

/** Maps every error to a status: domain errors carry theirs; framework errors are the client's fault. */
export function errorHandler(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof LivedropError) {
    const field = err instanceof UsageError ? err.field : undefined
    if (err.details && typeof err.details.retryAfterSeconds === 'number') reply.header('retry-after', Math.ceil(err.details.retryAfterSeconds))
    if (err.httpStatus >= 500) request.log.error({err}, 'request failed')
    return sendError(reply, err.httpStatus, err.code, err.message, {...(err.hint ? {hint: err.hint} : {}), ...(field ? {field} : {})})
  }
  const fe = err as FastifyError
  if (fe.validation) {
    const first = fe.validation[0]
    const where = fe.validationContext ?? 'request'
    const path = first?.instancePath?.replace(/^\//, '').replaceAll('/', '.') || (first?.params as {missingProperty?: string; additionalProperty?: string} | undefined)?.missingProperty || (first?.params as {additionalProperty?: string} | undefined)?.additionalProperty || ''
    const field = path ? `${where}.${path}` : where
    return sendError(reply, 400, 'VALIDATION', `${field} ${first?.message ?? 'is invalid'}`, {field})
  }
  if (fe.statusCode === 413 || fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'BODY_TOO_LARGE', 'request body is too large')
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send JSON with content-type: application/json')
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return sendError(reply, fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message)
  request.log.error({err}, 'unexpected error')
  return sendError(reply, 500, 'INTERNAL', describeError(err).message)
}
