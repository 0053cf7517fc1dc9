import type {FastifyInstance} from 'fastify'
import type {AppContext} from '../app.js'

export async function operatorRoutes(app: FastifyInstance, {engine, metrics}: AppContext): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const health = await engine.health()
    return reply.code(health.ok ? 200 : 503).send(health)
  })

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}
