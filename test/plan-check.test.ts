import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {RELAXED, SMALL, scenarioFile} from './helpers/scenario.js'

/** A real run with measured stats.cpu (test/fixtures/plan/README.md): the costs the prediction uses. */
const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/plan/sold-out-race-x0.2.json')
const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-plan-check-'))
let name = ''
let url = ''

beforeAll(async () => {
  ;({name, url} = await createTestDatabase())
})
afterAll(async () => {
  rmSync(dir, {recursive: true, force: true})
  if (name) await dropTestDatabase(name)
})

describe('livedrop plan --check (end to end, tiny scale)', () => {
  it('predicts the capacity of another mix from the run, measures it with --mode capacity, prints both and the error', async () => {
    // another mix than the fixture's (reads, follows and notifications beside the orders), at low rates
    const r = await runCli(['plan', '--check', FIXTURE, '--scenario', scenarioFile(SMALL + RELAXED), '--scale', '0.5', '--db', url, '--step-seconds', '2', '--max-scale', '1.5', '--json'], {
      timeoutMs: 90_000,
    })
    expect(r.code, r.stderr).toBe(0)
    const c = JSON.parse(r.stdout)
    expect(c.kind).toBe('livedrop-plan-check')
    expect(c.run).toMatchObject({name: 'sold-out-race', scale: 0.2})
    expect(c.scenario).toMatchObject({name: 'small-race', scale: 0.5})
    // the busiest phase at ×0.5: 25 reads/s, 20 order attempts/s, 2 writes/s
    expect(c.mix).toEqual({phase: 'race', read: 25, order: 20, write: 2, total: 47})
    expect(c.ceiling).toMatchObject({value: 0.8, source: 'default'})
    expect(Number.isFinite(c.predicted.scale) && c.predicted.scale > 0).toBe(true)
    expect(c.predicted.reqPerSec).toBeCloseTo(c.predicted.scale * c.mix.total, 6)
    expect(['machine', 'serve']).toContain(c.predicted.limitedBy)
    // the fixture sent no writes: their cost is assumed, and said so
    expect(c.assumed.join('\n')).toMatch(/write requests: the measured run sent too few/)
    // measured: ×1 and ×1.5 (--max-scale) run for real
    expect(Number.isFinite(c.measured.scale) && c.measured.scale > 0).toBe(true)
    expect(c.measured.reqPerSec).toBeCloseTo(c.measured.scale * c.mix.total, 6)
    expect(c.capacity.kind).toBe('livedrop-capacity')
    expect(c.capacity.steps.length).toBeGreaterThanOrEqual(1)
    expect(c.capacity.steps[0].data.durationMs).toBeLessThan(10_000)
    expect(c.errorPct).toBeCloseTo(((c.predicted.scale - c.measured.scale) / c.measured.scale) * 100, 0)
    expect(c.withinGoal).toBe(Math.abs(c.errorPct) <= 25)
    expect(c.machine.loadBefore).toHaveLength(3)

    // the check's JSON calibrates the next check's ceiling: that mix's prediction gives its measured capacity back
    const checkFile = path.join(dir, 'check.json')
    writeFileSync(checkFile, r.stdout)
    const again = await runCli(['plan', '--check', FIXTURE, '--scenario', scenarioFile(SMALL + RELAXED), '--scale', '0.5', '--db', url, '--step-seconds', '2', '--max-scale', '1', '--calibrate', checkFile], {
      timeoutMs: 90_000,
    })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(new RegExp(`^Predicted  ×${Number(c.measured.scale.toPrecision(3))} `.replace('.', '\\.'), 'm'))
    expect(again.stdout).toMatch(/^Measured +(≥ )?×[\d.]+ +[\d,]+ req\/s/m)
    expect(again.stdout).toMatch(/^Error +[+-]?[\d.]+% \(goal within 25%: (met|missed)\)/m)
    expect(again.stdout).toMatch(/^Ceiling: the measured capacity ×[\d.]+ .*of .*check\.json/m)
    expect(again.stdout).toMatch(/^Machine: load average /m)
  }, 200_000)

  it('refuses what cannot be checked: a --calibrate file that is no capacity, --scenario without --check', async () => {
    const bad = path.join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify({kind: 'livedrop-run'}))
    const r = await runCli(['plan', '--check', FIXTURE, '--calibrate', bad, '--db', url])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--calibrate: .*bad\.json is neither a capacity result nor a plan check/)
    const r2 = await runCli(['plan', '--from', FIXTURE, '--scenario', 'x.yaml'])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(/--check/)
  }, 60_000)
})
