import type {FastifyInstance} from 'fastify'
import {listNotifications} from '../../core/fanout/index.js'
import type {AppContext} from '../app.js'
import {int, pageQuery} from './schemas.js'

export async function notificationRoutes(app: FastifyInstance, {engine, requireUser}: AppContext): Promise<void> {
  app.get<{Querystring: {cursor?: string; limit?: string}}>('/me/notifications', {onRequest: requireUser, schema: {querystring: pageQuery}}, async (request) =>
    listNotifications(engine.db, request.userId, {cursor: request.query.cursor, limit: int(request.query.limit)}),
  )
}
