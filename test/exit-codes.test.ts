/**
 * Walks DESIGN.md's exit-code table through the built CLI (`node bin/run.js`, as a user runs it):
 * at least two inputs per code, each failure a user can act on with its code and a hint.
 * Run verdicts (97–100) come from saved run files (test/report-runs.ts) and one real run on the
 * system Postgres; 1 comes from a fault injected with `node --import` (see `internal` below).
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer as createHttpServer} from 'node:http'
import {createServer, type AddressInfo, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli, ROOT, type CliResult} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {RELAXED, SMALL, scenarioFile} from './helpers/scenario.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-exit-codes-'))
const write = (name: string, value: unknown) => {
  const file = path.join(dir, name)
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
  return file
}
const databases: string[] = []
let url = ''
afterAll(async () => {
  rmSync(dir, {recursive: true, force: true})
  await Promise.all(databases.map((name) => dropTestDatabase(name)))
})

async function database(): Promise<string> {
  const db = await createTestDatabase()
  databases.push(db.name)
  return db.url
}

/** Every usage error says how to fix it: a `Hint:` line on stderr (or `hint` in --json). */
function expectUsage(r: CliResult, pattern: RegExp): void {
  expect(r.code, r.stderr + r.stdout).toBe(2)
  expect(r.stderr + r.stdout).toMatch(pattern)
  expect(r.stderr).toMatch(/^Hint: \S/m)
  expect(r.stderr).not.toMatch(/This is a bug/)
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)))
}

// ---- saved runs for the verdict codes ----
const spec: FixtureSpec = {
  name: 'exit-codes',
  phases: [{name: 'steady', seconds: 6, rates: {browse_product: 50, order: 10}}],
  thresholds: ['read.p95 < 100ms', 'errors.rate < 1%'],
  invariants: [
    {name: 'no_oversell', pass: true},
    {name: 'every_ack_persisted', pass: true},
  ],
}
const fast = () => ({ms: 20})
const baseline = buildRun(spec, generateRequests(spec, 1, fast))

beforeAll(async () => {
  url = await database()
})

describe('exit codes: the whole table through the CLI', () => {
  it('0: success', async () => {
    const [validate, status] = await Promise.all([runCli(['scenario', 'validate', 'scenarios/steady-browse.yaml']), runCli(['db', 'status', '--db', url, '--json'])])
    expect(validate.code, validate.stderr).toBe(0)
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({pending: []})
  })

  it('1: an unexpected internal error, with the "report it" hint (a fault injected with node --import)', async () => {
    // Nothing a user can do reaches exit 1 (that is the point of this file), so a bug is simulated:
    // a preload replaces pg.Client#query (every statement runs on a pooled client) with one that
    // throws a TypeError. No hook in livedrop's code.
    const preload = write(
      'bug.mjs',
      `import {createRequire} from 'node:module'\nconst pg = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('pg')\npg.Client.prototype.query = () => { throw new TypeError('injected bug') }\n`,
    )
    const env = {NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`}
    const [status, stats] = await Promise.all([runCli(['db', 'status', '--db', url], {env}), runCli(['idempotency', 'stats', '--db', url, '--json'], {env})])
    expect(status.code).toBe(1)
    expect(status.stderr).toMatch(/Error \[INTERNAL\]: injected bug\nHint: This is a bug in livedrop/)
    expect(stats.code).toBe(1)
    expect(JSON.parse(stats.stdout).error).toMatchObject({code: 'INTERNAL', exitCode: 1, message: 'injected bug'})
  })

  it('2: usage and configuration errors name the flag and print a hint', async () => {
    const taken = createServer()
    const port = await listen(taken)
    const unauthorized = createHttpServer((_req, res) => res.writeHead(401, {'content-type': 'application/json'}).end('{"code":"UNAUTHORIZED"}'))
    const target = await listen(unauthorized)
    try {
      const [empty, inUse, notHere, ssl, option, secret, rejected, stock, seedSize, seedRows, flag] = await Promise.all([
        runCli(['db', 'status', '--db', '']),
        runCli(['serve', '--db', url, '--port', String(port)]),
        runCli(['serve', '--db', url, '--host', '10.255.255.1', '--port', '0', '--secret', 'long-enough-secret']),
        runCli(['db', 'status', '--db', `${url}?sslmode=require`]),
        runCli(['db', 'status', '--db', `${url}?sslmod=require`]),
        runCli(['serve', '--db', url, '--secret', 'short']),
        runCli(['scenario', 'run', scenarioFile(SMALL + RELAXED), '--db', await database(), '--target', `http://127.0.0.1:${target}`, '--secret', 'not-the-secret'], {timeoutMs: 60_000}),
        runCli(['drop', 'create', '--db', url, '--creator', '1', '--product', '1', '--stock', '3000000000']),
        runCli(['seed', '--db', url, '--celebrity-followers', '400000000']),
        runCli(['seed', '--db', url, '--users', '600000000']),
        runCli(['seed', '--users', 'many']),
      ])
      expectUsage(empty, /--db: is empty/)
      expectUsage(inUse, /ADDRESS_IN_USE.*--port: 127\.0\.0\.1:\d+ is already in use/)
      expectUsage(notHere, /ADDRESS_NOT_AVAILABLE.*--host: 10\.255\.255\.1 is not an address of this machine/)
      expectUsage(ssl, /SSL_NOT_SUPPORTED.*sslmode=require.*does not offer it/)
      expectUsage(option, /--db: unknown connection option "sslmod"/)
      expectUsage(secret, /--secret: must be at least 8 characters/)
      expectUsage(rejected, /SECRET_REJECTED.*--secret:.*answered 401/)
      expectUsage(stock, /--stock .*less than or equal to 1000000000/)
      expectUsage(seedSize, /TOO_LARGE.*--celebrity-followers: the seed needs about \d+\.\d GiB of memory/)
      expectUsage(seedRows, /TOO_LARGE.*--users: the seed would write [\d,]+ rows .*at most 500,000,000/)
      expectUsage(flag, /--users/)
    } finally {
      taken.close()
      unauthorized.close()
    }
  })

  it('3: a service or target that is not there', async () => {
    const closed = createServer()
    const port = await listen(closed)
    await new Promise((resolve) => closed.close(resolve))
    const [target, socket, postgres] = await Promise.all([
      runCli(['scenario', 'run', scenarioFile(SMALL), '--db', url, '--target', `http://127.0.0.1:${port}`]),
      runCli(['db', 'status', '--db', 'postgres://root@localhost/x?host=/nonexistent/socket-dir']),
      runCli(['db', 'status', '--db', 'postgres://root:hunter2@127.0.0.1:1/x']),
    ])
    expect(target.code, target.stderr).toBe(3)
    expect(target.stderr).toMatch(/SERVICE_UNREACHABLE.*ECONNREFUSED[\s\S]*Hint: .*--target/)
    expect(target.stderr).not.toMatch(/\[seed\]/)
    expect(socket.code, socket.stderr).toBe(3)
    expect(socket.stderr).toMatch(/ENOENT/)
    expect(postgres.code).toBe(3)
    expect(postgres.stderr).toMatch(/127\.0\.0\.1:1/)
    expect(postgres.stderr).not.toMatch(/hunter2/)
  })

  it('4: an invalid scenario file, located at file:line:column and the field', async () => {
    const aliases = ['a: &a [x, x, x, x, x, x, x, x, x]', ...Array.from({length: 8}, (_, i) => `l${i + 1}: &l${i + 1} [${Array(9).fill(i ? `*l${i}` : '*a').join(', ')}]`)]
    const bomb = write('bomb.yaml', `name: bomb\n${aliases.join('\n')}\ndrop: {stock: 1}\nphases: [{name: p, duration: 1s, rates: {order: 1}}]\n`)
    const absurd = write('absurd.yaml', 'name: absurd\ndrop: {stock: 1}\nphases: [{name: p, duration: 1s, rates: {order: 1000000000}}]\n')
    const [b, a, missing] = await Promise.all([
      runCli(['scenario', 'validate', bomb]),
      runCli(['scenario', 'validate', absurd, 'scenarios/steady-browse.yaml', '--json']),
      runCli(['scenario', 'run', path.join(dir, 'nope.yaml'), '--db', url]),
    ])
    expect(b.code).toBe(4)
    expect(b.stderr).toMatch(/bomb\.yaml:3:\d+ l1: aliases expand too far/)
    expect(a.code).toBe(4)
    const json = JSON.parse(a.stdout).error
    expect(json).toMatchObject({code: 'SCENARIO_INVALID', exitCode: 4, details: {scenarios: [{file: 'scenarios/steady-browse.yaml'}]}})
    expect(json.details.problems).toEqual([{file: absurd, line: 3, column: 41, field: 'phases[0].rates', message: expect.stringMatching(/1,000,000,000 requests\/s .*at most 100,000/)}])
    expect(json.hint).toMatch(/2-core, 24 GiB/)
    expect(missing.code).toBe(4)
    expect(missing.stderr).toMatch(/nope\.yaml:1:1: cannot read the scenario file \(ENOENT\)/)
  })

  it('5: a purge stopped by its time budget, or by another purge holding the lock', async () => {
    const purgeUrl = await database()
    const client = new pg.Client({connectionString: purgeUrl})
    await client.connect()
    try {
      // completed keys ten days old land in the default partition: deleted in batches, not dropped whole
      await client.query(
        `INSERT INTO idempotency_keys (user_id, key, created_day, fingerprint, state, response_status, response_body, created_at, completed_at)
         SELECT 1, 'old-' || g, (now() - interval '10 days')::date, 'fp', 'completed', 201, '{}'::jsonb, now() - interval '10 days', now() - interval '10 days'
         FROM generate_series(1, 300) g`,
      )
      const budget = await runCli(['idempotency', 'purge', '--db', purgeUrl, '--older-than', '72h', '--batch-size', '1', '--pause-ms', '20', '--max-runtime', '300ms', '--yes'])
      expect(budget.code, budget.stderr).toBe(5)
      expect(budget.stderr).toMatch(/PURGE_INCOMPLETE[\s\S]*Hint: Run it again/)
      await client.query('SELECT pg_advisory_lock(7421009)') // the purge lock (src/core/orders/purge.ts)
      const locked = await runCli(['idempotency', 'purge', '--db', purgeUrl, '--older-than', '72h', '--yes'])
      expect(locked.code, locked.stderr).toBe(5)
      expect(locked.stderr).toMatch(/PURGE_LOCKED/)
    } finally {
      await client.end()
    }
  })

  it('97: a regression against a baseline (latency, errors)', async () => {
    const slower = buildRun(spec, generateRequests(spec, 2, () => ({ms: 100})))
    const failing = buildRun(spec, generateRequests(spec, 3, ({random}) => ({ms: 20, status: random() < 0.2 ? 500 : 200})))
    const base = write('baseline.json', baseline)
    const [latency, errors] = await Promise.all([
      runCli(['report', write('slower.json', slower), '--compare', base]),
      runCli(['report', write('errors.json', failing), '--compare', base, '--json']),
    ])
    expect(latency.code).toBe(97)
    expect(latency.stderr).toMatch(/REGRESSION/)
    expect(errors.code).toBe(97)
    expect(JSON.parse(errors.stdout).error).toMatchObject({code: 'REGRESSION', exitCode: 97})
  })

  it('98: an invariant violated; 99: a threshold failed (saved runs and a real one); 100: a void run', async () => {
    const broken = (name: string) => write(`${name}.json`, {...baseline, invariants: baseline.invariants.map((i) => (i.name === name ? {...i, pass: false, detail: 'broken'} : i))})
    const slow = write('slow.json', buildRun(spec, generateRequests(spec, 4, () => ({ms: 300}))))
    const stalled = write('stalled.json', {...baseline, generator: {...baseline.generator, stall: {reason: 'event loop stalled for 900 ms', detail: {maxLagMs: 900}}}})
    // a run file of the older format, where the stall was kept in `void`
    const legacy = write('legacy-void.json', {...baseline, void: {reason: 'the generator fell behind', detail: {lateFraction: 0.2}}})
    const merge = (file: string) => runCli(['report', 'merge', file, '--out', path.join(dir, `merged-${path.basename(file)}`)])
    const failingScenario = scenarioFile(SMALL.replace('read.p95 < 2s', 'read.p95 < 0.001ms') + RELAXED)
    const [oversell, lost, threshold, real, stall, old] = await Promise.all([
      merge(broken('no_oversell')),
      merge(broken('every_ack_persisted')),
      merge(slow),
      runCli(['scenario', 'run', failingScenario, '--db', await database(), '--json'], {timeoutMs: 60_000}),
      merge(stalled),
      merge(legacy),
    ])
    expect(oversell.code).toBe(98)
    expect(oversell.stderr).toMatch(/INVARIANT_VIOLATED/)
    expect(lost.code).toBe(98)
    expect(threshold.code).toBe(99)
    expect(threshold.stderr).toMatch(/THRESHOLD_FAILED/)
    expect(real.code, real.stderr).toBe(99)
    expect(JSON.parse(real.stdout).verdict).toMatchObject({exitCode: 99})
    expect(stall.code).toBe(100)
    expect(stall.stderr).toMatch(/VOID_RUN/)
    expect(old.code).toBe(100)
  })
})
