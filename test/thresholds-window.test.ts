import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {RunResult} from '../src/sim/metrics/result.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import {runCli} from './helpers/cli.js'
import {usePostgres} from './helpers/db.js'
import {scenarioFile} from './helpers/scenario.js'

const pg = usePostgres()
let target: TestTarget | undefined
afterAll(async () => {
  await target?.close()
})

/**
 * A window threshold end to end through `scenario run`: 400 product reads over 8 s against a
 * plain target that holds 15 consecutive ones for 600 ms. Over the whole run that is under 4% of
 * the reads, so the p95 stays fast; in the 2 s window around them it is over 5%, so that window's
 * p95 is slow.
 */
const SCENARIO = `
name: window-gate
dataset: {users: 50, creators: 2, celebrityFollowers: 10, productsPerCreator: 1, seed: 1}
drop: {stock: 10, startOffset: 1s}
arrival: constant
notify: {sample: 0}
generator: {slackMs: 200, maxLateFraction: 0.5, maxLagMs: 2000}
phases: [{name: steady, duration: 8s, rates: {browse_product: 50}}]
thresholds:
  - browse_product.p95 < 250ms
  - browse_product.p95 < 250ms over 2s
  - order.p95? < 500ms
invariants: []
`

describe('window thresholds through scenario run', () => {
  it('a slow burst fails the 2 s window threshold (exit 99, worst window named) while the whole-run one passes', async () => {
    let products = 0
    target = await startTestTarget({delayMs: (req) => (req.url!.startsWith('/products/') && ++products > 200 && products <= 215 ? 600 : 0)})
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'livedrop-window-')), 'run.json')
    const r = await runCli(['scenario', 'run', scenarioFile(SCENARIO), '--db', pg.url!, '--target', target.url, '--out', out], {timeoutMs: 120_000})
    expect(r.code, r.stderr).toBe(99)
    expect(r.stderr).toMatch(/1 threshold\(s\) failed: browse_product\.p95 < 250ms over 2s \[run\]/)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    const [whole, window, optional] = result.thresholds
    expect(whole).toMatchObject({expression: 'browse_product.p95 < 250ms', pass: true, window: null})
    expect(whole.actual).toBeLessThan(250)
    expect(window).toMatchObject({expression: 'browse_product.p95 < 250ms over 2s', pass: false, window: {seconds: 2}})
    expect(window.actual).toBeGreaterThanOrEqual(600)
    // the slow reads were the 201st to 215th at 50/s: answered in the run's 4th or 5th second
    expect(window.window!.startS).toBeGreaterThanOrEqual(3)
    expect(window.window!.startS).toBeLessThanOrEqual(5)
    // no order was sent: the optional threshold passes and says so
    expect(optional).toMatchObject({expression: 'order.p95? < 500ms', pass: true, noData: true})
    expect(r.stdout).toContain(`(2s window from ${window.window!.startS}s)`)
    expect(r.stdout).toMatch(/order\.p95\? < 500ms .*no data \(optional\)/)
    // every second of the series carries its histograms, so `report` and `report merge` can judge windows again
    expect(result.series.every((p) => p.types.browse_product?.histograms?.corrected)).toBe(true)
  })
})
