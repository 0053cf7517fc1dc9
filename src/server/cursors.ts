import type {FastifyInstance, FastifyRequest} from 'fastify'
import {signCursor, verifyCursor} from '../core/catalog/cursor.js'

/**
 * Cursors the API hands out are signed with the server secret and bound to their listing: the
 * route, its path ids, its filters (every query parameter but cursor and limit) and the caller.
 * A cursor edited, forged, or taken from another listing, filter or user is refused (400
 * INVALID_CURSOR, field querystring.cursor). The core sees only the cursors it issued.
 */
export function signCursors(app: FastifyInstance, secret: string): void {
  app.addHook('preHandler', async (request) => {
    const query = request.query as {cursor?: string}
    if (query.cursor) query.cursor = verifyCursor(query.cursor, secret, listing(request, request.routeOptions.url!))
  })

  app.addHook('preSerialization', async (request: FastifyRequest, _reply, payload: unknown) => {
    if (!isObject(payload)) return payload
    const url = request.routeOptions.url!
    if (typeof payload.nextCursor === 'string') return {...payload, nextCursor: signCursor(payload.nextCursor, secret, listing(request, url))}
    // a resource may embed the first page of a listing of its own: /creators/:id's `products`
    // pages on at /creators/:id/products (copies: the payload may be a cached object)
    let signed = payload
    for (const [key, value] of Object.entries(payload)) {
      if (isObject(value) && typeof value.nextCursor === 'string') {
        signed = {...signed, [key]: {...value, nextCursor: signCursor(value.nextCursor, secret, listing(request, `${url}/${key}`))}}
      }
    }
    return signed
  })
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** What a cursor is bound to. Example: '["/drops",{},[["status","live"]],0]'. */
function listing(request: FastifyRequest, url: string): string {
  const {cursor: _cursor, limit: _limit, ...filters} = request.query as Record<string, unknown>
  return JSON.stringify([url, request.params, Object.entries(filters).sort(), request.userId])
}
