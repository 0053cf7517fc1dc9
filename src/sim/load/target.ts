import {createServer, type IncomingMessage, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

/**
 * A plain node:http target for testing and benchmarking the generator: answers every request
 * with a small JSON body, optionally after a scripted delay or status, and can stall (hold every
 * answer until a moment), which is how a GC pause or a lock convoy looks from outside.
 */
export interface TestTargetOptions {
  /** Extra delay per request, ms. Default none. */
  delayMs?: (req: IncomingMessage) => number
  /** Status per request. Default 200. */
  status?: (req: IncomingMessage) => number
  /** Cut the connection instead of answering (a network error for the client). Default never. */
  reset?: (req: IncomingMessage) => boolean
  /** Response body. Default {"ok":true}. */
  body?: string
}

export interface TestTarget {
  url: string
  server: Server
  /** Requests received, by path without the query. */
  readonly received: Map<string, number>
  /** Holds every answer (in flight and arriving) until `ms` from now. */
  stall(ms: number): void
  close(): Promise<void>
}

export async function startTestTarget(options: TestTargetOptions = {}): Promise<TestTarget> {
  const body = options.body ?? '{"ok":true}'
  const length = String(Buffer.byteLength(body))
  const received = new Map<string, number>()
  let stalledUntil = 0
  const server = createServer((req, res) => {
    const path = req.url!.split('?')[0]
    received.set(path, (received.get(path) ?? 0) + 1)
    if (options.reset?.(req)) return void req.socket.destroy()
    const answer = () => {
      const wait = stalledUntil - Date.now()
      if (wait > 0) return void setTimeout(answer, wait)
      res.writeHead(options.status?.(req) ?? 200, {'content-type': 'application/json', 'content-length': length})
      res.end(body)
    }
    // read the request body (if any) before answering, as a real server would
    req.resume()
    req.once('end', () => {
      const delay = options.delayMs?.(req) ?? 0
      if (delay > 0) setTimeout(answer, delay)
      else answer()
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    received,
    stall(ms) {
      stalledUntil = Date.now() + ms
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
