import {execFile} from 'node:child_process'
import {createHmac} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import vm from 'node:vm'
import ts from 'typescript'
import {afterAll, describe, expect, it} from 'vitest'
import {createRandom} from '../src/core/random.js'
import {verifyToken} from '../src/core/tokens.js'
import {exportK6, k6ExecutionSegment} from '../src/sim/export/k6.js'
import {parseScenario} from '../src/sim/scenario/loader.js'
import {createBuilders} from '../src/sim/traffic/builders.js'
import {ROOT, runCli} from './helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-k6-segments-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const SECRET = 'k6-segment-secret-0123456789'

const scenario = parseScenario(`
name: k6-split
dataset: {users: 3000, creators: 20, productsPerCreator: 2}
drop: {stock: 50}
order: {retryRate: 0.2}
phases:
  - {name: a, duration: 5s, rates: {order: 30, browse_product: 50}}
`)

/** The script's options, as k6 would read them: the module run with stand-ins for the k6 modules. */
function loadScript(script: string, executionSegment: string | undefined) {
  const js = ts.transpileModule(script, {compilerOptions: {module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true}}).outputText
  const calls: Array<{headers: Record<string, string>}> = []
  let iteration = 0
  const modules: Record<string, unknown> = {
    'k6/http': {post: (_url: string, _body: string, params: {headers: Record<string, string>}) => void calls.push(params), get: () => {}, expectedStatuses: () => ({})},
    'k6/crypto': {hmac: (alg: string, key: string, data: string) => createHmac(alg, key).update(data).digest('base64url')},
    'k6/encoding': {b64encode: (v: string) => Buffer.from(v).toString('base64url')},
    'k6/execution': {
      scenario: {startTime: Date.now()},
      test: {options: {executionSegment: executionSegment ?? null}},
      vu: {idInTest: 5, get iterationInInstance() {
        return iteration++
      }},
    },
  }
  const exports: Record<string, unknown> = {}
  const context = vm.createContext({exports, require: (name: string) => ({__esModule: true, default: modules[name]}), __ENV: {LIVEDROP_SECRET: SECRET}, __random: createRandom(4)})
  vm.runInContext('Math.random = __random', context)
  vm.runInContext(js, context)
  return {exports, calls}
}

/** The buyers of n orders: the k6 script's under an execution segment, or the generator's builders under --segment. */
function k6Buyers(executionSegment: string | undefined, n: number): number[] {
  const {exports, calls} = loadScript(exportK6(scenario), executionSegment)
  const data = (exports.setup as () => unknown)()
  for (let i = 0; i < n; i++) (exports.order as (d: unknown) => void)(data)
  return calls.map((c) => verifyToken(c.headers.Authorization.replace('Bearer ', ''), SECRET)!)
}
function generatorBuyers(segment: {index: number; count: number} | undefined, n: number): number[] {
  const {builders} = createBuilders(scenario, {users: 3000, creators: 20, products: 40, dropId: 1, secret: SECRET}, {segment})
  const random = createRandom(4)
  return Array.from({length: n}, (_, seq) => verifyToken(builders.order({type: 'order', phase: 'a', seq, intendedMs: seq, random}).headers!.Authorization.replace('Bearer ', ''), SECRET)!)
}

describe('scenario export --format k6 --segment i/n: k6 execution segments', () => {
  it('k6ExecutionSegment writes segment i of n and the whole sequence as k6 reads them', () => {
    expect(k6ExecutionSegment({index: 1, count: 2})).toEqual({executionSegment: '0:1/2', executionSegmentSequence: '0,1/2,1'})
    expect(k6ExecutionSegment({index: 2, count: 4})).toEqual({executionSegment: '1/4:1/2', executionSegmentSequence: '0,1/4,1/2,3/4,1'})
    expect(k6ExecutionSegment({index: 3, count: 3})).toEqual({executionSegment: '2/3:1', executionSegmentSequence: '0,1/3,2/3,1'})
  })

  it('the CLI bakes the segment into the options and type-checks against @types/k6; without it no segment is set', async () => {
    const out = path.join(dir, 'seg.k6.ts')
    const r = await runCli(['scenario', 'export', path.join(ROOT, 'scenarios/celebrity-drop.yaml'), '--format', 'k6', '--segment', '2/3', '--out', out])
    expect(r.code, r.stderr).toBe(0)
    const script = readFileSync(out, 'utf8')
    const {exports} = loadScript(script, undefined)
    const options = exports.options as Record<string, unknown>
    expect(options).toMatchObject({executionSegment: '1/3:2/3', executionSegmentSequence: '0,1/3,2/3,1'})
    expect(Object.keys(options.scenarios as object).length).toBeGreaterThan(0)
    const plain = loadScript(exportK6(scenario), undefined).exports.options as Record<string, unknown>
    expect(plain.executionSegment).toBeUndefined()
    expect(plain.executionSegmentSequence).toBeUndefined()

    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({compilerOptions: {strict: true, noEmit: true, noUnusedLocals: true, target: 'es2020', module: 'esnext', moduleResolution: 'bundler', lib: ['es2020'], types: ['k6'], typeRoots: [path.join(ROOT, 'node_modules/@types')]}, files: [out]}))
    const tsc = await new Promise<{code: number; out: string}>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], {timeout: 60_000}, (err, stdout, stderr) => resolve({code: err ? 1 : 0, out: stdout + stderr})),
    )
    expect(tsc.out).toBe('')
    expect(tsc.code).toBe(0)
  }, 90_000)

  it('bad --segment is exit 2 naming the flag', async () => {
    const r = await runCli(['scenario', 'export', path.join(ROOT, 'scenarios/celebrity-drop.yaml'), '--segment', '4/3'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--segment: expected i/n')
  }, 30_000)

  it("an instance under execution segment i of n picks the generator's --segment i/n buyers, draw by draw; unsplit both keep every buyer", () => {
    expect(k6Buyers('1/3:2/3', 300)).toEqual(generatorBuyers({index: 2, count: 3}, 300))
    expect(k6Buyers('1/3:2/3', 300).every((u) => u % 3 === (21 + 1) % 3)).toBe(true)
    expect(k6Buyers(undefined, 300)).toEqual(generatorBuyers(undefined, 300))
    expect(k6Buyers('0:1', 300)).toEqual(generatorBuyers(undefined, 300))
    // unequal segments keep every buyer (their keys still differ by VU)
    expect(k6Buyers('0:1/3', 50)).toEqual(generatorBuyers({index: 1, count: 3}, 50))
    expect(k6Buyers('0:2/3', 300)).toEqual(generatorBuyers(undefined, 300))
  })
})
