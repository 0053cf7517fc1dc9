import {afterEach, describe, expect, it} from 'vitest'
import {ThresholdFailedError, VoidRunError} from '../src/core/errors.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import {runScenario, verdictError, type RunResult} from '../src/sim/run/index.js'
import {renderHtml} from '../src/sim/report/html.js'
import {renderJUnit} from '../src/sim/report/junit.js'
import {renderReport} from '../src/sim/report/tables.js'
import {parseScenario} from '../src/sim/scenario/loader.js'

/**
 * The void rule end to end on the real generator thread (a worker, as in `scenario run`): a late
 * send only makes the measured latency worse, so lateness voids a run only when it could have
 * turned a pass into the failure measured. The generator is starved with a real busy loop in
 * its own thread (testStarve), never with faked figures.
 */
let target: TestTarget | undefined
afterEach(async () => {
  await target?.close()
  target = undefined
})

const WORLD = {users: 100, creators: 5, products: 10, dropId: 1, secret: 'test-secret'}

async function run(thresholds: string[], testStarve?: {everyMs: number; forMs: number}): Promise<RunResult> {
  const scenario = parseScenario(
    `name: void-rule
drop: {stock: 10}
arrival: constant
notify: {sample: 0}
generator: {slackMs: 10, connections: 64}
phases: [{name: p, duration: 3s, rates: {browse_product: 60, browse_drop: 30}}]
thresholds: ${JSON.stringify(thresholds)}
`,
    'void-rule.yaml',
  )
  return runScenario({scenario, target: target!.url, world: WORLD, testStarve}).result
}

describe('the void rule on a real generator thread', () => {
  it('a run with a few late sends that meets its thresholds passes (exit 0), its lateness reported', async () => {
    target = await startTestTarget()
    // 60 ms of every second the generator's thread is busy: the sends due then go out late
    const result = await run(['read.p95 < 200ms'], {everyMs: 1000, forMs: 60})
    expect(result.generator.late).toBeGreaterThan(0)
    // more late sends than the old rule allowed (1%): it used to stop such a run as void
    expect(result.generator.lateFraction).toBeGreaterThan(0.01)
    expect(result.generator.worstLagMs).toBeGreaterThan(30)
    expect(result.generator.cpu).toBeGreaterThan(0.02)
    expect(result.phases[0].requests.browse_product).toMatchObject({scheduled: 180, completed: 180, unsent: 0})
    expect(result.void).toBeNull()
    expect(result.verdict).toMatchObject({pass: true, exitCode: 0})
    expect(verdictError(result)).toBeNull()
    expect(renderReport(result)).toMatch(/^generator: \d+\.\d\d% of sends late \(\d+ > 10ms\), worst lag [\d.]+ms, CPU \d+% of its thread$/m)
  })

  it('a starved generator thread makes a failing run void (exit 100), naming the thresholds and by how much', async () => {
    target = await startTestTarget()
    // busy half the time in 250 ms blocks: half the sends go out up to 250 ms late
    const result = await run(['read.p95 < 150ms', 'errors.rate < 1%'], {everyMs: 500, forMs: 250})
    expect(result.generator.lateFraction).toBeGreaterThan(0.2)
    expect(result.generator.stall).toBeNull()
    const measured = result.thresholds.find((t) => t.expression === 'read.p95 < 150ms')!
    expect(measured).toMatchObject({pass: false})
    expect(measured.actual).toBeGreaterThan(150)
    expect(result.void?.kind).toBe('lateness')
    const flips = result.void!.detail.thresholds as Array<{expression: string; actual: number; excused: number}>
    expect(flips).toEqual([expect.objectContaining({expression: 'read.p95 < 150ms', scope: 'run', actual: measured.actual})])
    expect(flips[0].excused).toBeLessThan(150)
    expect(result.void!.reason).toMatch(/read\.p95 < 150ms \[run\]: [\d.]+ms measured, [\d.]+ms without the generator's lateness/)
    expect(result.verdict).toMatchObject({void: true, pass: false, exitCode: 100})
    expect(verdictError(result)).toBeInstanceOf(VoidRunError)
    expect(verdictError(result)!.exitCode).toBe(100)

    // every report that shows a verdict says which threshold flipped and by how much
    const text = renderReport(result)
    expect(text).toMatch(/VOID RUN: the generator's late sends could have caused the failure: read\.p95 < 150ms \[run\]/)
    expect(text).toMatch(/✗ read\.p95 < 150ms .*\n +without the generator's lateness: [\d.]+ms \(PASS\)/)
    expect(text).toMatch(/^VOID 100: the generator's late sends could have caused the failure\n/)
    expect(renderJUnit(result)).toMatch(/<failure message="the generator&apos;s late sends could have caused the failure: read\.p95 &lt; 150ms \[run\]: [\d.]+ms measured/)
    expect(renderHtml(result)).toMatch(/without the generator's lateness<\/th>/)
  })

  it('a really slow target fails with 99, not 100, even when some sends were late', async () => {
    // a tiny HTTP server that sleeps 150 ms before every answer
    target = await startTestTarget({delayMs: () => 150})
    const result = await run(['read.p95 < 100ms'], {everyMs: 1000, forMs: 60})
    expect(result.generator.late).toBeGreaterThan(0)
    expect(result.thresholds[0]).toMatchObject({pass: false})
    expect(result.thresholds[0].actual).toBeGreaterThan(150)
    expect(result.void).toBeNull()
    expect(result.verdict).toMatchObject({void: false, exitCode: 99})
    expect(verdictError(result)).toBeInstanceOf(ThresholdFailedError)
  })
})
