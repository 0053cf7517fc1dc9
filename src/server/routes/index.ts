import type {FastifyInstance} from 'fastify'
import type {AppContext} from '../app.js'
import {LiveEvents} from '../live-events.js'
import {eventRoutes} from './events.js'
import {followRoutes} from './follows.js'
import {notificationRoutes} from './notifications.js'
import {operatorRoutes} from './operator.js'
import {orderRoutes} from './orders.js'

export async function registerRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const live = new LiveEvents(ctx.engine.db, ctx.engine.redis)
  await live.start()
  const stopListening = ctx.engine.fanout?.onDelivered((d) => live.delivered(d))
  app.addHook('onClose', async () => {
    stopListening?.()
    await live.close()
  })

  await operatorRoutes(app, ctx)
  await followRoutes(app, ctx)
  await orderRoutes(app, ctx)
  await notificationRoutes(app, ctx)
  await eventRoutes(app, ctx, live)
}
