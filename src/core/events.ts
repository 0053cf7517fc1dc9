import {EventEmitter} from 'node:events'

/**
 * In-process notice that something readers may have cached has changed. The engine's writers
 * (drops, products, orders) emit; the cache invalidates and the server's SSE streams listen.
 * Crossing processes is the cache's and fan-out's business (Redis pub/sub), not this emitter's.
 */
export type ChangeEvent =
  | {type: 'product'; productId: number; creatorId: number}
  | {type: 'drop'; dropId: number; productId: number; creatorId: number; status: DropStatus; reason: DropChangeReason}

export type DropStatus = 'scheduled' | 'live' | 'sold_out' | 'ended'
export type DropChangeReason = 'created' | 'started' | 'stock_low' | 'sold_out' | 'ended' | 'stock'

export class ChangeFeed {
  private readonly emitter = new EventEmitter()

  constructor() {
    this.emitter.setMaxListeners(0)
  }

  emit(event: ChangeEvent): void {
    this.emitter.emit('change', event)
  }

  /** Subscribes; returns the unsubscribe function. */
  on(listener: (event: ChangeEvent) => void): () => void {
    this.emitter.on('change', listener)
    return () => this.emitter.off('change', listener)
  }
}
