import type {FastifyInstance} from 'fastify'
import {MAX_ORDER_QTY, placeOrder} from '../../core/orders/place-order.js'
import {getOrderForUser, listUserOrders} from '../../core/orders/queries.js'
import {parseIdempotencyKey} from '../../core/orders/idempotency.js'
import {LivedropError} from '../../core/errors.js'
import type {AppContext} from '../app.js'
import {sendError} from '../errors.js'
import {idParams, int, pageQuery} from './schemas.js'

const orderBody = {
  type: 'object',
  required: ['dropId', 'qty'],
  additionalProperties: false,
  properties: {
    dropId: {type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER},
    qty: {type: 'integer', minimum: 1, maximum: MAX_ORDER_QTY},
    payload: {type: 'object', maxProperties: 32},
  },
} as const

export async function orderRoutes(app: FastifyInstance, {engine, metrics, requireUser}: AppContext): Promise<void> {
  app.post<{Body: {dropId: number; qty: number; payload?: Record<string, unknown>}}>(
    '/orders',
    {onRequest: requireUser, schema: {body: orderBody}},
    async (request, reply) => {
      const header = request.headers['idempotency-key']
      if (typeof header !== 'string' || header.trim() === '') {
        metrics.orders.inc({outcome: 'missing_key'})
        return sendError(reply, 400, 'IDEMPOTENCY_KEY_REQUIRED', 'the Idempotency-Key header is required', {
          field: 'headers.idempotency-key',
          hint: 'Send a unique key per order attempt (a quoted string, e.g. Idempotency-Key: "8e03978e-40d5") and reuse it for retries.',
        })
      }
      const parsed = parseIdempotencyKey(header)
      if ('error' in parsed) {
        metrics.orders.inc({outcome: 'invalid_key'})
        return sendError(reply, 400, 'IDEMPOTENCY_KEY_INVALID', `Idempotency-Key: ${parsed.error}`, {
          field: 'headers.idempotency-key',
          hint: 'Send 1–255 printable characters as a quoted string, e.g. Idempotency-Key: "8e03978e-40d5" (escape " and \\ with \\).',
        })
      }
      try {
        const result = await placeOrder(engine.deps, {userId: request.userId, dropId: request.body.dropId, qty: request.body.qty, idempotencyKey: parsed.key, payload: request.body.payload})
        metrics.orders.inc({outcome: result.replay ? 'replay' : result.outcome})
        if (result.replay) reply.header('idempotent-replayed', 'true')
        return reply.code(result.response.status).send(result.response.body)
      } catch (err) {
        metrics.orders.inc({outcome: err instanceof LivedropError ? err.code.toLowerCase() : 'error'})
        throw err
      }
    },
  )

  app.get<{Params: {id: string}}>('/orders/:id', {onRequest: requireUser, schema: {params: idParams}}, async (request) =>
    getOrderForUser(engine.db, request.userId, int(request.params.id)!),
  )

  app.get<{Querystring: {cursor?: string; limit?: string}}>('/me/orders', {onRequest: requireUser, schema: {querystring: pageQuery}}, async (request) =>
    listUserOrders(engine.db, request.userId, {cursor: request.query.cursor, limit: int(request.query.limit)}),
  )
}
