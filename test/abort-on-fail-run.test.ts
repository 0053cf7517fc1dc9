import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {ThresholdFailedError} from '../src/core/errors.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import {renderReport} from '../src/sim/report/tables.js'
import {runScenario, verdictError, type RunResult} from '../src/sim/run/index.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {runCli} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {RELAXED, scenarioFile} from './helpers/scenario.js'

/**
 * abortOnFail end to end on the real generator thread: a target that answers every request after
 * 150 ms fails `read.p95 < 100ms` from the first second; with abortOnFail the 30 s phase stops a
 * few seconds after the delay, without it the run goes its full length.
 */
let target: TestTarget | undefined
afterEach(async () => {
  await target?.close()
  target = undefined
})

const WORLD = {users: 100, creators: 5, products: 10, dropId: 1, secret: 'test-secret'}
const DELAY_S = 3

async function run(threshold: string): Promise<RunResult> {
  const scenario = parseScenario(
    `name: slow-target
drop: {stock: 10}
notify: {sample: 0}
generator: {slackMs: 50}
phases: [{name: steady, duration: 30s, rates: {browse_product: 20, browse_drop: 10}}]
thresholds: [${threshold}, "read.p99 < 10s"]
`,
    'slow-target.yaml',
  )
  return runScenario({scenario, target: target!.url, world: WORLD}).result
}

describe('abortOnFail against a slow target', () => {
  it('stops a failing 30 s phase a few seconds after the delay: FAIL 99, the run file and the report name the threshold', async () => {
    target = await startTestTarget({delayMs: () => 150})
    const result = await run(`{threshold: "read.p95 < 100ms", abortOnFail: true, delayAbortEval: ${DELAY_S}s}`)
    expect(result.aborted).toBe(true)
    // the target's 150 ms plus whatever the machine adds: a slow second on a busy machine can take p95 past 200 ms
    expect(result.abort).toEqual({threshold: 'read.p95 < 100ms', scope: 'run', atMs: expect.any(Number), reason: expect.stringMatching(/^(1[5-9]\d|[2-9]\d\d)\.\dms over the run so far$/)})
    // judged at the end of each second from the delay on: the first judged second fails
    expect(result.abort!.atMs).toBeGreaterThanOrEqual(DELAY_S * 1000)
    expect(result.abort!.atMs).toBeLessThanOrEqual((DELAY_S + 2) * 1000)
    // in-flight requests finished (150 ms each), and the rest never came due (skipped, not failed)
    expect(result.durationMs).toBeLessThan(10_000)
    const r = result.phases[0].requests.browse_product
    expect(r.completed).toBeGreaterThan(20 * DELAY_S * 0.8)
    expect(r.skipped).toBeGreaterThan(20 * 20)
    expect(result.verdict).toMatchObject({pass: false, void: false, exitCode: 99})
    const err = verdictError(result)!
    expect(err).toBeInstanceOf(ThresholdFailedError)
    expect(err.exitCode).toBe(99)
    expect(err.message).toMatch(/^the run was aborted at \d s by read\.p95 < 100ms \[run\]: /)
    const text = renderReport(result)
    expect(text).toMatch(/^FAIL 99: aborted at \d s by read\.p95 < 100ms; /)
    expect(text).toMatch(/^ABORTED at \d s of 30 s by read\.p95 < 100ms \[run\]: (1[5-9]\d|[2-9]\d\d)\.\dms over the run so far\./m)
  })

  it('the same scenario without abortOnFail runs to its end and fails there', async () => {
    target = await startTestTarget({delayMs: () => 150})
    const result = await run('"read.p95 < 100ms"')
    expect(result.aborted).toBe(false)
    expect(result.abort).toBeUndefined()
    expect(result.durationMs).toBeGreaterThanOrEqual(30_000)
    expect(result.phases[0].requests.browse_product).toMatchObject({scheduled: 600, completed: 600, unsent: 0})
    expect(result.verdict.exitCode).toBe(99)
    expect(renderReport(result)).not.toContain('ABORTED')
  })

  it('a passing threshold with abortOnFail never stops the run', async () => {
    target = await startTestTarget()
    const scenario = parseScenario(
      `name: fast-target
drop: {stock: 10}
notify: {sample: 0}
generator: {slackMs: 50}
phases: [{name: steady, duration: 4s, rates: {browse_product: 20}}]
thresholds: [{threshold: "read.p95 < 5s", abortOnFail: true}, {threshold: "errors.rate < 1%", abortOnFail: true}]
`,
      'fast-target.yaml',
    )
    const result = await runScenario({scenario, target: target.url, world: WORLD}).result
    expect(result).toMatchObject({aborted: false, verdict: {exitCode: 0}})
    expect(result.abort).toBeUndefined()
  })
})

describe('abortOnFail in a run with a stack (scenario run on Postgres)', () => {
  it('stops the run, still checks the invariants in the database, exits 99 and records {threshold, atMs, reason}', async () => {
    const text = `
name: abort-stack
dataset: {users: 400, creators: 4, celebrityFollowers: 100, productsPerCreator: 2, seed: 5}
drop: {stock: 30, startOffset: 1s}
notify: {sample: 0}
phases:
  - name: race
    duration: 30s
    rates: {browse_product: 20, order: 20}
thresholds:
  - {threshold: "read.p95 < 0.001ms", abortOnFail: true, delayAbortEval: 2s}
  - order.p95 < 10s
${RELAXED}`
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'abort-')), 'run.json')
    const {name, url} = await createTestDatabase()
    const started = Date.now()
    const r = await runCli(['scenario', 'run', scenarioFile(text), '--db', url, '--out', out], {timeoutMs: 120_000}).finally(() => dropTestDatabase(name))
    expect(r.code, r.stderr).toBe(99)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    expect(result.aborted).toBe(true)
    expect(result.abort).toMatchObject({threshold: 'read.p95 < 0.001ms', scope: 'run', reason: expect.stringMatching(/over the run so far$/)})
    expect(result.abort!.atMs).toBeGreaterThanOrEqual(2000)
    expect(result.abort!.atMs).toBeLessThanOrEqual(5000)
    expect(result.durationMs).toBeLessThan(15_000)
    // the run stopped, the checks did not: every invariant was judged against the database
    expect(result.invariants.map((i) => i.name)).toEqual(expect.arrayContaining(['no_oversell', 'no_duplicate_orders', 'every_ack_persisted']))
    expect(result.invariants.every((i) => i.pass)).toBe(true)
    expect(result.verdict.exitCode).toBe(99)
    expect(r.stdout).toMatch(/^FAIL 99: aborted at \d s by read\.p95 < 0\.001ms; /)
    expect(r.stdout).toMatch(/^ABORTED at \d s of 30 s by read\.p95 < 0\.001ms \[run\]/m)
    expect(r.stdout).toMatch(/✓ no_oversell/)
    expect(r.stderr).toMatch(/aborted at \d s by read\.p95 < 0\.001ms \[run\]/)
    // far less than the 30 s the phase asks for, seeding included
    expect(Date.now() - started).toBeLessThan(60_000)
  })
})

describe('scenario validate with ramps', () => {
  it('reports a ramping phase’s peak at its rampTo rates', async () => {
    const file = scenarioFile(`name: ramp
drop: {stock: 10}
phases:
  - {name: calm, duration: 5s, rates: {browse_product: 50}}
  - {name: surge, duration: 10s, rates: {browse_product: 10, order: 5}, rampTo: {browse_product: 500}}
thresholds: [{threshold: "read.p95 < 200ms", abortOnFail: true}]
`)
    const r = await runCli(['scenario', 'validate', file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/ramp — 2 phases, 15 s, peak 505 req\/s, 1 thresholds: OK/)
  })
})
