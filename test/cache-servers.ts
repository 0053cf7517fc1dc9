import {spawn, execFile, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {Redis} from 'ioredis'

const run = promisify(execFile)

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  port: number
  url: string
  /** SIGKILLs the server (a crash, not a clean shutdown). */
  kill(): Promise<void>
}

async function waitForPing(port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const r = new Redis({port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null})
    r.on('error', () => {})
    try {
      await r.connect()
      if ((await r.ping()) === 'PONG') return
    } catch {
      if (Date.now() > until) throw new Error(`redis-server on ${port} did not start`)
      await new Promise((res) => setTimeout(res, 50))
    } finally {
      r.disconnect()
    }
  }
}

/** Starts our own throwaway redis-server (no persistence) on a free port; never the shared one. */
export async function startRedis(options: {cluster?: boolean} = {}): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000')
  const child: ChildProcess = spawn('redis-server', args, {stdio: 'ignore'})
  await waitForPing(port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGKILL')
        await exited
      }
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/** Three masters, no replicas, all slots assigned; resolves once the cluster reports ok. */
export async function startCluster(): Promise<RedisServer[]> {
  const servers = await Promise.all([0, 1, 2].map(() => startRedis({cluster: true})))
  await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  const until = Date.now() + 10_000
  for (;;) {
    const states = await Promise.all(servers.map(async (s) => (await run('redis-cli', ['-p', String(s.port), 'cluster', 'info'])).stdout))
    if (states.every((s) => s.includes('cluster_state:ok'))) return servers
    if (Date.now() > until) throw new Error('the test cluster did not become ok')
    await new Promise((r) => setTimeout(r, 100))
  }
}
