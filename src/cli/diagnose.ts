import {connect} from 'node:net'
import {ServiceUnreachableError, SslNotSupportedError, redactUrl} from '../core/errors.js'

/**
 * node-postgres reports "SSL demanded of a server without it" as a plain Error with no code, so it
 * is recognised here by asking the server itself (the protocol's SSLRequest), never by message text.
 * Returns the error to report: a clearer one when the cause is found, else `err` as it was.
 */
export async function diagnoseFailure(err: unknown, dbUrl: string | undefined): Promise<unknown> {
  // a connection that failed to open is reported as unreachable: its codeless cause may be this one
  const cause = err instanceof ServiceUnreachableError ? err.cause : err
  if ((cause as {code?: unknown} | null)?.code !== undefined || !dbUrl) return err
  let url: URL
  try {
    url = new URL(dbUrl)
  } catch {
    return err
  }
  if (!/^postgres(ql)?:$/.test(url.protocol)) return err
  const q = url.searchParams
  const demand = q.get('sslmode') && q.get('sslmode') !== 'disable' ? `sslmode=${q.get('sslmode')}` : /^(true|1)$/.test(q.get('ssl') ?? '') ? `ssl=${q.get('ssl')}` : null
  if (!demand || (q.get('host') ?? '').startsWith('/')) return err
  const host = q.get('host') ?? url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = Number(q.get('port') ?? url.port ?? 5432) || 5432
  if ((await sslAnswer(host || '127.0.0.1', port)) !== 'N') return err
  return new SslNotSupportedError('--db', `${redactUrl(dbUrl)} asks for SSL (${demand}), but the server at ${host}:${port} does not offer it`, {
    hint: 'Use sslmode=disable for this server (node-postgres treats sslmode=prefer like require), or enable ssl on the server.',
    cause,
  })
}

/** The server's one-byte answer to an SSLRequest: 'S' (will do SSL), 'N' (will not), or null (no answer). */
function sslAnswer(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({host, port, timeout: 3000})
    const done = (answer: string | null) => {
      socket.destroy()
      resolve(answer)
    }
    // Int32 length 8, Int32 80877103 (the SSLRequest code)
    socket.once('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])))
    socket.once('data', (b) => done(String.fromCharCode(b[0])))
    socket.once('timeout', () => done(null))
    socket.once('error', () => done(null))
  })
}
