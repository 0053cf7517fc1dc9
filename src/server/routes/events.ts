import type {FastifyInstance} from 'fastify'
import type {AppContext} from '../app.js'
import type {LiveEvents, LiveMessage} from '../live-events.js'

/** Seconds between SSE comments that keep proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000

export async function eventRoutes(app: FastifyInstance, {metrics, requireUser}: AppContext, live: LiveEvents): Promise<void> {
  // streams never end by themselves: graceful shutdown ends them so in-flight requests can drain
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of open) end()
  })

  // EventSource cannot send headers: the stream alone takes the token as ?access_token=
  const query = {type: 'object', additionalProperties: false, properties: {access_token: {type: 'string'}}} as const
  app.get('/events', {onRequest: requireUser, schema: {querystring: query}}, (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no'})
    res.write(': connected\n\n')
    // an event can reach a user by pull and by push (opted in): send it once per stream
    const seen = new Set<number>()
    const send = (m: LiveMessage) => {
      if (seen.has(m.eventId)) return
      seen.add(m.eventId)
      if (seen.size > 1000) seen.delete(seen.values().next().value!)
      res.write(`id: ${m.eventId}\nevent: ${m.type}\ndata: ${JSON.stringify(m)}\n\n`)
    }
    const unsubscribe = live.subscribe(request.userId, send)
    metrics.sseClients.inc()
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS)
    const end = () => res.end()
    open.add(end)
    request.raw.on('close', () => {
      open.delete(end)
      clearInterval(heartbeat)
      unsubscribe()
      metrics.sseClients.dec()
    })
  })
}
