import {connect, isIP, type Socket} from 'node:net'
import {connect as connectTls} from 'node:tls'
import {performance} from 'node:perf_hooks'
import {Fifo} from './fifo.js'

/**
 * One request on the wire and what it hears back: the status once the head is in, the body's
 * chunks (collected only when `wantsBody` says so), then the end or the failure. The run loop
 * subclasses it with what it records: one object per request, no closures.
 */
export abstract class Exchange {
  status = 0
  /** The body's chunks, collected only when `wantsBody` said so. */
  chunks: Buffer[] | null = null

  /** Called once the status is known: should the body be kept? */
  protected abstract wantsBody(status: number): boolean
  /** The answer is complete (err null) or failed; the connection is free again by now. */
  abstract finished(err: Error | null): void

  /** The body as text ('' when it was not kept). */
  body(): string {
    return this.chunks ? Buffer.concat(this.chunks).toString('utf8') : ''
  }

  onHeaders(status: number): void {
    this.status = status
    if (this.chunks === null && this.wantsBody(status)) this.chunks = []
  }

  /** A part of the body; only called while chunks are collected. */
  onData(chunk: Buffer): void {
    this.chunks!.push(chunk)
  }
}

/** A failed exchange's error: `code` names the class the recorder counts it under. */
export class ExchangeError extends Error {
  constructor(
    readonly code: 'TIMEOUT' | 'UNFINISHED' | 'SOCKET_CLOSED' | 'BAD_RESPONSE' | 'BAD_REQUEST',
    message: string,
  ) {
    super(message)
  }
}

export interface ConnectionOptions {
  /** How long a request may wait for its whole answer, ms. */
  timeoutMs: number
}

const HEAD_END = Buffer.from('\r\n\r\n')
const LINE_END = Buffer.from('\r\n')
/** A response head (or a chunk-size line) longer than this is refused, not buffered without end. */
const MAX_HEAD_BYTES = 64 * 1024
/** A request line or header value must not carry a control character (CR or LF would split it). */
const UNSAFE_IN_REQUEST = /[\0-\x1f\x7f]/
const UNSAFE_IN_PATH = /[\0-\x20\x7f]/

/** Where a connection's parser is: awaiting a head, a body by length, chunks, or the connection's end. */
const enum Reading {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
}

/**
 * One keep-alive HTTP/1.1 connection on a net.Socket (a TLS socket for https://), one request at a
 * time: the request goes out as one pre-formatted write and the response is parsed by the little
 * it needs (status line, Content-Length, chunked Transfer-Encoding, Connection: close). undici did
 * the same job with a request object, header validation and a WebAssembly parser per request, at
 * about 1.4 times this CPU per request (bench:loadgen): on a 2-core machine the generator's CPU is
 * taken from the target's.
 */
class Connection {
  private readonly socket: Socket
  exchange: Exchange | null = null
  /** When the exchange in flight times out (performance.now() ms). */
  deadline = 0
  closed = false
  private headOnly = false
  private reading = Reading.Head
  /** Bytes of the body (Length) or of the chunk (ChunkData) still to come. */
  private remaining = 0
  private keepAlive = true
  /** Bytes of a head or line not yet complete. */
  private partial: Buffer | null = null
  /** Why the socket failed, for the exchange it cuts. */
  private error: Error | null = null

  constructor(
    target: {host: string; port: number; tls: boolean},
    private readonly released: (c: Connection) => void,
  ) {
    const {host, port} = target
    this.socket = target.tls ? connectTls({host, port, servername: isIP(host) ? undefined : host}) : connect({host, port})
    this.socket.setNoDelay(true)
    this.socket.on('data', (buf: Buffer) => this.read(buf))
    // closed as soon as it is known, so dispatch never writes to a connection on its way out
    this.socket.on('end', () => (this.closed = true))
    this.socket.on('error', (err) => {
      this.closed = true
      this.error = err
    })
    this.socket.on('close', () => this.onClose())
  }

  send(exchange: Exchange, request: string, headOnly: boolean, timeoutMs: number): void {
    this.exchange = exchange
    this.headOnly = headOnly
    this.deadline = performance.now() + timeoutMs
    this.reading = Reading.Head
    this.socket.write(request, 'utf8')
  }

  /** Fails the exchange in flight (if any) and closes the connection. */
  fail(err: Error): void {
    this.closed = true
    this.socket.destroy()
    const exchange = this.exchange
    if (exchange === null) return
    this.exchange = null
    this.released(this)
    exchange.finished(err)
  }

  private onClose(): void {
    this.closed = true
    // a body without length or chunks ends with the connection (a reset cuts it short instead)
    if (this.exchange !== null && this.reading === Reading.UntilClose && this.error === null) return this.complete()
    this.fail(this.error ?? new ExchangeError('SOCKET_CLOSED', 'the server closed the connection before the answer was complete'))
  }

  private complete(): void {
    const exchange = this.exchange!
    this.exchange = null
    if (!this.keepAlive) {
      this.closed = true
      this.socket.destroy()
    }
    this.released(this)
    exchange.finished(null)
  }

  private read(buf: Buffer): void {
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, buf])
      this.partial = null
    }
    let at = 0
    while (at < buf.length) {
      const exchange = this.exchange
      if (exchange === null) return this.fail(new ExchangeError('BAD_RESPONSE', 'the server sent bytes no request asked for'))
      switch (this.reading) {
        case Reading.Head:
        case Reading.ChunkSize:
        case Reading.Trailers: {
          const end = buf.indexOf(this.reading === Reading.Head ? HEAD_END : LINE_END, at)
          if (end === -1) {
            if (buf.length - at > MAX_HEAD_BYTES) return this.fail(new ExchangeError('BAD_RESPONSE', `a response head or chunk line over ${MAX_HEAD_BYTES} bytes`))
            this.partial = buf.subarray(at)
            return
          }
          const text = buf.toString('latin1', at, end)
          at = end + (this.reading === Reading.Head ? 4 : 2)
          const ok = this.reading === Reading.Head ? this.head(text, exchange) : this.reading === Reading.ChunkSize ? this.chunkSize(text) : this.trailer(text)
          if (!ok) return
          break
        }
        case Reading.Length:
        case Reading.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at)
          if (exchange.chunks !== null) exchange.onData(buf.subarray(at, at + n))
          at += n
          this.remaining -= n
          if (this.remaining > 0) break
          if (this.reading === Reading.ChunkData) this.reading = Reading.ChunkEnd
          else this.complete()
          break
        }
        case Reading.ChunkEnd: {
          if (buf.length - at < 2) {
            this.partial = buf.subarray(at)
            return
          }
          if (buf[at] !== 13 || buf[at + 1] !== 10) return this.fail(new ExchangeError('BAD_RESPONSE', 'a chunk not followed by CRLF'))
          at += 2
          this.reading = Reading.ChunkSize
          break
        }
        case Reading.UntilClose:
          if (exchange.chunks !== null) exchange.onData(at === 0 ? buf : buf.subarray(at))
          return
      }
    }
  }

  /** Reads a response head; false when the connection failed on it. */
  private head(text: string, exchange: Exchange): boolean {
    // "HTTP/1.1 200 OK"
    const status = text.startsWith('HTTP/1.') ? Number(text.slice(9, 12)) : NaN
    if (!(status >= 100 && status <= 999)) {
      this.fail(new ExchangeError('BAD_RESPONSE', `not an HTTP/1.x status line: ${JSON.stringify(text.slice(0, 40))}`))
      return false
    }
    // an interim answer (100 Continue, 103 Early Hints): the real one follows
    if (status < 200) return true
    let length = -1
    let chunked = false
    this.keepAlive = text.charCodeAt(7) === 49 // HTTP/1.1 keeps the connection unless told otherwise
    for (let start = text.indexOf('\r\n') + 2; start > 1; ) {
      const end = text.indexOf('\r\n', start)
      const line = end === -1 ? text.slice(start) : text.slice(start, end)
      start = end + 2
      const colon = line.indexOf(':')
      // only the three names it reads are lower-cased (10, 14 and 17 characters), not every header of every answer
      const name = colon === 10 || colon === 14 || colon === 17 ? line.slice(0, colon).toLowerCase() : ''
      if (name === 'content-length') length = Number(line.slice(colon + 1).trim())
      else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(line.slice(colon + 1))
      else if (name === 'connection') {
        const v = line.slice(colon + 1).trim().toLowerCase()
        if (v === 'close') this.keepAlive = false
        else if (v === 'keep-alive') this.keepAlive = true
      }
    }
    exchange.onHeaders(status)
    if (this.headOnly || status === 204 || status === 304) {
      this.complete()
    } else if (chunked) {
      this.reading = Reading.ChunkSize
    } else if (length >= 0 && Number.isSafeInteger(length)) {
      this.remaining = length
      this.reading = Reading.Length
      if (length === 0) this.complete()
    } else if (length === -1) {
      this.keepAlive = false
      this.reading = Reading.UntilClose
    } else {
      this.fail(new ExchangeError('BAD_RESPONSE', 'an invalid Content-Length'))
      return false
    }
    return true
  }

  private chunkSize(line: string): boolean {
    // "1a2b;extension=value"
    const semicolon = line.indexOf(';')
    const size = parseInt(semicolon === -1 ? line : line.slice(0, semicolon), 16)
    if (!(size >= 0)) {
      this.fail(new ExchangeError('BAD_RESPONSE', `an invalid chunk size: ${JSON.stringify(line.slice(0, 40))}`))
      return false
    }
    if (size === 0) this.reading = Reading.Trailers
    else {
      this.remaining = size
      this.reading = Reading.ChunkData
    }
    return true
  }

  /** A trailer line is skipped; the empty line ends the answer. */
  private trailer(line: string): boolean {
    if (line === '') this.complete()
    return true
  }
}

/**
 * Keep-alive connections to one origin, one request at a time on each, and a free queue, so
 * picking a connection is O(1) and "every connection is busy" is exact. `inUse` counts requests
 * on them.
 *
 * They are opened before the clock starts (warmup; more only if all are busy) and used in turn,
 * oldest free first: a Node server accepts one new connection per event-loop iteration (libuv
 * since 1.45), so connections opened on demand when a burst begins wait in its accept queue, with
 * their requests, for as long as a second on a busy server; and a connection left idle past the
 * server's keep-alive timeout would be closed and opened again in the next burst.
 *
 * Timeouts are checked by one sweep over the busy connections, not a timer per request.
 */
export class Connections {
  /** The target's base path without its trailing slash ('' for none), put before every request path. */
  readonly prefix: string
  inUse = 0
  private readonly target: {host: string; port: number; tls: boolean}
  /** host[:port] as the Host header sends it. */
  private readonly authority: string
  private readonly all = new Set<Connection>()
  /** Free connections, oldest first. */
  private readonly free = new Fifo<Connection>(64)
  private readonly sweep: NodeJS.Timeout
  private readonly release = (c: Connection) => {
    this.inUse--
    if (c.closed) this.all.delete(c)
    else this.free.push(c)
  }

  constructor(
    baseUrl: string,
    private readonly o: ConnectionOptions,
  ) {
    const base = new URL(baseUrl)
    const tls = base.protocol === 'https:'
    this.target = {host: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(base.port || (tls ? 443 : 80)), tls}
    this.authority = base.host
    this.prefix = base.pathname.replace(/\/$/, '')
    this.sweep = setInterval(() => this.timeOut(), Math.max(5, Math.min(100, o.timeoutMs / 10)))
    this.sweep.unref()
  }

  private open(): Connection {
    const c = new Connection(this.target, this.release)
    this.all.add(c)
    return c
  }

  private timeOut(): void {
    const now = performance.now()
    for (const c of this.all) {
      if (c.exchange !== null && now > c.deadline) c.fail(new ExchangeError('TIMEOUT', `no complete answer within ${this.o.timeoutMs} ms`))
    }
  }

  /** Sends one request on a free connection (opening one when none is free); the exchange hears the answer. */
  dispatch(exchange: Exchange, method: string, path: string, headers: Record<string, string> | undefined, body: string | undefined): void {
    let c = this.free.shift()
    while (c !== undefined && c.closed) c = this.free.shift()
    c ??= this.open()
    this.inUse++
    let request = `${method} ${this.prefix}${path} HTTP/1.1\r\nhost: ${this.authority}\r\n`
    let unsafe = UNSAFE_IN_PATH.test(path) || UNSAFE_IN_REQUEST.test(method)
    if (headers !== undefined) {
      for (const name in headers) {
        const value = headers[name]
        unsafe ||= UNSAFE_IN_REQUEST.test(name) || UNSAFE_IN_REQUEST.test(value)
        request += `${name}: ${value}\r\n`
      }
    }
    request += body === undefined ? '\r\n' : `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    if (unsafe) {
      // nothing was written: the connection stays good; the failure is heard after this call, as an answer would be
      const free = c
      setImmediate(() => {
        this.release(free)
        exchange.finished(new ExchangeError('BAD_REQUEST', `a control character in the request's method, path or headers: ${JSON.stringify(path)}`))
      })
      return
    }
    c.send(exchange, request, method === 'HEAD', this.o.timeoutMs)
  }

  /**
   * Before the clock starts, opens `count` connections with `HEAD /` (answers ignored), so
   * connection setup and the first parse are not charged to the requests.
   */
  async warmup(count: number): Promise<void> {
    const fresh = Array.from({length: count}, () => this.open())
    await Promise.all(
      fresh.map(
        (c) =>
          new Promise<void>((resolve) => {
            this.inUse++
            c.send(new Warmup(resolve), `HEAD ${this.prefix}/ HTTP/1.1\r\nhost: ${this.authority}\r\n\r\n`, true, this.o.timeoutMs)
          }),
      ),
    )
  }

  /** Closes every connection, cutting requests still in flight (they fail as unfinished). */
  async close(): Promise<void> {
    clearInterval(this.sweep)
    for (const c of [...this.all]) c.fail(new ExchangeError('UNFINISHED', 'the run ended before the answer came'))
    this.all.clear()
  }
}

/** The warmup's HEAD /: its answer, whatever it is, only says the connection is open. */
class Warmup extends Exchange {
  constructor(private readonly done: () => void) {
    super()
  }

  protected wantsBody(): boolean {
    return false
  }

  finished(): void {
    this.done()
  }
}
