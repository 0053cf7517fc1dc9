import type {FastifyInstance} from 'fastify'
import {doesFollow, follow, listFollowers, listFollowing, unfollow} from '../../core/catalog/follows.js'
import type {AppContext} from '../app.js'
import {idParams, idString, int, pageQuery} from './schemas.js'

export async function followRoutes(app: FastifyInstance, {engine, requireUser}: AppContext): Promise<void> {
  const {db} = engine

  app.post<{Params: {id: string}; Body: {notify?: boolean} | undefined}>(
    '/creators/:id/follow',
    {
      onRequest: requireUser,
      schema: {params: idParams, body: {type: ['object', 'null'], additionalProperties: false, properties: {notify: {type: 'boolean'}}}},
    },
    async (request, reply) => {
      const result = await follow(db, request.userId, int(request.params.id)!, {notify: request.body?.notify})
      return reply.code(result.created ? 201 : 200).send(result)
    },
  )

  app.delete<{Params: {id: string}}>('/creators/:id/follow', {onRequest: requireUser, schema: {params: idParams}}, async (request) =>
    unfollow(db, request.userId, int(request.params.id)!),
  )

  app.get<{Params: {id: string}; Querystring: {cursor?: string; limit?: string}}>(
    '/creators/:id/followers',
    {schema: {params: idParams, querystring: pageQuery}},
    async (request) => listFollowers(db, int(request.params.id)!, {cursor: request.query.cursor, limit: int(request.query.limit)}),
  )

  app.get<{Querystring: {cursor?: string; limit?: string}}>('/me/following', {onRequest: requireUser, schema: {querystring: pageQuery}}, async (request) =>
    listFollowing(db, request.userId, {cursor: request.query.cursor, limit: int(request.query.limit)}),
  )

  app.get<{Params: {creatorId: string}}>(
    '/me/follows/:creatorId',
    {onRequest: requireUser, schema: {params: {type: 'object', required: ['creatorId'], additionalProperties: false, properties: {creatorId: idString}}}},
    async (request) => {
      const creatorId = int(request.params.creatorId)!
      return {creatorId, follows: await doesFollow(db, request.userId, creatorId)}
    },
  )
}
