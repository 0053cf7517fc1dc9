import {Client, type Dispatcher} from 'undici'
import {Fifo} from './fifo.js'

/**
 * One request on the wire, as undici's callback handler (Client.dispatch takes it as is: no
 * per-response header parsing, no promise, no stream). The run loop subclasses it with what it
 * records: one object per request, no closures.
 */
export abstract class Exchange implements Dispatcher.DispatchHandler {
  status = 0
  /** The body's chunks, collected only when `wantsBody` said so. */
  chunks: Buffer[] | null = null
  /** Set by Connections.dispatch. */
  connections: Connections | null = null
  client: Client | null = null

  /** Called once the status is known: should the body be kept? */
  protected abstract wantsBody(status: number): boolean
  /** The answer is complete (err null) or failed; the connection is free again by now. */
  protected abstract finished(err: Error | null): void

  /** The body as text ('' when it was not kept). */
  body(): string {
    return this.chunks ? Buffer.concat(this.chunks).toString('utf8') : ''
  }

  onConnect(): void {}

  onHeaders(statusCode: number): boolean {
    this.status = statusCode
    if (this.chunks === null && this.wantsBody(statusCode)) this.chunks = []
    return true
  }

  onData(chunk: Buffer): boolean {
    this.chunks?.push(chunk)
    return true
  }

  onComplete(): void {
    this.connections!.release(this.client!)
    this.finished(null)
  }

  onError(err: Error): void {
    this.connections!.release(this.client!)
    this.finished(err)
  }
}

export interface ConnectionOptions {
  /** Headers and body timeout of each request, ms. */
  timeoutMs: number
}

/**
 * Keep-alive connections to one origin, one request at a time on each: one undici Client per
 * connection and a free queue, so picking a connection is O(1) (a Pool scans its clients) and
 * "every connection is busy" is exact. `inUse` counts requests on them.
 *
 * They are opened before the clock starts (warmup; more only if all are busy) and used in turn,
 * oldest free first: a Node server accepts one new connection per event-loop iteration (libuv
 * since 1.45), so connections opened on demand when a burst begins wait in its accept queue, with
 * their requests, for as long as a second on a busy server; and a connection left idle past the
 * server's keep-alive timeout would be closed and opened again in the next burst.
 */
export class Connections {
  readonly origin: string
  /** The target's base path without its trailing slash ('' for none), put before every request path. */
  readonly prefix: string
  inUse = 0
  private readonly clients: Client[] = []
  /** Free connections, oldest first. */
  private readonly free = new Fifo<Client>(64)

  constructor(
    baseUrl: string,
    private readonly o: ConnectionOptions,
  ) {
    const base = new URL(baseUrl)
    this.origin = base.origin
    this.prefix = base.pathname.replace(/\/$/, '')
  }

  private open(): Client {
    const c = new Client(this.origin, {pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: this.o.timeoutMs, bodyTimeout: this.o.timeoutMs})
    this.clients.push(c)
    return c
  }

  /** Sends one request on a free connection (opening one when none is free); the exchange hears the answer. */
  dispatch(exchange: Exchange, method: string, path: string, headers: Record<string, string> | undefined, body: string | undefined): void {
    const client = this.free.shift() ?? this.open()
    this.inUse++
    exchange.connections = this
    exchange.client = client
    client.dispatch({method: method as Dispatcher.HttpMethod, path: this.prefix === '' ? path : this.prefix + path, headers, body}, exchange)
  }

  release(client: Client): void {
    this.inUse--
    this.free.push(client)
  }

  /**
   * Before the clock starts, opens `count` connections with `HEAD /` (answers ignored), so
   * connection setup and the HTTP parser's first compile are not charged to the requests.
   */
  async warmup(count: number): Promise<void> {
    const fresh = Array.from({length: count}, () => this.open())
    await Promise.all(
      fresh.map((c) =>
        c
          // reset: false keeps the connection open after HEAD (undici closes it by default)
          .request({method: 'HEAD', path: this.prefix + '/', reset: false})
          .then((r) => r.body.dump())
          .catch(() => {}),
      ),
    )
    for (const c of fresh) this.free.push(c)
  }

  /** Closes every connection, cutting requests still in flight. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.destroy().catch(() => {})))
  }
}
