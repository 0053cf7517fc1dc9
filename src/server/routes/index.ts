import type {FastifyInstance} from 'fastify'
import {fanoutBacklog} from '../../core/fanout/index.js'
import type {AppContext} from '../app.js'
import {LiveEvents} from '../live-events.js'
import {catalogRoutes} from './catalog.js'
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

  const {engine, metrics} = ctx
  metrics.gauge('livedrop_cache_events', 'Catalog cache counters of this process (hits, near hits, misses, coalesced, fallbacks, invalidations)', ['kind'], (set) => {
    const stats = engine.catalog.stats()
    for (const kind of ['hits', 'nearHits', 'misses', 'coalesced', 'fallbacks', 'invalidations'] as const) set({kind}, stats[kind])
  })
  metrics.gauge('livedrop_cache_hit_ratio', 'Catalog cache hits ÷ (hits + misses) in this process', [], (set) => set({}, engine.catalog.stats().hitRatio))
  metrics.gauge('livedrop_lock_waits', 'Backends waiting for a row or table lock right now (stock contention)', [], async (set) => {
    const {rows} = await engine.db.query<{n: number}>({name: 'metrics.lock_waits', text: 'SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted'})
    set({}, Number(rows[0].n))
  })
  metrics.gauge('livedrop_fanout_backlog_events', 'Outbox events not yet fully delivered', [], async (set) => {
    set({}, (await fanoutBacklog(engine.db)).pendingEvents)
  })
  metrics.gauge('livedrop_fanout_oldest_pending_seconds', 'Age of the oldest undelivered outbox event', [], async (set) => {
    set({}, (await fanoutBacklog(engine.db)).oldestPendingMs / 1000)
  })

  await operatorRoutes(app, ctx)
  await catalogRoutes(app, ctx)
  await followRoutes(app, ctx)
  await orderRoutes(app, ctx)
  await notificationRoutes(app, ctx)
  await eventRoutes(app, ctx, live)
}
