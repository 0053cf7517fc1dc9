import {randomUUID} from 'node:crypto'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import Fastify, {type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction} from 'fastify'
import type {Engine} from '../core/engine.js'
import {DEFAULT_REDIS_PREFIX} from '../core/orders/deps.js'
import {AddressInUseError, AddressNotAvailableError, UsageError} from '../core/errors.js'
import {verifyToken} from '../core/tokens.js'
import {signCursors} from './cursors.js'
import {clientErrorHandler, errorHandler, sendError} from './errors.js'
import {ServerMetrics, type RequestTally} from './metrics.js'
import {RateLimiter, RedisRateLimiter, type Limiter} from './rate-limit.js'
import {registerRoutes} from './routes/index.js'
import {JSON_TYPE, noQuery} from './routes/schemas.js'

export interface ServerOptions {
  /** Secret that signs bearer tokens and cursors. */
  secret: string
  /** Requests per second per user (or per IP when anonymous). Default 200. */
  rateLimitPerSecond?: number
  /** Largest burst per user. Default 400. */
  rateLimitBurst?: number
  /**
   * Keep the rate-limit buckets in the engine's Redis, so every process and worker on it shares each
   * user's limit; ignored when the engine has no Redis. Default false: each process limits on its own.
   */
  rateLimitShared?: boolean
  /** Which worker of `serve --workers N` this is: /healthz and /metrics name it. Default: none (one process). */
  worker?: WorkerIdentity
  /** Largest request body in bytes. Default 16 KiB. */
  bodyLimit?: number
  /** Where errors (every 5xx, with its request id) are logged as JSON lines; false for nowhere. Default: stderr. */
  log?: {write(line: string): void} | false
}

/** A serve worker: its slot (1…N, kept across restarts) and its process id. */
export interface WorkerIdentity {
  index: number
  pid: number
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
  /** Set in a worker of `serve --workers N`. */
  worker?: WorkerIdentity
  /** Rejects the request with 401 unless a valid bearer token names a user. */
  requireUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

/** Builds the HTTP API over an engine. The caller listens and, on shutdown, closes app then engine. */
export async function buildServer(engine: Engine, options: ServerOptions): Promise<{app: FastifyInstance; metrics: ServerMetrics}> {
  const log = options.log ?? process.stderr
  // set below, once the limiter and metrics exist; answers nothing until then
  let fastRead: (req: IncomingMessage, res: ServerResponse) => boolean = () => false
  const app = Fastify({
    // node:http's server as fastify makes it, with the cached product read answered before
    // fastify's routing (see productFastPath); every other request goes to fastify as always
    serverFactory: (handler, opts) => {
      const server = createServer((req, res) => {
        if (!fastRead(req, res)) handler(req, res)
      })
      // what fastify sets on a server it makes itself (its defaults are filled in by now)
      const {keepAliveTimeout, requestTimeout, connectionTimeout} = opts as {keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number}
      server.keepAliveTimeout = keepAliveTimeout
      server.requestTimeout = requestTimeout
      server.setTimeout(connectionTimeout)
      return server
    },
    logger: log ? {level: 'error', stream: log} : false,
    // a request's logger is made when it first logs (a 5xx), not for every request (without a
    // logger fastify makes none)
    ...(log ? {childLoggerFactory: (logger, bindings, opts) => new LazyChildLogger(logger, bindings, opts) as unknown as FastifyBaseLogger} : {}),
    // unique across processes and restarts, so a reported id finds its log line
    genReqId: () => randomUUID(),
    bodyLimit: options.bodyLimit ?? 16 * 1024,
    // strict schemas: no coercion of bodies, no silently dropped fields
    ajv: {customOptions: {removeAdditional: false, coerceTypes: false, allErrors: false}},
    return503OnClosing: true,
    frameworkErrors: errorHandler,
    clientErrorHandler,
  })
  const metrics = new ServerMetrics(options.worker)
  app.addHook('onClose', async () => metrics.close())
  const [rate, burst] = [options.rateLimitPerSecond ?? 200, options.rateLimitBurst ?? 400]
  const limiter: Limiter = options.rateLimitShared && engine.redis ? new RedisRateLimiter(engine.redis, rate, burst, engine.deps.redisPrefix ?? DEFAULT_REDIS_PREFIX) : new RateLimiter(rate, burst)

  // every body is JSON: text/plain is refused (415) rather than parsed into a string
  app.removeContentTypeParser('text/plain')
  app.decorateRequest('userId', 0)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`, {field: 'url'}))
  // a route that declares no query parameters refuses any, so a typo or a token in the URL is not ignored
  app.addHook('onRoute', (route) => {
    route.schema = {...route.schema, querystring: route.schema?.querystring ?? noQuery}
  })

  // every answer, a 429 included, says which worker of `serve --workers N` gave it
  const servedBy = options.worker ? `${options.worker.index}/${options.worker.pid}` : null
  if (servedBy !== null) {
    app.addHook('onRequest', (_request, reply, done) => {
      reply.header('livedrop-worker', servedBy)
      done()
    })
  }
  // identify the caller early so the rate limit is per user; routes that need a user still check.
  // Callback-style hooks (not async): no promise per request on the path every request takes
  const limited = (wait: number, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (wait <= 0) return done()
    reply.header('retry-after', Math.max(1, Math.ceil(wait)))
    // a hook that answers does not call done()
    sendError(reply, 429, 'RATE_LIMITED', 'too many requests', {hint: `Retry after ${Math.ceil(wait)} s.`})
  }
  app.addHook('onRequest', (request, reply, done) => {
    const token = bearer(request)
    if (token) request.userId = verifyToken(token, options.secret) ?? 0
    // the fast path took this request's token already and handed it on
    const wait = (request.raw as TakenRequest)[TAKEN] ?? limiter.take(request.userId || request.ip)
    if (typeof wait === 'number') return limited(wait, reply, done)
    wait.then((w) => limited(w, reply, done), done)
  })
  app.addHook('onResponse', (request, reply, done) => {
    metrics.recordRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  // a Redis-shared limit answers later: then every request goes through fastify
  if (limiter instanceof RateLimiter) fastRead = productFastPath({engine, secret: options.secret, limiter, servedBy, closing: () => closing, tally: metrics.requestTally('/products/:id', 'GET', 200)})
  signCursors(app, options.secret)

  const requireUser = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.userId) {
      reply.header('www-authenticate', 'Bearer')
      await sendError(reply, 401, 'UNAUTHENTICATED', 'a valid, unexpired bearer token is required', {
        field: 'headers.authorization',
        hint: 'Send Authorization: Bearer <token>; tokens expire (default 24h): mint one with `livedrop token --user ID`.',
      })
    }
  }

  await registerRoutes(app, {engine, metrics, requireUser, worker: options.worker})
  return {app, metrics}
}

/** A request the fast path took a rate-limit token for and handed on to fastify: the wait it got. */
const TAKEN = Symbol('livedrop.rateLimitTaken')
type TakenRequest = IncomingMessage & {[TAKEN]?: number}

/** `GET /products/:id` exactly as the route accepts it: no query, the id as idParams allows. */
const PRODUCT_READ = /^\/products\/([1-9][0-9]{0,14})$/

/**
 * The hottest request, `GET /products/:id` held in this process's near cache, answered straight
 * from node:http: fastify's routing, request/reply objects and hook chain cost more than the rest
 * of the read. It does what the route and the hooks do for it — the caller's rate-limit token (per
 * user with a valid bearer token, else per IP), the worker header, the same body and headers, the
 * request metrics under the route's name — and hands everything else to fastify: another method
 * or path form, a query, a body, a product not in the near cache (or cached as missing: the 404
 * comes from the route), a request over its rate limit (fastify answers the 429 with the token
 * already taken), and every request once the server is closing (fastify answers 503).
 * Returns true when it answered.
 */
function productFastPath(o: {
  engine: Engine
  secret: string
  limiter: RateLimiter
  servedBy: string | null
  closing: () => boolean
  /** Where its answers are counted: the route's own series. */
  tally: RequestTally
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' || o.closing()) return false
    const m = PRODUCT_READ.exec(req.url!)
    if (m === null || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) return false
    const started = performance.now()
    const token = bearerFromHeader(req.headers.authorization)
    const user = token === null ? 0 : (verifyToken(token, o.secret) ?? 0)
    const wait = o.limiter.take(user || req.socket.remoteAddress!)
    const body = wait > 0 ? undefined : o.engine.catalog.peekProductBody(Number(m[1]))
    if (body === undefined) {
      ;(req as TakenRequest)[TAKEN] = wait
      return false
    }
    res.writeHead(200, o.servedBy === null ? {'content-type': JSON_TYPE, 'content-length': body.length} : {'content-type': JSON_TYPE, 'content-length': body.length, 'livedrop-worker': o.servedBy})
    res.end(body)
    o.tally.observe((performance.now() - started) / 1000)
    return true
  }
}

type ChildArgs = Parameters<FastifyBaseLogger['child']>

/**
 * A request's child logger, made on its first use: pino's child() serializes the bindings
 * ({reqId}) at once, a cost every request paid for a logger only a failing one writes to.
 */
class LazyChildLogger {
  private made: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: ChildArgs[0],
    private readonly opts: ChildArgs[1],
  ) {}

  private get real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.opts))
  }

  get level(): string {
    return this.made?.level ?? this.parent.level
  }

  /** A level the logger would not write (fastify's per-request info lines) makes no child. */
  private enabled(level: string): boolean {
    return this.made !== undefined || (this.parent as unknown as {isLevelEnabled(l: string): boolean}).isLevelEnabled(level)
  }

  set level(level: string) {
    this.real.level = level
  }

  fatal(...args: unknown[]): void {
    if (this.enabled('fatal')) (this.real.fatal as (...a: unknown[]) => void)(...args)
  }

  error(...args: unknown[]): void {
    if (this.enabled('error')) (this.real.error as (...a: unknown[]) => void)(...args)
  }

  warn(...args: unknown[]): void {
    if (this.enabled('warn')) (this.real.warn as (...a: unknown[]) => void)(...args)
  }

  info(...args: unknown[]): void {
    if (this.enabled('info')) (this.real.info as (...a: unknown[]) => void)(...args)
  }

  debug(...args: unknown[]): void {
    if (this.enabled('debug')) (this.real.debug as (...a: unknown[]) => void)(...args)
  }

  trace(...args: unknown[]): void {
    if (this.enabled('trace')) (this.real.trace as (...a: unknown[]) => void)(...args)
  }

  silent(...args: unknown[]): void {
    ;(this.real.silent as (...a: unknown[]) => void)(...args)
  }

  child(bindings: ChildArgs[0], opts?: ChildArgs[1]): FastifyBaseLogger {
    return this.real.child(bindings, opts)
  }

  isLevelEnabled(level: string): boolean {
    return (this.real as unknown as {isLevelEnabled(l: string): boolean}).isLevelEnabled(level)
  }
}

/**
 * The bearer token from the Authorization header (the scheme is case-insensitive, RFC 9110), or
 * from ?access_token= on the event stream alone: EventSource cannot send headers, and a token
 * in a URL must not authorize anything else (URLs end up in logs and histories).
 */
function bearer(request: FastifyRequest): string | null {
  const fromHeader = bearerFromHeader(request.headers.authorization)
  if (fromHeader !== null) return fromHeader
  if (request.method !== 'GET' || request.routeOptions.url !== '/events') return null
  const token = (request.query as {access_token?: unknown}).access_token
  return typeof token === 'string' ? token : null
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
function bearerFromHeader(header: string | undefined): string | null {
  return header === undefined ? null : (/^bearer +(\S+) *$/i.exec(header)?.[1] ?? null)
}

/** Why listening failed, by errno: a port in use or an address not on this machine is a flag to change. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') {
    return new AddressInUseError('--port', `${host}:${port} is already in use`, {hint: 'Pick another --port (0 picks a free one), or stop the process listening there (`ss -ltnp` shows it).', cause: err})
  }
  if (code === 'EACCES') return new UsageError('--port', `port ${port} needs privileges this process does not have`, {hint: 'Use a port above 1023, e.g. --port 8080.', cause: err})
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new AddressNotAvailableError('--host', `${host} is not an address of this machine`, {
      hint: 'Use 127.0.0.1 (this machine only), 0.0.0.0 (every interface), or an address `ip -brief addr` lists.',
      cause: err,
    })
  }
  return err
}
