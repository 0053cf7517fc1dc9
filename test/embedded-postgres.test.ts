import {afterEach, describe, expect, it} from 'vitest'
import {execFileSync, spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import path from 'node:path'
import {openEmbedded, embeddedStatus} from '../src/core/db/embedded.js'
import {PostgresDb} from '../src/core/db/postgres.js'
import {ROOT, runCli} from './helpers/cli.js'

const EMBEDDED_JS = path.join(ROOT, 'dist/core/db/embedded.js')

/** Postgres processes whose command line names this directory (the server and its children). */
function postgresProcessesOf(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', dir], {encoding: 'utf8'})
      .split('\n')
      .filter((l) => l.includes('postgres') && !l.includes('pgrep'))
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

async function waitFor(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A node process that opens the embedded server in dir, prints its mode, then runs `then`. */
function holder(dir: string, then: string) {
  const script = `const m = await import(${JSON.stringify(EMBEDDED_JS)}); const c = await m.openEmbedded(${JSON.stringify(dir)}); console.log(c.mode); ${then}`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  return {child, output: () => out, exited}
}

describe('the embedded Postgres lifecycle', () => {
  const dirs: string[] = []
  const newDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-emb-'))
    // the server runs as `postgres` when we are root: it must reach the directory
    chmodSync(dir, 0o755)
    dirs.push(dir)
    return path.join(dir, 'db')
  }
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      expect(postgresProcessesOf(dir), `postgres left running in ${dir}`).toEqual([])
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('starts on demand on 127.0.0.1, keeps the data, stops when released', async () => {
    const dir = newDir()
    const first = await openEmbedded(dir)
    expect(first.mode).toBe('started')
    expect(new URL(first.url).hostname).toBe('127.0.0.1')
    const db = new PostgresDb(first.url, {onClose: () => first.release()})
    await db.exec('CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)')
    const {rows} = await db.query<{fsync: string}>(`SELECT current_setting('fsync') AS fsync`)
    expect(rows[0].fsync).toBe('off')
    await db.close()
    expect(embeddedStatus(dir)).toMatchObject({exists: true, running: false})
    expect(postgresProcessesOf(dir)).toEqual([])

    const again = await openEmbedded(dir)
    const db2 = new PostgresDb(again.url, {onClose: () => again.release()})
    expect((await db2.query<{n: number}>('SELECT n FROM kept')).rows).toEqual([{n: 42}])
    await db2.close()
  })

  it('a throwaway cluster (--db memory) is stopped and removed when released', async () => {
    const cluster = await openEmbedded(null)
    expect(existsSync(path.join(cluster.dir, 'pgdata', 'PG_VERSION'))).toBe(true)
    await cluster.release()
    expect(existsSync(cluster.dir)).toBe(false)
    expect(postgresProcessesOf(cluster.dir)).toEqual([])
  })

  it('two processes share one server; the last to leave stops it', async () => {
    const dir = newDir()
    const a = holder(dir, `setInterval(() => {}, 1000)`)
    await waitFor(() => a.output().includes('started'))
    const b = await openEmbedded(dir)
    expect(b.mode).toBe('joined')
    expect(embeddedStatus(dir).clients.length).toBe(2)
    await b.release()
    expect(embeddedStatus(dir).running).toBe(true) // a still uses it
    a.child.kill('SIGTERM') // no handler in the holder: the 'exit' hook does not run, like a crash
    await a.exited
    // the holder died without leaving: the server is stale; the next user joins it and stops it
    const c = await openEmbedded(dir)
    expect(c.mode).toBe('joined')
    await c.release()
    expect(embeddedStatus(dir).running).toBe(false)
  })

  it('a process killed with SIGKILL leaves a server that the next command reuses and stops', async () => {
    const dir = newDir()
    const a = holder(dir, `setInterval(() => {}, 1000)`)
    await waitFor(() => a.output().includes('started'))
    a.child.kill('SIGKILL')
    await a.exited
    expect(embeddedStatus(dir).running).toBe(true)
    const status = await runCli(['db', 'status', '--json'], {env: {LIVEDROP_DATA_DIR: dir, DATABASE_URL: undefined}})
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).embedded.server).toBe('shared')
    await waitFor(() => !embeddedStatus(dir).running)
  })

  it('an uncaught error still stops the server (the exit hook)', async () => {
    const dir = newDir()
    const a = holder(dir, `throw new Error('boom')`)
    expect(await a.exited).toBe(1)
    expect(a.output()).toContain('boom')
    expect(embeddedStatus(dir).running).toBe(false)
  })

  it('SIGINT during a command stops the server and exits 130', async () => {
    const dir = newDir()
    const env = {LIVEDROP_DATA_DIR: dir, DATABASE_URL: undefined}
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), 'seed', '--users', '3000000', '--celebrity-followers', '10'], {
      cwd: ROOT,
      env: Object.fromEntries(Object.entries({...process.env, ...env}).filter(([, v]) => v !== undefined)),
      stdio: 'ignore',
    })
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    await waitFor(() => embeddedStatus(dir).running, 30_000)
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(embeddedStatus(dir).running).toBe(false)
  })

  it('two commands starting on a new directory at once: one starts the server, the other joins it', async () => {
    const dir = newDir()
    // each holds the server until told to go, so the second cannot find it already stopped
    const go = path.join(path.dirname(dir), 'go')
    const waitForGo = `const fs = await import('node:fs'); while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 20)); await c.release()`
    const [a, b] = [holder(dir, waitForGo), holder(dir, waitForGo)]
    await waitFor(() => /started|joined/.test(a.output()) && /started|joined/.test(b.output()))
    writeFileSync(go, '')
    expect([await a.exited, await b.exited]).toEqual([0, 0])
    expect([a.output().trim(), b.output().trim()].sort()).toEqual(['joined', 'started'])
    expect(readFileSync(path.join(dir, 'pgdata', 'PG_VERSION'), 'utf8').trim()).toMatch(/^\d+$/)
    expect(embeddedStatus(dir).running).toBe(false)
  })

  it('runs as an ordinary user too (as root: as nobody)', async () => {
    const dir = newDir()
    chmodSync(path.dirname(dir), 0o777)
    const script = `const m = await import(${JSON.stringify(EMBEDDED_JS)}); const c = await m.openEmbedded(${JSON.stringify(dir)}); console.log(c.mode); await c.release()`
    const node = [process.execPath, '--input-type=module', '-e', script]
    const [command, ...args] = userInfo().uid === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...node] : node
    const out = execFileSync(command, args, {encoding: 'utf8'})
    expect(out.trim()).toBe('started')
    expect(existsSync(path.join(dir, 'pgdata', 'PG_VERSION'))).toBe(true)
  })
})
