import Fastify, {type FastifyInstance, type FastifyReply, type FastifyRequest} from 'fastify'
import type {Engine} from '../core/engine.js'
import {verifyToken} from './auth.js'
import {errorHandler, sendError} from './errors.js'
import {ServerMetrics} from './metrics.js'
import {RateLimiter} from './rate-limit.js'
import {registerRoutes} from './routes/index.js'

export interface ServerOptions {
  /** Secret that signs bearer tokens. */
  secret: string
  /** Requests per second per user (or per IP when anonymous). Default 200. */
  rateLimitPerSecond?: number
  /** Largest burst per user. Default 400. */
  rateLimitBurst?: number
  /** Largest request body in bytes. Default 16 KiB. */
  bodyLimit?: number
  /** Fastify's logger (pino) settings; false for none. Default false. */
  logger?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user, set by requireUser. */
    userId: number
  }
}

export interface AppContext {
  engine: Engine
  metrics: ServerMetrics
  /** Rejects the request with 401 unless a valid bearer token names a user. */
  requireUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

/** Builds the HTTP API over an engine. The caller listens and, on shutdown, closes app then engine. */
export async function buildServer(engine: Engine, options: ServerOptions): Promise<{app: FastifyInstance; metrics: ServerMetrics}> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 16 * 1024,
    // strict schemas: no coercion of bodies, no silently dropped fields
    ajv: {customOptions: {removeAdditional: false, coerceTypes: false, allErrors: false}},
    return503OnClosing: true,
  })
  const metrics = new ServerMetrics()
  app.addHook('onClose', async () => metrics.close())
  const limiter = new RateLimiter(options.rateLimitPerSecond ?? 200, options.rateLimitBurst ?? 400)

  app.decorateRequest('userId', 0)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`))

  // identify the caller early so the rate limit is per user; routes that need a user still check
  app.addHook('onRequest', async (request, reply) => {
    const token = bearer(request)
    if (token) request.userId = verifyToken(token, options.secret) ?? 0
    const wait = limiter.take(request.userId || request.ip)
    if (wait > 0) {
      reply.header('retry-after', Math.max(1, Math.ceil(wait)))
      return sendError(reply, 429, 'RATE_LIMITED', 'too many requests', {hint: `Retry after ${Math.ceil(wait)} s.`})
    }
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.requests.inc({route, method: request.method, status: String(reply.statusCode)})
    metrics.latency.observe({route, method: request.method}, reply.elapsedTime / 1000)
  })

  const requireUser = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.userId) {
      reply.header('www-authenticate', 'Bearer')
      await sendError(reply, 401, 'UNAUTHENTICATED', 'a valid bearer token is required', {hint: 'Send Authorization: Bearer <token> (mint one with `livedrop token --user ID`).'})
    }
  }

  await registerRoutes(app, {engine, metrics, requireUser})
  return {app, metrics}
}

/** The bearer token from the Authorization header, or from ?access_token= for EventSource clients. */
function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization
  if (header?.startsWith('Bearer ')) return header.slice(7).trim()
  const query = request.query as {access_token?: unknown} | undefined
  return typeof query?.access_token === 'string' ? query.access_token : null
}
