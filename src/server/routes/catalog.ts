import type {FastifyInstance, FastifyReply, FastifyRequest} from 'fastify'
import {listDrops} from '../../core/catalog/browse.js'
import {deleteProduct, listCreatorProducts, productOwner, updateProduct, type ProductPatch} from '../../core/catalog/products.js'
import {NotFoundError} from '../../core/errors.js'
import type {AppContext} from '../app.js'
import {sendError} from '../errors.js'
import {JSON_TYPE, idParams, int, pageQuery, productPatchBody} from './schemas.js'

function found<T>(value: T | null, what: string): T {
  if (value === null) throw new NotFoundError(`${what} not found`)
  return value
}

/** Catalog reads, served through the consistent-hash cache (first pages of lists included). */
export async function catalogRoutes(app: FastifyInstance, {engine, requireUser}: AppContext): Promise<void> {
  const {catalog, db} = engine
  type Id = {Params: {id: string}}

  /** 404 for no such (or a removed) product, 403 unless the caller is the user behind its creator; true when they may go on. */
  async function ownedByCaller(request: FastifyRequest, reply: FastifyReply, id: number): Promise<boolean> {
    const owner = await productOwner(db, id)
    if (owner === null) throw new NotFoundError(`product ${id} not found`, {hint: 'Check the product id; removed products are gone.', details: {productId: id}})
    if (owner === request.userId) return true
    await sendError(reply, 403, 'FORBIDDEN', `product ${id} belongs to another creator`, {hint: 'Only the creator who owns a product may edit or remove it: send their token.'})
    return false
  }

  // the core's update and delete emit the change that invalidates every cached copy (here and, through Redis, elsewhere)
  app.patch<Id & {Body: ProductPatch}>('/products/:id', {onRequest: requireUser, schema: {params: idParams, body: productPatchBody}}, async (request, reply) => {
    const id = int(request.params.id)!
    if (!(await ownedByCaller(request, reply, id))) return reply
    return updateProduct(engine.deps, id, request.body)
  })
  app.delete<Id>('/products/:id', {onRequest: requireUser, schema: {params: idParams}}, async (request, reply) => {
    const id = int(request.params.id)!
    if (!(await ownedByCaller(request, reply, id))) return reply
    return {...(await deleteProduct(engine.deps, id)), removed: true}
  })

  // the hottest reads answer with the cache's JSON text as is: fastify neither serializes it nor
  // runs preSerialization hooks over it (these bodies embed no cursor to sign)
  app.get<Id>('/products/:id', {schema: {params: idParams}}, async (request, reply) => {
    const json = found(await catalog.productJson(int(request.params.id)!), `product ${request.params.id}`)
    return reply.type(JSON_TYPE).send(json)
  })
  app.get<Id>('/drops/:id', {schema: {params: idParams}}, async (request, reply) => {
    const drop = found(await catalog.drop(int(request.params.id)!), `drop ${request.params.id}`)
    return reply.type(JSON_TYPE).send(JSON.stringify(drop))
  })
  app.get<Id>('/drops/:id/stock', {schema: {params: idParams}}, async (request, reply) => {
    const json = found(await catalog.dropStockJson(int(request.params.id)!), `drop ${request.params.id}`)
    return reply.type(JSON_TYPE).send(json)
  })
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
