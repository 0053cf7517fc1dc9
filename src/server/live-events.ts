import cluster from 'node:cluster'
import type {Redis} from 'ioredis'
import type {Db} from '../core/db/types.js'
import type {DeliveryEvent} from '../core/fanout/index.js'
import {followersReached} from '../core/fanout/feed.js'

/** What an SSE client receives: one committed notification addressed to it. */
export interface LiveMessage {
  eventId: number
  type: string
  dropId: number | null
  creatorId: number | null
}

type Sender = (message: LiveMessage) => void

const CHANNEL = 'livedrop:live-events'

/** The IPC message that carries a delivery from a serve worker to its primary, and from there to every worker. */
export interface LiveRelayMessage {
  type: typeof LIVE_RELAY
  delivery: DeliveryEvent
}
export const LIVE_RELAY = 'livedrop:live'

/**
 * Routes committed fan-out deliveries to the users connected to this process. Deliveries travel
 * over Redis pub/sub when Redis is configured, so a worker in one serve process reaches a user
 * streaming from another. Without Redis, a worker of `serve --workers N` relays them through its
 * primary to every worker of that serve (not to other serve processes); a lone process keeps them.
 */
export class LiveEvents {
  private readonly streams = new Map<number, Set<Sender>>()
  /** Pull events already broadcast to this process's connected followers (bounded). */
  private readonly announced = new Set<number>()
  private subscriber: Redis | null = null
  /** Set when deliveries travel through the cluster primary (a worker without Redis). */
  private relay: ((message: unknown) => void) | null = null

  constructor(
    private readonly db: Db,
    private readonly publisher: Redis | null,
  ) {}

  /** Starts listening to other processes' deliveries (when Redis is configured). */
  async start(): Promise<void> {
    if (!this.publisher && cluster.isWorker) {
      this.relay = (message) => {
        if ((message as LiveRelayMessage | null)?.type === LIVE_RELAY) void this.dispatch((message as LiveRelayMessage).delivery).catch(() => {})
      }
      process.on('message', this.relay)
    }
    if (!this.publisher) return
    this.subscriber = this.publisher.duplicate()
    this.subscriber.on('error', () => {})
    await this.subscriber.subscribe(CHANNEL)
    this.subscriber.on('message', (_channel, raw) => {
      void this.dispatch(JSON.parse(raw) as DeliveryEvent).catch(() => {})
    })
  }

  /** Called for every delivery a local fan-out worker commits. */
  delivered(d: DeliveryEvent): void {
    if (this.publisher) void this.publisher.publish(CHANNEL, JSON.stringify(d)).catch(() => {})
    else if (this.relay) process.send?.({type: LIVE_RELAY, delivery: d} satisfies LiveRelayMessage, undefined, undefined, () => {})
    else void this.dispatch(d).catch(() => {})
  }

  subscribe(userId: number, send: Sender): () => void {
    let set = this.streams.get(userId)
    if (!set) this.streams.set(userId, (set = new Set()))
    set.add(send)
    return () => {
      set.delete(send)
      if (set.size === 0) this.streams.delete(userId)
    }
  }

  get clients(): number {
    let n = 0
    for (const set of this.streams.values()) n += set.size
    return n
  }

  private async dispatch(d: DeliveryEvent): Promise<void> {
    if (this.streams.size === 0) return
    const message: LiveMessage = {eventId: d.eventId, type: d.eventType, dropId: d.dropId, creatorId: d.creatorId}
    let users: number[]
    if (d.delivery === 'pull') {
      // a pull event reaches every follower at once: on its first delivery batch, ask which
      // connected users follow the creator; later batches only push to opted-in users already told
      if (d.creatorId === null || this.announced.has(d.eventId)) return
      this.announced.add(d.eventId)
      if (this.announced.size > 10_000) this.announced.delete(this.announced.values().next().value!)
      users = await followersReached(this.db, d.creatorId, [...this.streams.keys()], d.eventId)
    } else {
      users = d.userIds
    }
    for (const user of users) for (const send of this.streams.get(user) ?? []) send(message)
  }

  async close(): Promise<void> {
    if (this.relay) process.off('message', this.relay)
    this.subscriber?.disconnect()
    this.streams.clear()
  }
}
