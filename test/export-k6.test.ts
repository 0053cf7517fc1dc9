import {execFile} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import ts from 'typescript'
import {afterAll, describe, expect, it} from 'vitest'
import {verifyToken, mintToken as serverMint} from '../src/core/tokens.js'
import {exportK6} from '../src/sim/export/k6.js'
import {loadScenario, parseScenario} from '../src/sim/scenario/loader.js'
import {REQUEST_TYPES, type Scenario} from '../src/sim/scenario/schema.js'
import {ROOT} from './helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-k6-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const shipped = readdirSync(path.join(ROOT, 'scenarios')).filter((f) => f.endsWith('.yaml'))

function tsc(files: string[]): Promise<{code: number; out: string}> {
  const project = path.join(dir, `tsconfig-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(
    project,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        noUnusedLocals: true,
        noUnusedParameters: true,
        target: 'es2020',
        module: 'esnext',
        moduleResolution: 'bundler',
        lib: ['es2020'],
        // only k6's types: no DOM, no Node
        types: ['k6'],
        typeRoots: [path.join(ROOT, 'node_modules/@types')],
      },
      files,
    }),
  )
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], {timeout: 60_000}, (err, stdout, stderr) =>
      resolve({code: err ? ((err as {code?: number}).code ?? 1) : 0, out: stdout + stderr}),
    )
  })
}

describe('scenario export --format k6', () => {
  it('every shipped scenario (and a scaled one) exports a script that type-checks against @types/k6', async () => {
    expect(shipped.length).toBeGreaterThanOrEqual(4)
    const files: string[] = []
    for (const f of shipped) {
      for (const scale of [1, 0.37]) {
        const s = await loadScenario(path.join(ROOT, 'scenarios', f), {scale})
        const out = path.join(dir, `${path.basename(f, '.yaml')}-${scale}.k6.ts`)
        writeFileSync(out, exportK6(s, {file: `scenarios/${f}`}))
        files.push(out)
      }
    }
    const result = await tsc(files)
    expect(result.out).toBe('')
    expect(result.code).toBe(0)
  }, 60_000)

  it('a scenario with every request type (product edits and removals too) exports a script that type-checks', async () => {
    const every = parseScenario(
      `name: every-type\ndataset: {productsPerCreator: 3}\ndrop: {stock: 10}\nphases:\n  - name: all\n    duration: 5s\n    rates: {${REQUEST_TYPES.map((t) => `${t}: 2`).join(', ')}}\n`,
    )
    const out = path.join(dir, 'every-type.k6.ts')
    const script = exportK6(every)
    expect(script).toContain('http.patch(url, body, params)')
    // a removed product's 404 is an answer for browse_product once the scenario removes products
    expect(script).toContain('browse_product: http.expectedStatuses({min: 200, max: 399}, 404)')
    writeFileSync(out, script)
    const result = await tsc([out])
    expect(result.out).toBe('')
    expect(result.code).toBe(0)
  }, 60_000)

  it('the type check is real: a script misusing the k6 API fails it', async () => {
    const bad = path.join(dir, 'bad.k6.ts')
    writeFileSync(bad, `import crypto from 'k6/crypto'\nimport http from 'k6/http'\nexport default function (): void {\n  http.get(42)\n  crypto.hmac('sha256', 's', 'x', 'base32')\n}\n`)
    const result = await tsc([bad])
    expect(result.code).not.toBe(0)
    expect(result.out).toMatch(/bad\.k6\.ts\(4,/)
    expect(result.out).toMatch(/bad\.k6\.ts\(5,/)
  }, 60_000)
})

interface Call {
  method: string
  url: string
  body: string | null
  params: {headers: Record<string, string>; tags: Record<string, string>; responseCallback: {ok: number[]}}
}

/**
 * Runs the generated script's request functions under Node with small stand-ins for the k6
 * modules (http records calls; crypto and encoding use node:crypto), to check what it sends.
 */
async function loadScript(s: Scenario, env: Record<string, string>) {
  const moduleDir = path.join(dir, `run-${Math.random().toString(36).slice(2)}`)
  const k6 = path.join(moduleDir, 'node_modules/k6')
  mkdirSync(k6, {recursive: true})
  writeFileSync(path.join(k6, 'package.json'), JSON.stringify({name: 'k6', type: 'module', exports: {'./http': './http.js', './crypto': './crypto.js', './encoding': './encoding.js', './execution': './execution.js'}}))
  writeFileSync(
    path.join(k6, 'http.js'),
    `const rec = (method) => (url, body, params) => { globalThis.__calls.push({method, url, body: body ?? null, params}) }
export default {
  get: (url, params) => rec('GET')(url, null, params), post: rec('POST'), del: rec('DELETE'),
  expectedStatuses: (...a) => ({ok: a.flatMap((x) => typeof x === 'number' ? [x] : Array.from({length: x.max - x.min + 1}, (_, i) => x.min + i))}),
}`,
  )
  writeFileSync(path.join(k6, 'crypto.js'), `import {createHmac} from 'node:crypto'\nexport default {hmac: (alg, key, data, enc) => { if (enc !== 'base64rawurl') throw new Error(enc); return createHmac(alg, key).update(data).digest('base64url') }}`)
  writeFileSync(path.join(k6, 'encoding.js'), `export default {b64encode: (s, v) => { if (v !== 'rawurl') throw new Error(v); return Buffer.from(s).toString('base64url') }}`)
  writeFileSync(
    path.join(k6, 'execution.js'),
    `let it = 0\nexport default {scenario: {get startTime() { return globalThis.__scenarioStart }}, vu: {idInTest: 3, get iterationInInstance() { return it++ }}}`,
  )
  const g = globalThis as unknown as {__ENV: Record<string, string>; __calls: Call[]; __scenarioStart: number}
  g.__ENV = env
  g.__calls = []
  g.__scenarioStart = Date.now()
  const js = ts.transpileModule(exportK6(s), {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2020}}).outputText
  const file = path.join(moduleDir, 'script.mjs')
  writeFileSync(file, js)
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown> & {options: {scenarios: Record<string, Record<string, unknown>>; thresholds: Record<string, string[]>}}
  return {mod, calls: g.__calls, setStart: (ms: number) => (g.__scenarioStart = ms)}
}

describe('the exported script, run with k6 stand-ins', () => {
  it('sends the scenario\u2019s traffic: routes, tokens the server accepts, idempotency keys with retries, tags per phase', async () => {
    const s = await loadScenario(path.join(ROOT, 'scenarios/celebrity-drop.yaml'))
    const secret = 'a-test-secret-of-length'
    const {mod, calls, setStart} = await loadScript(s, {TARGET: 'http://drop.test:9/', DROP_ID: '7', LIVEDROP_SECRET: secret})

    // one k6 scenario per request type, rates stepping with the phases, lasting the whole run
    const total = s.phases.reduce((n, p) => n + p.duration, 0)
    expect(Object.keys(mod.options.scenarios).sort()).toEqual(REQUEST_TYPES.filter((t) => s.phases.some((p) => p.rates[t])).sort())
    for (const [type, sc] of Object.entries(mod.options.scenarios)) {
      expect(sc.exec).toBe(type)
      expect(typeof mod[type]).toBe('function')
      const unit = Number(String(sc.timeUnit).replace('s', ''))
      if (sc.executor === 'constant-arrival-rate') {
        expect(sc.duration).toBe(`${total}ms`)
        for (const p of s.phases) expect((sc.rate as number) / unit).toBeCloseTo(p.rates[type as keyof typeof p.rates] ?? 0, 9)
      } else {
        const stages = sc.stages as Array<{target: number; duration: string}>
        expect(stages.reduce((n, st) => n + Number(st.duration.replace(/ms|s/, '')), 0)).toBe(total)
        s.phases.forEach((p, i) => expect(stages[2 * i + 1].target / unit).toBeCloseTo(p.rates[type as keyof typeof p.rates] ?? 0, 9))
      }
    }
    expect(mod.options.thresholds).toEqual({
      'http_req_duration{req_group:read}': ['p(95)<200'],
      'http_req_duration{req_type:order}': ['p(95)<500'],
      http_req_failed: ['rate<0.001'],
      'http_req_duration{req_type:order,phase:drop-opens}': ['p(95)<500'],
    })

    // tokens are the server's own: byte for byte, and verified with its secret
    const mint = mod.mintToken as (u: number, secret: string, iat: number) => string
    expect(mint(42, secret, 1_799_999_999)).toBe(serverMint(42, secret, new Date(1_799_999_999_000)))

    const data = (mod.setup as () => {runId: string})()
    const n = 3000
    for (let i = 0; i < n; i++) (mod.order as (d: unknown) => void)(data)
    for (const type of ['browse_product', 'browse_drop', 'list_followers', 'follow', 'unfollow', 'notifications']) for (let i = 0; i < 200; i++) (mod[type] as (d: unknown) => void)(data)

    const orders = calls.filter((c) => c.url === 'http://drop.test:9/orders')
    expect(orders).toHaveLength(n)
    const byKey = new Map<string, Call[]>()
    for (const o of orders) {
      expect(o.method).toBe('POST')
      const body = JSON.parse(o.body!) as {dropId: number; qty: number}
      expect(body.dropId).toBe(7)
      expect([1, 2, 3]).toContain(body.qty)
      const user = verifyToken(o.params.headers.Authorization.replace('Bearer ', ''), secret)
      expect(user).toBeGreaterThanOrEqual(1)
      expect(user).toBeLessThanOrEqual(s.dataset.users)
      expect(o.params.headers['Idempotency-Key']).toMatch(/^[\x21-\x7e]{1,255}$/)
      expect(o.params.tags).toEqual({req_type: 'order', phase: 'sustained'})
      // a sold-out 409 counts as an answer, not a failure
      expect(o.params.responseCallback.ok).toContain(409)
      const key = o.params.headers['Idempotency-Key']
      byKey.set(key, [...(byKey.get(key) ?? []), o])
    }
    // retries repeat the same key with the same user and body; about retryRate of attempts are retries
    for (const same of byKey.values()) for (const o of same) expect([o.body, o.params.headers.Authorization]).toEqual([same[0].body, same[0].params.headers.Authorization])
    const retries = n - byKey.size
    expect(retries / n).toBeGreaterThan(s.order.retryRate * 0.6)
    expect(retries / n).toBeLessThan(s.order.retryRate * 1.4)
    const qty1 = orders.filter((o) => JSON.parse(o.body!).qty === 1).length / n
    expect(qty1).toBeGreaterThan(0.8)
    expect(qty1).toBeLessThan(0.9)

    // reads and writes hit the serve routes; Zipf makes the celebrity (rank 1) the most visited
    const of = (re: RegExp) => calls.filter((c) => re.test(c.url))
    const products = of(/\/products\/\d+$/)
    expect(products).toHaveLength(200)
    const ids = products.map((c) => Number(c.url.split('/').pop()))
    expect(Math.max(...ids)).toBeLessThanOrEqual(s.dataset.creators * s.dataset.productsPerCreator)
    expect(ids.filter((id) => id === 1).length).toBeGreaterThan(ids.filter((id) => id === 10).length)
    expect(products[0].params.tags).toEqual({req_type: 'browse_product', phase: 'sustained', req_group: 'read'})
    expect(products[0].params.headers.Authorization).toBeUndefined()
    expect(of(/\/drops\/7(\/stock)?$/)).toHaveLength(200)
    expect(of(/\/creators\/\d+\/followers\?limit=100$/)).toHaveLength(200)
    const follows = calls.filter((c) => /\/creators\/\d+\/follow$/.test(c.url))
    expect(follows.filter((c) => c.method === 'POST')).toHaveLength(200)
    expect(follows.filter((c) => c.method === 'DELETE')).toHaveLength(200)
    for (const c of follows) {
      const creator = Number(c.url.split('/')[4])
      // creator k is user k: nobody follows themselves
      expect(verifyToken(c.params.headers.Authorization.slice(7), secret)).not.toBe(creator)
      expect(c.params.tags.req_group).toBe('write')
    }
    expect(of(/\/me\/notifications\?limit=20$/).every((c) => verifyToken(c.params.headers.Authorization.slice(7), secret) !== null)).toBe(true)

    // the phase tag follows the clock of the scenario
    setStart(Date.now() - 25_000)
    ;(mod.order as (d: unknown) => void)(data)
    expect(calls.at(-1)!.params.tags.phase).toBe('drop-opens')
    setStart(Date.now() - 49_000)
    ;(mod.browse_product as (d: unknown) => void)(data)
    expect(calls.at(-1)!.params.tags.phase).toBe('cool-down')
  }, 30_000)
})
