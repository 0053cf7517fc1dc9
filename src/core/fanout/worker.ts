import {EventEmitter} from 'node:events'
import {randomUUID} from 'node:crypto'
import {checkWholeNumber, isUniqueViolation, NotFoundError, throwUsageErrors, UsageError} from '../errors.js'
import type {Db, Queryable} from '../db/types.js'
import {LatencyHistogram, type LatencySummary} from '../histogram.js'
import {FANOUT_SQL as SQL} from './sql.js'

export type FanoutEventType = 'drop_started' | 'stock_low' | 'sold_out' | 'order_confirmed' | 'drop_ended'

/** One committed batch of notifications (or the moment an event became pull-delivered). */
export interface DeliveryEvent {
  eventId: number
  eventType: FanoutEventType
  dropId: number | null
  creatorId: number | null
  delivery: 'push' | 'pull'
  /** Rows that committed in this batch. */
  inserted: number
  /** Who got those rows; filled only when a listener asked for user ids (`collectUserIds`). */
  userIds: number[]
  /** The event is fully processed. */
  done: boolean
  /** Milliseconds from the event's creation to this batch's commit (database clock). */
  latencyMs: number
}

export interface FanoutHooks {
  /**
   * Awaited inside a page's transaction after its rows are inserted and before progress is
   * recorded and committed. Tests use it to kill the connection or throw mid-page.
   */
  inPage?: (page: {eventId: number; cursorUserId: number; inserted: number; owner: string}) => Promise<void> | void
}

export interface FanoutOptions {
  /** Concurrent workers (each claims its own events). Default 2. */
  workers?: number
  /** Followers per keyset page, one INSERT … SELECT each. Default 5,000. */
  pageSize?: number
  /** Creators with more followers than this get pull delivery. Default 10,000. */
  pullThreshold?: number
  /** How long a claim lasts without progress before another worker may take it over. Default 30,000 ms. */
  leaseMs?: number
  /** Order confirmations claimed and delivered per transaction. Default 200. */
  orderBatch?: number
  /** Idle wait before looking for work again. Default 100 ms (drain) / 100 ms (workers). */
  pollMs?: number
  /** Only this outbox event. */
  eventId?: number
  /** Only this drop's events. */
  dropId?: number
  /** Fill DeliveryEvent.userIds (costs a little per page). Default false. */
  collectUserIds?: boolean
  /** Called after every committed batch. */
  onDelivered?: (d: DeliveryEvent) => void
  /** Stops the workers (between pages; an open page's transaction still finishes). */
  signal?: AbortSignal
  /** Lease owner names are `<ownerPrefix>-w<N>`. Default a random id. */
  ownerPrefix?: string
  hooks?: FanoutHooks
}

export const FANOUT_DEFAULTS = {
  workers: 2,
  pageSize: 5000,
  pullThreshold: 10_000,
  leaseMs: 30_000,
  orderBatch: 200,
  pollMs: 100,
}

type Settings = typeof FANOUT_DEFAULTS

export function fanoutSettings(o: FanoutOptions): Settings {
  const s = {
    workers: o.workers ?? FANOUT_DEFAULTS.workers,
    pageSize: o.pageSize ?? FANOUT_DEFAULTS.pageSize,
    pullThreshold: o.pullThreshold ?? FANOUT_DEFAULTS.pullThreshold,
    leaseMs: o.leaseMs ?? FANOUT_DEFAULTS.leaseMs,
    orderBatch: o.orderBatch ?? FANOUT_DEFAULTS.orderBatch,
    pollMs: o.pollMs ?? FANOUT_DEFAULTS.pollMs,
  }
  const errors: UsageError[] = []
  const check = (field: string, v: number, min: number) => checkWholeNumber(errors, field, v, min)
  check('workers', s.workers, 1)
  check('pageSize', s.pageSize, 1)
  check('pullThreshold', s.pullThreshold, 0)
  check('leaseMs', s.leaseMs, 100)
  check('orderBatch', s.orderBatch, 1)
  check('pollMs', s.pollMs, 1)
  if (o.eventId !== undefined && o.dropId !== undefined) errors.push(new UsageError('eventId', 'cannot be combined with dropId'))
  throwUsageErrors(errors)
  return s
}

interface LockedEvent {
  id: number
  event_type: FanoutEventType
  drop_id: number | null
  creator_id: number | null
  created_at: Date
  delivery: 'push' | 'pull' | null
  cursor_user_id: number | null
  delivered: number
  lease_owner: string | null
  processed_at: Date | null
  follower_count: number | null
}

/** What one worker step did. */
interface Step {
  kind: 'idle' | 'follower' | 'orders'
  scanned: number
}

class Worker {
  /** Events whose pages use ON CONFLICT DO NOTHING after meeting an existing row. */
  private readonly conflictSafe = new Set<number>()

  constructor(
    private readonly db: Db,
    readonly owner: string,
    private readonly s: Settings,
    private readonly o: FanoutOptions,
    private readonly emit: (d: DeliveryEvent) => void,
    private readonly wantsUserIds: () => boolean,
  ) {}

  private get filter(): [number | null, number | null] {
    return [this.o.eventId ?? null, this.o.dropId ?? null]
  }

  /** Claims and delivers one follower event or one batch of order confirmations. */
  async step(): Promise<Step> {
    const follower = await this.db.query<{id: number}>(SQL.claimFollowerEvent, [...this.filter, this.owner, this.s.leaseMs])
    if (follower.rows.length > 0) return {kind: 'follower', scanned: await this.deliverFollowerEvent(follower.rows[0].id)}
    const orders = await this.db.query<{id: number}>(SQL.claimOrderEvents, [...this.filter, this.owner, this.s.leaseMs, this.s.orderBatch])
    if (orders.rows.length > 0) return {kind: 'orders', scanned: await this.deliverOrders(orders.rows.map((r) => r.id))}
    return {kind: 'idle', scanned: 0}
  }

  private async deliverOrders(ids: number[]): Promise<number> {
    const {rows} = await this.db.query<{id: number; event_type: FanoutEventType; drop_id: number | null; creator_id: number | null; user_id: number | null; inserted: number; latency_ms: number}>(
      SQL.deliverOrderEvents,
      [ids, this.owner],
    )
    for (const r of rows) {
      this.emit({
        eventId: r.id,
        eventType: r.event_type,
        dropId: r.drop_id,
        creatorId: r.creator_id,
        delivery: 'push',
        inserted: r.inserted,
        userIds: r.inserted > 0 && r.user_id !== null ? [r.user_id] : [],
        done: true,
        latencyMs: Number(r.latency_ms),
      })
    }
    return rows.length
  }

  /** Pages through the creator's followers, one transaction per page, until done or the lease is lost. */
  private async deliverFollowerEvent(eventId: number): Promise<number> {
    let scannedTotal = 0
    for (;;) {
      if (this.o.signal?.aborted) {
        // stopped between pages: hand the event back at once instead of when the lease expires
        await this.db.query(SQL.releaseLease, [eventId, this.owner])
        return scannedTotal
      }
      let page
      try {
        page = await this.db.transaction((tx) => this.page(tx, eventId))
      } catch (err) {
        if (!isUniqueViolation(err) || this.conflictSafe.has(eventId)) throw err
        // rows this page should not have met (a reset event, a hand-written row): redo it tolerantly
        this.conflictSafe.add(eventId)
        continue
      }
      scannedTotal += page.scanned
      if (page.delivery) this.emit(page.delivery)
      if (page.finished) return scannedTotal
    }
  }

  private async page(tx: Queryable, eventId: number): Promise<{finished: boolean; scanned: number; delivery?: DeliveryEvent}> {
    const {rows} = await tx.query<LockedEvent>(SQL.lockEvent, [eventId])
    const ev = rows[0]
    // processed meanwhile, or our lease expired and another worker took the event over
    if (!ev || ev.processed_at !== null || ev.lease_owner !== this.owner) return {finished: true, scanned: 0}
    const base = {eventId: ev.id, eventType: ev.event_type, dropId: ev.drop_id, creatorId: ev.creator_id}

    if (ev.creator_id === null) {
      // nobody to tell (a stock event of a drop without creator cannot exist; be safe anyway)
      const done = await tx.query<{latency_ms: number}>(SQL.recordProgress, [ev.id, null, 0, true, this.s.leaseMs])
      return {finished: true, scanned: 0, delivery: {...base, delivery: 'push', inserted: 0, userIds: [], done: true, latencyMs: Number(done.rows[0].latency_ms)}}
    }

    let delivery = ev.delivery
    let announcePull = false
    if (delivery === null) {
      // decided once and stored, so a takeover continues the same way
      delivery = Number(ev.follower_count ?? 0) > this.s.pullThreshold ? 'pull' : 'push'
      await tx.query(SQL.setDelivery, [ev.id, delivery, ev.creator_id])
      announcePull = delivery === 'pull'
    }

    const withUsers = this.wantsUserIds()
    const cursor = ev.cursor_user_id ?? 0
    const page = SQL.page[delivery]
    const bounds = await tx.query<{scanned: number; last_user_id: number | null}>(page.bounds, [ev.creator_id, cursor, this.s.pageSize])
    const {scanned, last_user_id: last} = bounds.rows[0]
    let inserted = 0
    let userIds: number[] = []
    if (last !== null) {
      const safe = this.conflictSafe.has(ev.id)
      const sql = safe ? (withUsers ? page.insertOnConflictUsers : page.insertOnConflict) : withUsers ? page.insertUsers : page.insert
      const result = await tx.query<{user_id: number}>(sql, [ev.creator_id, cursor, last, ev.id, ev.event_type, ev.drop_id, ev.created_at])
      inserted = result.rowCount
      if (withUsers) userIds = result.rows.map((r) => Number(r.user_id))
    }
    await this.o.hooks?.inPage?.({eventId: ev.id, cursorUserId: cursor, inserted, owner: this.owner})
    const finished = scanned < this.s.pageSize
    const progress = await tx.query<{latency_ms: number}>(SQL.recordProgress, [ev.id, last, inserted, finished, this.s.leaseMs])
    const latencyMs = Number(progress.rows[0].latency_ms)
    // a pull event is visible in every follower's feed from here on; tell listeners once
    const report = inserted > 0 || finished || announcePull
    return {finished, scanned, delivery: report ? {...base, delivery, inserted, userIds, done: finished, latencyMs} : undefined}
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, {once: true})
  })

export interface DrainProgress {
  /** Events finished. */
  events: number
  /** Events pending when the drain started (matching the filter). */
  eventsTotal: number
  /** Follows rows (plus order confirmations) walked so far. */
  scanned: number
  /** Estimate of what the drain walks: follower counts plus one per order confirmation. */
  scanTotal: number
  notifications: number
}

export interface DrainResult {
  events: number
  pushEvents: number
  pullEvents: number
  notifications: number
  seconds: number
  notificationsPerSecond: number
  /** From the start of the drain to the first / last notification row committed; null if none. */
  firstNotificationMs: number | null
  lastNotificationMs: number | null
  /** Event created → notification row committed, per row (database clock), in ms. */
  latency: LatencySummary
  /** Stopped by the signal before the outbox was drained. */
  aborted: boolean
}

/** Collects a drain's figures from delivery events. */
class DrainStats {
  readonly histogram = new LatencyHistogram()
  readonly started = performance.now()
  events = 0
  pushEvents = 0
  pullEvents = 0
  notifications = 0
  scanned = 0
  first: number | null = null
  last: number | null = null

  add(d: DeliveryEvent): void {
    if (d.inserted > 0) {
      const at = performance.now() - this.started
      this.first ??= at
      this.last = at
      this.notifications += d.inserted
      for (let i = 0; i < d.inserted; i++) this.histogram.recordMs(Math.max(0, d.latencyMs))
    }
    if (d.done) {
      this.events++
      if (d.delivery === 'pull') this.pullEvents++
      else this.pushEvents++
    }
  }

  result(aborted: boolean): DrainResult {
    const seconds = (performance.now() - this.started) / 1000
    return {
      events: this.events,
      pushEvents: this.pushEvents,
      pullEvents: this.pullEvents,
      notifications: this.notifications,
      seconds,
      notificationsPerSecond: seconds > 0 ? Math.round(this.notifications / seconds) : 0,
      firstNotificationMs: this.first,
      lastNotificationMs: this.last,
      latency: this.histogram.summary(),
      aborted,
    }
  }
}

function ownerPrefix(o: FanoutOptions): string {
  return o.ownerPrefix ?? `fanout-${randomUUID().slice(0, 8)}`
}

/**
 * Delivers every pending outbox event (matching eventId / dropId) and returns when none is left,
 * waiting for events other workers hold until they finish or their lease expires and is taken
 * over. The first error stops all workers and rejects once they have stopped.
 */
export async function drainOutbox(db: Db, options: FanoutOptions = {}, onProgress?: (p: DrainProgress) => void): Promise<DrainResult> {
  const s = fanoutSettings(options)
  const filter = [options.eventId ?? null, options.dropId ?? null]
  if (options.eventId !== undefined && (await db.query(SQL.eventExists, [options.eventId])).rows.length === 0) {
    throw new NotFoundError(`outbox event ${options.eventId} not found`, {hint: 'List events with `livedrop fanout status`.'})
  }
  if (options.dropId !== undefined && (await db.query(SQL.dropExists, [options.dropId])).rows.length === 0) {
    throw new NotFoundError(`drop ${options.dropId} not found`, {hint: 'Check the drop id.'})
  }
  const plan = (await db.query<{events: number; scan: number}>(SQL.plan, filter)).rows[0]
  const stats = new DrainStats()
  const stop = new AbortController()
  const onAbort = () => stop.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const progress = () =>
    onProgress?.({events: stats.events, eventsTotal: plan.events, scanned: stats.scanned, scanTotal: Number(plan.scan), notifications: stats.notifications})
  const emit = (d: DeliveryEvent) => {
    stats.add(d)
    options.onDelivered?.(d)
  }
  const prefix = ownerPrefix(options)
  let failure: unknown
  const loop = async (worker: Worker) => {
    while (!stop.signal.aborted) {
      const step = await worker.step()
      stats.scanned += step.scanned
      progress()
      if (step.kind !== 'idle') continue
      // nothing claimable: finished, or events are leased by workers that may yet fail
      if ((await db.query<{n: number}>(SQL.remaining, filter)).rows[0].n === 0) return
      await sleep(s.pollMs, stop.signal)
    }
  }
  const workers = Array.from({length: s.workers}, (_, i) => new Worker(db, `${prefix}-w${i}`, s, {...options, signal: stop.signal}, emit, () => options.collectUserIds === true))
  try {
    await Promise.all(
      workers.map((w) =>
        loop(w).catch((err) => {
          failure ??= err
          stop.abort()
        }),
      ),
    )
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
  if (failure !== undefined) throw failure
  progress()
  return stats.result(options.signal?.aborted === true)
}

export interface FanoutWorkersHandle {
  /** Subscribes to committed deliveries (e.g. to push SSE messages); returns the unsubscribe. */
  onDelivered(listener: (d: DeliveryEvent) => void): () => void
  /** Subscribes to errors the loop survived (it backs off and goes on). */
  onError(listener: (err: unknown) => void): () => void
  /** Looks for work now instead of after the idle wait (call after writing an event). */
  wake(): void
  /** Stops after the current page and resolves when every worker has stopped. */
  stop(): Promise<void>
  readonly owners: string[]
}

/**
 * Long-running fan-out workers (for `livedrop serve` or a standalone process): each claims events,
 * delivers them, and waits `pollMs` when idle. Errors (a lost connection, a failover) are reported
 * to onError listeners and retried after a back-off; leases let another process take over a
 * crashed one's events.
 */
export function startFanoutWorkers(db: Db, options: FanoutOptions = {}): FanoutWorkersHandle {
  const s = fanoutSettings(options)
  const events = new EventEmitter()
  events.setMaxListeners(0)
  if (options.onDelivered) events.on('delivered', options.onDelivered)
  const stop = new AbortController()
  options.signal?.addEventListener('abort', () => stop.abort(), {once: true})
  let wakeIdle = new AbortController()
  // bumped by wake(): a worker whose idle step overlapped a wake looks again instead of sleeping
  let generation = 0
  const prefix = ownerPrefix(options)
  const emit = (d: DeliveryEvent) => events.emit('delivered', d)
  const wantsUserIds = () => options.collectUserIds === true || events.listenerCount('delivered') > 0
  const workers = Array.from({length: s.workers}, (_, i) => new Worker(db, `${prefix}-w${i}`, s, {...options, signal: stop.signal}, emit, wantsUserIds))

  const loop = async (worker: Worker) => {
    let backoff = s.pollMs
    while (!stop.signal.aborted) {
      try {
        const seen = generation
        const step = await worker.step()
        backoff = s.pollMs
        // a part-full batch of order confirmations means caught up: wait, so that under a steady
        // stream of orders each claim takes a batch instead of a few events (3 statements each)
        const caughtUp = step.kind === 'idle' || (step.kind === 'orders' && step.scanned < s.orderBatch)
        if (!caughtUp || generation !== seen) continue
        await sleep(s.pollMs, AbortSignal.any([stop.signal, wakeIdle.signal]))
      } catch (err) {
        if (events.listenerCount('error') > 0) events.emit('error', err)
        await sleep(backoff, stop.signal)
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }
  const running = Promise.all(workers.map(loop))
  return {
    owners: workers.map((w) => w.owner),
    onDelivered(listener) {
      events.on('delivered', listener)
      return () => events.off('delivered', listener)
    },
    onError(listener) {
      events.on('error', listener)
      return () => events.off('error', listener)
    },
    wake() {
      generation++
      wakeIdle.abort()
      wakeIdle = new AbortController()
    },
    async stop() {
      stop.abort()
      await running
    },
  }
}
