import {readFileSync, readdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {ScenarioInvalidError} from '../src/core/errors.js'
import {DEFAULT_SCENARIO, SHIPPED_SCENARIOS_DIR, loadScenario, parseScenario, type ScenarioProblem} from '../src/sim/scenario/loader.js'
import {scaleScenario, scenarioJsonSchema} from '../src/sim/scenario/schema.js'
import {ROOT} from './helpers/cli.js'

const SCENARIOS = path.join(ROOT, 'scenarios')
const SCHEMA_FILE = path.join(SCENARIOS, 'schema.json')

function problems(text: string, file = 'bad.yaml'): ScenarioProblem[] {
  try {
    parseScenario(text, file)
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioInvalidError)
    expect((err as ScenarioInvalidError).exitCode).toBe(4)
    return (err as ScenarioInvalidError).details!.problems as ScenarioProblem[]
  }
  throw new Error('expected the scenario to be refused')
}

describe('scenario schema', () => {
  it('scenarios/schema.json is the one generated from the zod schema', () => {
    const generated = JSON.stringify(scenarioJsonSchema(), null, 2) + '\n'
    // regenerate with: LIVEDROP_WRITE_SCHEMA=1 npx vitest run test/scenario-schema.test.ts
    if (process.env.LIVEDROP_WRITE_SCHEMA === '1') writeFileSync(SCHEMA_FILE, generated)
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(generated)
    const schema = JSON.parse(generated)
    expect(schema.properties.phases.items.properties.rates.properties).toHaveProperty('order')
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'drop', 'phases']))
  })

  it('every shipped scenario is valid; celebrity-drop carries the platform targets', async () => {
    const files = readdirSync(SCENARIOS).filter((f) => /\.ya?ml$/.test(f))
    expect(files.sort()).toEqual(['celebrity-drop.yaml', 'chaos-drop.yaml', 'fanout-storm.yaml', 'sold-out-race.yaml', 'steady-browse.yaml'])
    for (const f of files) await loadScenario(path.join(SCENARIOS, f))

    expect(path.resolve(SHIPPED_SCENARIOS_DIR)).toBe(path.resolve(SCENARIOS))
    const s = await loadScenario(DEFAULT_SCENARIO)
    const reads = (i: number) => ['browse_product', 'browse_drop', 'list_followers', 'notifications'].reduce((n, t) => n + (s.phases[i].rates[t as 'order'] ?? 0), 0)
    expect(reads(0)).toBe(500)
    expect(reads(1)).toBe(1500)
    expect(s.phases[1].rates.order).toBe(150)
    // the burst starts when the drop opens
    expect(s.drop.startOffset).toBe(s.phases[0].duration)
    const total = s.phases.reduce((ms, p) => ms + p.duration, 0)
    expect(total).toBeGreaterThanOrEqual(40_000)
    expect(total).toBeLessThanOrEqual(60_000)
    expect(s.thresholds).toEqual(['read.p95 < 200ms', 'order.p95 < 500ms', 'notify.p95 < 2s', 'errors.rate < 0.1%'])
  })

  it('fills defaults, parses durations to ms, and reads JSON too', () => {
    const s = parseScenario(JSON.stringify({name: 'j', drop: {stock: 5}, phases: [{name: 'a', duration: '1.5s', rates: {order: 10}}]}), 'j.json')
    expect(s.phases[0].duration).toBe(1500)
    expect(s.drop.startOffset).toBe(0)
    expect(s.generator.timeout).toBe(10_000)
    expect(s.engine).toEqual({strategy: 'row', cache: 'memory:3'})
    expect(s.invariants).toEqual(['no_oversell', 'no_duplicate_orders', 'every_ack_persisted'])
    expect(s.order.qty).toEqual({'1': 1})
  })

  it('scale multiplies rates and sizes, not durations', () => {
    const s = parseScenario(`name: s\ndataset: {users: 100, celebrityFollowers: 50}\ndrop: {stock: 10, lowStock: 2}\nphases: [{name: a, duration: 2s, rates: {order: 15, follow: 1}}]`)
    const x = scaleScenario(s, 2.5)
    expect(x.phases[0].rates).toEqual({order: 37.5, follow: 2.5})
    expect(x.phases[0].duration).toBe(2000)
    expect(x.dataset.users).toBe(250)
    expect(x.dataset.celebrityFollowers).toBe(125)
    expect(x.drop).toMatchObject({stock: 25, lowStock: 5})
    expect(parseScenario(`name: s\ndrop: {stock: 10}\nphases: [{name: a, duration: 1s, rates: {order: 4}}]`, 'x', {scale: 0.5}).phases[0].rates.order).toBe(2)
    expect(() => scaleScenario(s, 0)).toThrow(RangeError)
  })
})

describe('scenario errors name file:line:column and the field, all at once', () => {
  it('reports every bad field at its position', () => {
    const text = [
      'name: broken', //                                    1
      'drop:', //                                           2
      '  stock: -3', //                                     3
      'arrival: bursty', //                                 4
      'phases:', //                                         5
      '  - name: warm', //                                  6
      '    duration: soon', //                              7
      '    rates: {browse_product: fast, teleport: 3}', //  8
      '    thresholds: ["read.p95 <", "cpu.p95 < 1ms"]', // 9
      '  - name: warm', //                                  10
      '    duration: 1s', //                                11
      '    rates: {}', //                                   12
      'order:', //                                          13
      '  qty: {one: 1}', //                                 14
      'colour: red', //                                     15
    ].join('\n')
    const found = problems(text).map((p) => `${p.line}:${p.column} ${p.field}`)
    expect(found).toEqual([
      '3:10 drop.stock',
      '4:10 arrival',
      '7:15 phases[0].duration',
      '8:29 phases[0].rates.browse_product',
      '8:35 phases[0].rates.teleport',
      '9:18 phases[0].thresholds[0]',
      '9:32 phases[0].thresholds[1]',
      '10:11 phases[1].name',
      '14:9 order.qty.one',
      '15:1 colour',
    ])
    const all = problems(text)
    expect(all.every((p) => p.file === 'bad.yaml')).toBe(true)
    expect(all.find((p) => p.field === 'arrival')!.message).toMatch(/constant.*poisson/)
    expect(all.find((p) => p.field === 'phases[0].duration')!.message).toMatch(/duration such as/)
    expect(all.find((p) => p.field === 'phases[0].thresholds[1]')!.message).toMatch(/unknown metric "cpu"/)
    expect(all.find((p) => p.field === 'phases[1].name')!.message).toMatch(/duplicate phase name "warm"/)
    expect(all.find((p) => p.field === 'colour')!.message).toMatch(/unknown field/)
  })

  it('names a missing required field at the map that lacks it', () => {
    const found = problems('name: x\nphases:\n  - name: a\n    duration: 1s\n')
    expect(found).toEqual([
      {file: 'bad.yaml', line: 1, column: 1, field: 'drop', message: expect.stringMatching(/required field is missing/)},
      {file: 'bad.yaml', line: 3, column: 5, field: 'phases[0].rates', message: expect.stringMatching(/required field is missing/)},
    ])
  })

  it('reports YAML syntax errors with their position, and JSON files by line too', () => {
    const [p] = problems('name: x\nphases: [\n  {name: a\n', 'y.yaml')
    expect(p.file).toBe('y.yaml')
    expect(p.line).toBeGreaterThanOrEqual(2)
    const json = problems('{\n  "name": "j",\n  "drop": {"stock": "many"},\n  "phases": []\n}', 'j.json')
    expect(json.map((q) => `${q.line}:${q.column} ${q.field}`)).toEqual(['3:21 drop.stock', '4:13 phases'])
  })

  it('the error message itself carries file:line:column field', async () => {
    const err = await loadScenario('/nonexistent/x.yaml').catch((e) => e)
    expect(err).toBeInstanceOf(ScenarioInvalidError)
    expect(err.message).toMatch(/x\.yaml.*ENOENT/)
    try {
      parseScenario('name: x\ndrop: {stock: 0}\nphases: [{name: a, duration: 1s, rates: {}}]', 'one.yaml')
    } catch (e) {
      expect((e as Error).message).toMatch(/^one\.yaml:2:15 drop\.stock: /)
    }
  })
})

describe('scenario limits and hostile files', () => {
  it('refuses an alias bomb (billion laughs) at the first alias, without expanding it', () => {
    const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`)
    const text = `name: bomb\n${levels.join('\n')}\ndrop: {stock: 1}\nphases: [{name: p, duration: 1s, rates: {order: 1}}]\n`
    const started = performance.now()
    const found = problems(text, 'bomb.yaml')
    expect(performance.now() - started).toBeLessThan(2000)
    expect(found).toEqual([{file: 'bomb.yaml', line: 3, column: 10, field: 'l1', message: expect.stringMatching(/alias bomb/)}])
  })

  it('refuses a file past 1 MiB', () => {
    expect(problems(`name: big\n# ${'x'.repeat(1 << 20)}\n`)[0].message).toMatch(/at most 1,048,576/)
  })

  it('refuses absurd rates, durations and dataset sizes at their fields, after --scale too', () => {
    const text = [
      'name: absurd', //                                                    1
      'dataset: {users: 100000000, celebrities: 10, celebrityFollowers: 15000000}', // 2
      'drop: {stock: 10, lowStock: 20}', //                                 3
      'phases:', //                                                         4
      '  - {name: a, duration: 25h, rates: {browse_product: 200000}}', //   5
    ].join('\n')
    const found = problems(text)
    expect(found.map((p) => `${p.line}:${p.column} ${p.field}`)).toEqual([
      '2:18 dataset.users',
      '2:42 dataset.celebrities',
      '3:29 drop.lowStock',
      '5:3 phases',
      '5:37 phases[0].rates',
    ])
    expect(found[1].message).toMatch(/150,000,000 follows \(celebrities × celebrityFollowers\): at most 100,000,000/)
    expect(found[4].message).toMatch(/200,000 requests\/s .*at most 100,000/)
    const fine = 'name: ok\ndrop: {stock: 10}\nphases: [{name: a, duration: 1s, rates: {order: 60000}}]'
    expect(parseScenario(fine).phases[0].rates.order).toBe(60000)
    const err = (() => {
      try {
        parseScenario(fine, 'ok.yaml', {scale: 2})
      } catch (e) {
        return e as ScenarioInvalidError
      }
    })()
    expect(err?.message).toMatch(/ok\.yaml:3:41 phases\[0\]\.rates: 120,000 requests\/s \(all request types\) \(after --scale 2\)/)
    expect(err?.hint).toMatch(/2-core, 24 GiB/)
  })
})

