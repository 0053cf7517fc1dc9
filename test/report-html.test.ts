import {execFile, execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {compareRuns} from '../src/sim/report/compare.js'
import {chartData, renderHtml} from '../src/sim/report/html.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'

/** Headless Chromium: Debian's `chromium`, which the test setup installs (test/helpers/global-setup.ts). */
const chromium = execFileSync('sh', ['-c', 'command -v chromium'], {encoding: 'utf8'}).trim()

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-html-'))
// chromium's helpers may still be writing into the profile for a moment after it exits
afterAll(() => rmSync(dir, {recursive: true, force: true, maxRetries: 10, retryDelay: 200}))

function browse(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      chromium,
      // no network, no profile of the machine's user, nothing in the background
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`, ...args],
      {timeout: 30_000, maxBuffer: 64 * 1024 * 1024},
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    )
  })
}

const spec: FixtureSpec = {
  name: 'celebrity-drop',
  phases: [
    {name: 'sustained', seconds: 8, rates: {browse_product: 100, list_followers: 20}},
    {name: 'drop-opens', seconds: 6, rates: {browse_product: 300, list_followers: 40, order: 60}, thresholds: ['order.p95 < 500ms']},
  ],
  thresholds: ['read.p95 < 30ms', 'errors.rate < 5%'],
  invariants: [{name: 'no_oversell', pass: true}, {name: 'every_ack_persisted', pass: false, detail: 'order 17 acknowledged, not stored </script><b>x</b>'}],
}
const run = buildRun(spec, generateRequests(spec, 5, ({phase, random}) => ({ms: (phase === 'drop-opens' ? 40 : 10) + random() * 20, status: random() < 0.02 ? 503 : 200})))

describe('renderHtml', () => {
  it('is one self-contained file: uPlot inlined, no external URL, data escaped', () => {
    const html = renderHtml(run)
    expect(html).toMatch(/uPlot/)
    // nothing loaded from elsewhere: no src/href attributes at all, no CSS imports
    expect(html).not.toMatch(/\s(src|href)\s*=/i)
    expect(html).not.toMatch(/@import|url\(\s*['"]?https?:/i)
    // the hostile invariant detail is escaped in the table and inside the JSON
    expect(html).not.toMatch(/<b>x<\/b>/)
    expect(html).toMatch(/&lt;\/script&gt;&lt;b&gt;x&lt;\/b&gt;/)
    expect(html.match(/<\/script>/g)!.length).toBe(3)
    expect(html).toMatch(/This run carries no stock series/)
  })

  it('chart data holds per-second latency with gaps, the spectrum, rates and errors', () => {
    const d = chartData(run)
    expect(d.types).toEqual(['browse_product', 'list_followers', 'order'])
    expect(d.t).toHaveLength(14)
    // orders only start in the second phase: the first seconds are gaps, not zeros
    expect(d.latency.order.p99.slice(0, 8)).toEqual(Array(8).fill(null))
    expect(d.latency.order.p99[10]).toBeGreaterThan(40)
    expect(d.target.slice(0, 2)).toEqual([120, 120])
    expect(d.target[13]).toBe(400)
    expect(d.spectrum.corrected[0].length).toBe(d.spectrum.x.length)
    // a spectrum never falls
    for (const s of d.spectrum.corrected) for (let i = 1; i < s.length; i++) expect(s[i]!).toBeGreaterThanOrEqual(s[i - 1]!)
    expect(d.errors.browse_product.reduce((a, b) => a! + b!, 0)).toBe(run.phases.reduce((n, p) => n + (p.requests.browse_product?.errors ?? 0), 0))
  })

  describe('in headless Chromium', () => {
    it('draws every chart with coloured series, including the stock chart and the comparison', async () => {
      const withStock = structuredClone(run)
      withStock.stats.stockSeries = Array.from({length: 14}, (_, t) => ({t, remaining: t < 8 ? 400 : Math.max(0, 400 - (t - 8) * 90)}))
      withStock.stats.soldOutAtMs = 12_450
      const file = path.join(dir, 'report.html')
      writeFileSync(file, renderHtml(withStock, {comparison: compareRuns(withStock, run)}))
      const dom = await browse(['--dump-dom', `file://${file}`])
      const body = /<body([^>]*)>/.exec(dom)![1]
      // 3 types + all latency charts, 2 spectra, rate, errors, stock
      expect(body).toMatch(/data-charts="9"/)
      expect(body).toMatch(/data-drawn="9"/)
      const painted = [...dom.matchAll(/<section class="chart" id="([^"]+)" data-painted="(\d+)"/g)].map((m) => [m[1], Number(m[2])] as const)
      expect(painted.map(([id]) => id)).toEqual([
        'latency-browse_product',
        'latency-list_followers',
        'latency-order',
        'latency-all',
        'spectrum-corrected',
        'spectrum-service',
        'rate',
        'errors',
        'stock',
      ])
      // every chart inked its series in colour (axes and grid are grey and do not count)
      for (const [id, n] of painted) expect(n, id).toBeGreaterThan(300)
      expect(dom).toMatch(/Stock remaining \(sold out at 12\.4 s\)|sold out at 12\.5 s/)
      expect(dom).toMatch(/<table id="compare">/)
      expect(dom).toMatch(/<tr class="fail"><td>every_ack_persisted<\/td>/)
    }, 40_000)

    it('an empty run still renders and reports the charts it drew', async () => {
      const empty = buildRun({phases: [{name: 'idle', seconds: 3, rates: {browse_product: 0}}]}, [])
      const file = path.join(dir, 'empty.html')
      writeFileSync(file, renderHtml(empty))
      const dom = await browse(['--dump-dom', `file://${file}`])
      expect(dom).toMatch(/data-drawn="6"/)
      // no data, no coloured ink: the pixel check is not satisfied by axes alone
      const inked = Object.fromEntries([...dom.matchAll(/id="([^"]+)" data-painted="(\d+)"/g)].map((m) => [m[1], Number(m[2])]))
      for (const id of ['latency-browse_product', 'latency-all', 'spectrum-corrected', 'spectrum-service']) expect(inked[id], id).toBeLessThan(50)
    }, 40_000)
  })
})
