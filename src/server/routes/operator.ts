import type {FastifyInstance} from 'fastify'
import type {AppContext} from '../app.js'

export async function operatorRoutes(app: FastifyInstance, {engine, metrics, worker}: AppContext): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const health = await engine.health()
    // under `serve --workers N` the answer names the worker that gave it (slot and pid)
    return reply.code(health.ok ? 200 : 503).send(worker ? {...health, worker: worker.index, pid: worker.pid} : health)
  })

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}
