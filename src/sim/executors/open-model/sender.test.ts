import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer as createHttpsServer} from 'node:https'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {Connections, Exchange} from './sender.js'

/** Records what the connection told it; `done` resolves with the outcome. */
class Probe extends Exchange {
  readonly done: Promise<{status: number; body: string; error: string | null}>
  private resolve!: (v: {status: number; body: string; error: string | null}) => void

  constructor() {
    super()
    this.chunks = []
    this.done = new Promise((r) => (this.resolve = r))
  }

  protected wantsBody(): boolean {
    return true
  }

  finished(err: Error | null): void {
    this.resolve({status: this.status, body: this.body(), error: err === null ? null : ((err as {code?: string}).code ?? err.message)})
  }
}

/**
 * A raw TCP server: for each request it reads (up to the blank line, plus a Content-Length body),
 * `answer` gives the bytes to send back, as pieces written one by one with a pause between them
 * (so a head or a chunk arrives split), then END to end the connection or RESET to reset it; or
 * 'close' to drop it.
 */
const END = Symbol('end')
const RESET = Symbol('reset')
async function rawServer(answer: (request: string, n: number) => Array<string | typeof END | typeof RESET> | 'close'): Promise<{url: string; server: Server; requests: string[]}> {
  const requests: string[] = []
  const server = createServer((socket: Socket) => {
    let buffered = ''
    socket.on('data', async (d) => {
      buffered += d.toString('latin1')
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        const request = buffered.slice(0, end + 4 + length)
        buffered = buffered.slice(request.length)
        requests.push(request)
        const reply = answer(request, requests.length)
        if (reply === 'close') return socket.destroy()
        for (const piece of reply) {
          if (piece === END) return socket.end()
          if (piece === RESET) return socket.resetAndDestroy()
          socket.write(piece, 'latin1')
          await new Promise((r) => setTimeout(r, 5))
        }
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as {port: number}).port
  return {url: `http://127.0.0.1:${port}/base/`, server, requests}
}

describe('the generator’s HTTP/1.1 connections', () => {
  let server: Server | undefined
  let wire: Connections | undefined
  afterEach(async () => {
    await wire?.close()
    await new Promise((r) => server?.close(r))
  })

  it('reads Content-Length and chunked bodies split anywhere, skips an interim 100, and keeps the connection for the next request', async () => {
    const raw = await rawServer((_req, n) =>
      n === 1
        ? ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le', 'ngth: 5\r\n\r\nhe', 'llo']
        : ['HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r', '\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n', '\r\n'],
    )
    server = raw.server
    wire = new Connections(raw.url, {timeoutMs: 2000})
    const first = new Probe()
    wire.dispatch(first, 'GET', '/a?b=1', {authorization: 'Bearer x'}, undefined)
    expect(await first.done).toEqual({status: 200, body: 'hello', error: null})
    const second = new Probe()
    wire.dispatch(second, 'POST', '/orders', {'content-type': 'application/json'}, '{"qty":"ü"}')
    expect(await second.done).toEqual({status: 201, body: 'abc0123456789abcdef', error: null})
    expect(wire.inUse).toBe(0)
    // one connection for both; the base path prefixed; the body's length in bytes, not characters
    expect(raw.requests[0]).toMatch(/^GET \/base\/a\?b=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nauthorization: Bearer x\r\n\r\n$/)
    expect(Buffer.from(raw.requests[1], 'latin1').toString('utf8')).toMatch(/^POST \/base\/orders HTTP\/1\.1\r\n.*content-length: 12\r\n\r\n\{"qty":"ü"\}$/s)
  })

  it('a body without a length ends with the connection, and the next request opens a new one', async () => {
    const raw = await rawServer((_req, n) => (n === 1 ? ['HTTP/1.0 200 OK\r\n\r\nuntil ', 'the end', END] : ['HTTP/1.1 204 No Content\r\n\r\n']))
    server = raw.server
    wire = new Connections(raw.url, {timeoutMs: 2000})
    const first = new Probe()
    wire.dispatch(first, 'GET', '/', undefined, undefined)
    expect(await first.done).toEqual({status: 200, body: 'until the end', error: null})
    const second = new Probe()
    wire.dispatch(second, 'GET', '/', undefined, undefined)
    expect(await second.done).toEqual({status: 204, body: '', error: null})
  })

  it('fails an exchange on a dropped connection, a timeout, a broken response, a reset body or a control character, naming each', async () => {
    const raw = await rawServer((req) => {
      if (req.startsWith('GET /base/drop ')) return 'close'
      if (req.startsWith('GET /base/slow ')) return []
      if (req.startsWith('GET /base/junk ')) return ['SSH-2.0-OpenSSH\r\n\r\n']
      // a body that would end with the connection, cut by a reset instead
      if (req.startsWith('GET /base/cut ')) return ['HTTP/1.0 200 OK\r\n\r\npart of it', RESET]
      return ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']
    })
    server = raw.server
    wire = new Connections(raw.url, {timeoutMs: 300})
    const outcome = async (path: string) => {
      const p = new Probe()
      wire!.dispatch(p, 'GET', path, undefined, undefined)
      return (await p.done).error
    }
    expect(await outcome('/drop')).toBe('SOCKET_CLOSED')
    const started = performance.now()
    expect(await outcome('/slow')).toBe('TIMEOUT')
    expect(performance.now() - started).toBeGreaterThanOrEqual(300)
    expect(await outcome('/junk')).toBe('BAD_RESPONSE')
    expect(await outcome('/cut')).toBe('ECONNRESET')
    expect(await outcome('/a b')).toBe('BAD_REQUEST')
    expect(await outcome('/fine')).toBeNull()
    expect(wire.inUse).toBe(0)
  })

  it('cuts requests in flight on close, as unfinished', async () => {
    const raw = await rawServer(() => [])
    server = raw.server
    wire = new Connections(raw.url, {timeoutMs: 5000})
    const p = new Probe()
    wire.dispatch(p, 'GET', '/never', undefined, undefined)
    await new Promise((r) => setTimeout(r, 50))
    await wire.close()
    expect((await p.done).error).toBe('UNFINISHED')
  })

  it('speaks HTTPS to an https:// target, and refuses a certificate it cannot verify', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sender-tls-'))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], {stdio: 'ignore'})
    const tls = createHttpsServer({key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem'))}, (req, res) => res.end(`tls ${req.url}`))
    rmSync(dir, {recursive: true})
    server = tls as unknown as Server
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r))
    const url = `https://127.0.0.1:${(tls.address() as {port: number}).port}`
    wire = new Connections(url, {timeoutMs: 2000})
    const refused = new Probe()
    wire.dispatch(refused, 'GET', '/x', undefined, undefined)
    expect((await refused.done).error).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    await wire.close()
    // trusting it (as NODE_TLS_REJECT_UNAUTHORIZED=0 would for a whole run), the same request is answered over TLS
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
    try {
      wire = new Connections(url, {timeoutMs: 2000})
      const answered = new Probe()
      wire.dispatch(answered, 'GET', '/x', undefined, undefined)
      expect(await answered.done).toEqual({status: 200, body: 'tls /x', error: null})
    } finally {
      delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
    }
  })
})
