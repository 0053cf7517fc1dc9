import type {FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction} from 'fastify'
import {signCursor, verifyCursor} from '../core/catalog/cursor.js'

/**
 * Cursors the API hands out are signed with the server secret and bound to their listing: the
 * route, its path ids, its filters (every query parameter but cursor and limit) and the caller.
 * A cursor edited, forged, or taken from another listing, filter or user is refused (400
 * INVALID_CURSOR, field querystring.cursor). The core sees only the cursors it issued.
 */
export function signCursors(app: FastifyInstance, secret: string): void {
  // callback-style hooks (no promise per request); the check only on routes that take a cursor
  const verify = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const query = request.query as {cursor?: string}
    try {
      if (query.cursor) query.cursor = verifyCursor(query.cursor, secret, listing(request, request.routeOptions.url!))
    } catch (err) {
      return done(err as Error)
    }
    done()
  }
  app.addHook('onRoute', (route) => {
    const query = route.schema?.querystring as {properties?: Record<string, unknown>} | undefined
    if (query?.properties?.cursor) route.preHandler = [verify, ...(route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler])]
  })

  // only object payloads get here: a route answering with JSON text it made itself skips it
  app.addHook('preSerialization', (request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: Error | null, value?: unknown) => void) => {
    done(null, signed(request, payload))
  })

  function signed(request: FastifyRequest, payload: unknown): unknown {
    if (!isObject(payload)) return payload
    const url = request.routeOptions.url!
    if (typeof payload.nextCursor === 'string') return {...payload, nextCursor: signCursor(payload.nextCursor, secret, listing(request, url))}
    // a resource may embed the first page of a listing of its own: /creators/:id's `products`
    // pages on at /creators/:id/products (copies: the payload may be a cached object)
    let out = payload
    for (const key in payload) {
      const value = payload[key]
      if (isObject(value) && typeof value.nextCursor === 'string') {
        out = {...out, [key]: {...value, nextCursor: signCursor(value.nextCursor, secret, listing(request, `${url}/${key}`))}}
      }
    }
    return out
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** What a cursor is bound to. Example: '["/drops",{},[["status","live"]],0]'. */
function listing(request: FastifyRequest, url: string): string {
  const {cursor: _cursor, limit: _limit, ...filters} = request.query as Record<string, unknown>
  return JSON.stringify([url, request.params, Object.entries(filters).sort(), request.userId])
}
