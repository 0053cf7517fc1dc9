import {describe, expect, it} from 'vitest'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {runCli} from './helpers/cli.js'
import {RELAXED, SMALL, scenarioFile} from './helpers/scenario.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {runScenario} from '../src/sim/run/index.js'
import {verdictError} from '../src/sim/run/index.js'
import {ExitCode} from '../src/core/errors.js'

describe('livedrop scenario run on the embedded engine', () => {
  it('runs the whole stack in-process on the embedded engine, sells out cleanly and passes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'run-'))
    const out = path.join(dir, 'run.json')
    const stream = path.join(dir, 'run.ndjson')
    const summary = path.join(dir, 'summary.md')
    const r = await runCli(['scenario', 'run', scenarioFile(SMALL + RELAXED), '--out', out, '--out-stream', stream, '--dashboard'], {
      env: {DATABASE_URL: undefined, GITHUB_STEP_SUMMARY: summary},
      timeoutMs: 90_000,
    })
    expect(r.code, r.stderr + r.stdout).toBe(0)
    expect(r.stdout).toContain('PASS')
    expect(r.stderr).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    const result = JSON.parse(readFileSync(out, 'utf8'))
    // the stream holds every second of the run file's series, per request type, as it went
    const lines = readFileSync(stream, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(new Set(lines.map((l) => l.t)).size).toBe(result.series.length)
    expect(lines.filter((l) => l.type === 'order').reduce((n, l) => n + l.sent, 0)).toBe(result.phases.reduce((n: number, p: {requests: Record<string, {sent: number}>}) => n + (p.requests.order?.sent ?? 0), 0))
    // GITHUB_STEP_SUMMARY gets the verdict as Markdown
    expect(readFileSync(summary, 'utf8')).toMatch(/PASS/)
    expect(readFileSync(summary, 'utf8')).toMatch(/\| order \|/)
    expect(result.verdict).toMatchObject({pass: true, exitCode: 0})
    expect(result.invariants.map((i: {name: string; pass: boolean}) => [i.name, i.pass])).toEqual([
      ['no_oversell', true],
      ['no_duplicate_orders', true],
      ['every_ack_persisted', true],
      ['stock_conserved', true],
      // the same run's black-box invariants, from the answers alone, in the same table
      ['acked_units_le_stock', true],
      ['one_order_per_key', true],
      ['replay_identical', true],
      ['no_sold_out_then_sale', true],
    ])
    expect(result.stats).toMatchObject({unitsSold: 40, dropStatus: 'sold_out', notifySampled: 5, notifyMissed: 0})
    expect(result.stats.soldOutAnswers).toBeGreaterThan(0)
    expect(result.stats.stockSeries.length).toBeGreaterThan(2)
    expect(result.metrics.notify.summary.count).toBe(5)
    // the saved run re-renders
    const report = await runCli(['report', out])
    expect(report.code).toBe(0)
    expect(report.stdout).toContain('small-race')
  })

  it('catches a broken stock strategy with exit 98', async () => {
    const scenario = parseScenario(SMALL + RELAXED)
    // the fault: a strategy that sells without taking stock (a phantom order past the stock)
    const handle = runScenario({
      scenario,
      db: {kind: 'embedded', dir: null},
      secret: 'test-secret-123',
      onDropLive: async ({db, dropId}) => {
        await db.query(`INSERT INTO orders (user_id, drop_id, qty, idempotency_key) VALUES (600, $1, 45, 'phantom')`, [dropId])
      },
    })
    const result = await handle.result
    const failed = result.invariants.filter((i) => !i.pass).map((i) => i.name)
    expect(failed).toEqual(expect.arrayContaining(['no_oversell', 'stock_conserved']))
    expect(verdictError(result)?.exitCode).toBe(ExitCode.invariantViolated)
  })

})

describe('livedrop scenario validate', () => {
  it('passes the shipped scenarios and names every problem of a bad file with exit 4', async () => {
    const ok = await runCli(['scenario', 'validate', 'scenarios/celebrity-drop.yaml', 'scenarios/sold-out-race.yaml', '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout).scenarios.map((s: {name: string}) => s.name)).toEqual(['celebrity-drop', 'sold-out-race'])
    const bad = await runCli(['scenario', 'validate', scenarioFile(SMALL.replace('stock: 40', 'stock: 0').replace('duration: 3s', 'duration: soon')), 'scenarios/steady-browse.yaml'])
    expect(bad.code).toBe(4)
    expect(bad.stderr).toMatch(/scenario\.yaml:4:\d+ drop\.stock/)
    expect(bad.stderr).toMatch(/scenario\.yaml:\d+:\d+ phases\[1\]\.duration/)
    expect(bad.stdout).toContain('steady-browse')
  })
})

describe('livedrop scenario run --mode saturate', () => {
  it('climbs connection steps against the in-process stack and reports the best one meeting the read thresholds', async () => {
    const r = await runCli(['scenario', 'run', scenarioFile(SMALL + RELAXED), '--mode', 'saturate', '--step-seconds', '1', '--json'], {env: {DATABASE_URL: undefined}, timeoutMs: 90_000})
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result.steps.length).toBeGreaterThanOrEqual(2)
    expect(result.steps[0].connections).toBe(1)
    expect(result.steps.every((s: {throughput: number}) => s.throughput > 0)).toBe(true)
    expect(result.best).not.toBeNull()
    expect(result.best.pass).toBe(true)
    expect(['thresholds failed', 'throughput stopped rising', 'all steps ran']).toContain(result.stoppedBecause)
  })
})
