import {connect} from 'node:net'
import {ServiceUnreachableError, redactUrl} from '../../core/errors.js'

/** A TCP connect to the target first, so a wrong URL is exit 3 rather than a run of errors. */
export function reachable(url: URL): Promise<void> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  return new Promise((resolve, reject) => {
    const socket = connect({host: url.hostname, port, timeout: 3000})
    const fail = (err?: Error) => {
      socket.destroy()
      reject(
        new ServiceUnreachableError(`the target ${redactUrl(url.toString())} is unreachable${err ? ` (${(err as NodeJS.ErrnoException).code ?? err.message})` : ' (timed out)'}`, {
          hint: 'Start the server (livedrop serve) or check --target.',
          cause: err,
        }),
      )
    }
    socket.once('connect', () => {
      socket.end()
      resolve()
    })
    socket.once('timeout', () => fail())
    socket.once('error', fail)
  })
}

