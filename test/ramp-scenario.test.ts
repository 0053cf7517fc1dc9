import {afterEach, describe, expect, it} from 'vitest'
import {ScenarioInvalidError} from '../src/core/errors.js'
import {exportK6} from '../src/sim/export/k6.js'
import {expectedArrivals} from '../src/sim/load/arrivals.js'
import {runScenario} from '../src/sim/run/index.js'
import {startTestTarget, type TestTarget} from '../src/sim/load/target.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {scaleScenario} from '../src/sim/scenario/schema.js'

const scenario = (phases: string) =>
  parseScenario(
    `name: ramp
drop: {stock: 10}
arrival: constant
notify: {sample: 0}
generator: {slackMs: 10, connections: 32}
phases: ${phases}
`,
    'ramp.yaml',
  )

let target: TestTarget | undefined
afterEach(async () => {
  await target?.close()
  target = undefined
})

describe('rampTo in a scenario', () => {
  it('is read, scaled with --scale, and held to the rate limit at the ramp end too', () => {
    const s = scenario('[{name: up, duration: 10s, rates: {browse_product: 10}, rampTo: {browse_product: 100, order: 20}}]')
    expect(s.phases[0].rampTo).toEqual({browse_product: 100, order: 20})
    expect(scaleScenario(s, 0.5).phases[0].rampTo).toEqual({browse_product: 50, order: 10})
    expect(() => scenario('[{name: up, duration: 10s, rates: {browse_product: 10}, rampTo: {nope: 1}}]')).toThrow(ScenarioInvalidError)
    expect(() => scenario('[{name: up, duration: 10s, rates: {browse_product: 10}, rampTo: {browse_product: 1e9}}]')).toThrow(/phases\[0\]\.rampTo/)
  })

  it('exports to k6 as ramping-arrival-rate stages: a step to rates, then a linear ramp to rampTo', () => {
    const s = scenario('[{name: flat, duration: 5s, rates: {browse_product: 10}}, {name: up, duration: 10s, rates: {browse_product: 10}, rampTo: {browse_product: 100, order: 20}}]')
    const script = exportK6(s)
    const block = (type: string) => script.slice(script.indexOf(`${type}: {`), script.indexOf('maxVUs', script.indexOf(`${type}: {`)))
    expect(block('browse_product')).toMatch(/executor: "ramping-arrival-rate"/)
    expect(block('browse_product').replace(/\s+/g, ' ')).toContain(
      'stages: [ {"target":10,"duration":"0s"}, {"target":10,"duration":"5000ms"}, {"target":10,"duration":"0s"}, {"target":100,"duration":"10000ms"}, ]',
    )
    expect(block('order').replace(/\s+/g, ' ')).toContain('{"target":0,"duration":"0s"}, {"target":0,"duration":"5000ms"}, {"target":0,"duration":"0s"}, {"target":20,"duration":"10000ms"}')
  })

  it('a run follows the ramp: sends per second match its integral, the phase reports its mean target', async () => {
    target = await startTestTarget()
    const s = scenario('[{name: up, duration: 4s, rates: {browse_product: 20}, rampTo: {browse_product: 180}}]')
    const world = {users: 100, creators: 5, products: 10, dropId: 1, secret: 'test-secret'}
    const result = await runScenario({scenario: s, target: target.url, world}).result
    const stats = result.phases[0].requests.browse_product
    expect(stats.targetRate).toBe(100)
    expect(stats.scheduled).toBe(Math.ceil(expectedArrivals(20, 180, 4, 4)))
    const sent = result.series.filter((p) => p.t < 4).map((p) => p.types.browse_product?.sent ?? 0)
    // seconds of the run clock: the generator's start offsets them by a few ms at most
    sent.forEach((n, sec) => expect(Math.abs(n - (expectedArrivals(20, 180, 4, sec + 1) - expectedArrivals(20, 180, 4, sec))), `second ${sec}: ${sent}`).toBeLessThanOrEqual(3))
  })
})
