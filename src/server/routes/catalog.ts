import type {FastifyInstance} from 'fastify'
import {listDrops} from '../../core/catalog/browse.js'
import {listCreatorProducts} from '../../core/catalog/products.js'
import {NotFoundError} from '../../core/errors.js'
import type {AppContext} from '../app.js'
import {idParams, int, pageQuery} from './schemas.js'

function found<T>(value: T | null, what: string): T {
  if (value === null) throw new NotFoundError(`${what} not found`)
  return value
}

/** Catalog reads, served through the consistent-hash cache (first pages of lists included). */
export async function catalogRoutes(app: FastifyInstance, {engine}: AppContext): Promise<void> {
  const {catalog, db} = engine
  type Id = {Params: {id: string}}

  app.get<Id>('/products/:id', {schema: {params: idParams}}, async (request) => found(await catalog.product(int(request.params.id)!), `product ${request.params.id}`))
  app.get<Id>('/drops/:id', {schema: {params: idParams}}, async (request) => found(await catalog.drop(int(request.params.id)!), `drop ${request.params.id}`))
  app.get<Id>('/drops/:id/stock', {schema: {params: idParams}}, async (request) => found(await catalog.dropStock(int(request.params.id)!), `drop ${request.params.id}`))
  app.get<Id>('/creators/:id', {schema: {params: idParams}}, async (request) => found(await catalog.creatorPage(int(request.params.id)!), `creator ${request.params.id}`))

  app.get<Id & {Querystring: {cursor?: string; limit?: string}}>('/creators/:id/products', {schema: {params: idParams, querystring: pageQuery}}, async (request) => {
    const creatorId = int(request.params.id)!
    const {cursor, limit} = request.query
    // the first page is the creator page's, which the cache holds; later pages go to the database
    if (!cursor && !limit) return found(await catalog.creatorPage(creatorId), `creator ${creatorId}`).products
    return listCreatorProducts(db, creatorId, {cursor, limit: int(limit)})
  })

  app.get<{Querystring: {status: 'upcoming' | 'live' | 'ended'; cursor?: string; limit?: string}}>(
    '/drops',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          // the default is filled in, so `/drops` and `/drops?status=live` are one listing for cursors
          properties: {...pageQuery.properties, status: {type: 'string', enum: ['upcoming', 'live', 'ended'], default: 'live'}},
        },
      },
    },
    async (request) => listDrops(db, {status: request.query.status, cursor: request.query.cursor, limit: int(request.query.limit)}),
  )
}
