import {execFile, execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {LatencyHistogram} from '../src/core/histogram.js'
import {renderHtml} from '../src/sim/report/html.js'
import {overviewMarkers, overviewOf, overviewPoint} from '../src/sim/report/overview.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'
import {secondPoint, spread} from './report-points.js'

const chromium = execFileSync('sh', ['-c', 'command -v chromium'], {encoding: 'utf8'}).trim()
const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-overview-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const dumpDom = (file: string) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      chromium,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`, '--window-size=1400,1000', '--dump-dom', `file://${file}`],
      {timeout: 30_000, maxBuffer: 64 * 1024 * 1024},
      (err, out) => (err ? reject(err) : resolve(out)),
    ),
  )

const spec: FixtureSpec = {
  name: 'overview-fixture',
  phases: [
    {name: 'warm', seconds: 4, rates: {browse_product: 50, list_followers: 10}},
    {name: 'drop-opens', seconds: 6, rates: {browse_product: 200, list_followers: 20, order: 40}},
  ],
  thresholds: ['read.p95 < 100ms'],
}

/** A run whose series carries what the generator records now: per-second histograms, statuses and stock. */
function richRun() {
  const run = buildRun(spec, generateRequests(spec, 1, ({phase, random}) => ({ms: (phase === 'warm' ? 5 : 30) + random() * 10})))
  run.series = run.series.map((p) =>
    secondPoint(p.t, p.phase, p.target, {
      browse_product: {latencies: spread(p.types.browse_product.done, 2, p.t < 4 ? 8 : 40)},
      list_followers: {latencies: spread(p.types.list_followers.done, 20, p.t < 4 ? 30 : 400)},
      ...(p.types.order ? {order: {latencies: spread(p.types.order.done, 50, 900), statuses: Array.from({length: p.types.order.done}, (_, i) => (p.t >= 7 && i % 2 ? 409 : 201))}} : {}),
    }, p.t < 4 ? 200 : Math.max(0, 200 - (p.t - 3) * 50)),
  )
  run.stats.dropLiveAtMs = 4_020
  run.stats.soldOutAtMs = 7_400
  run.faults = [{atMs: 8_000, kind: 'postgres SIGSTOP', endMs: 9_000}]
  run.failures = {order: [{t: 7.2, status: 503, body: 'upstream </td> unavailable'}]}
  return run
}

describe('the overview data', () => {
  const run = richRun()
  const points = overviewOf(run)

  it('merges the read types\u2019 histograms per second for the reads\u2019 p50/p99 (not the worst type\u2019s)', () => {
    const p = run.series[6]
    const merged = LatencyHistogram.coarse()
    for (const t of ['browse_product', 'list_followers']) merged.add(LatencyHistogram.decode(p.types[t].histograms!.corrected))
    const o = overviewPoint(p)
    expect(o.readP99).toBeCloseTo(merged.percentileMs(99), 3)
    // followers are slow, products fast: the merged p50 is near the products', far below the followers' p50
    expect(o.readP50!).toBeLessThan(p.types.list_followers.p50 / 2)
    expect(o.orderP99).toBe(p.types.order.p99)
    expect(o).toMatchObject({t: 6, offered: 260, achieved: p.types.all.done, stock: 50})
  })

  it('has gaps where no order completed, statuses and stock per second, and the markers', () => {
    expect(points.slice(0, 4).map((p) => p.orderP99)).toEqual([null, null, null, null])
    expect(points[8].statuses['409']).toBeGreaterThan(0)
    expect(points.map((p) => p.stock)).toEqual([200, 200, 200, 200, 150, 100, 50, 0, 0, 0])
    expect(overviewMarkers(run)).toEqual([
      {t: 4.02, label: 'drop opens', kind: 'drop'},
      {t: 7.4, label: 'sold out', kind: 'soldout'},
      {t: 8, label: 'postgres SIGSTOP', kind: 'fault'},
      {t: 9, label: 'postgres SIGSTOP ends', kind: 'fault'},
    ])
    // an older run file: stock from the sampled stats.stockSeries, no faults, no statuses
    const old = buildRun(spec, generateRequests(spec, 2, () => ({ms: 5})))
    old.stats.stockSeries = [{t: 0.5, remaining: 9}, {t: 5.2, remaining: 3}]
    expect(overviewOf(old).map((p) => p.stock)).toEqual([9, 9, 9, 9, 9, 3, 3, 3, 3, 3])
    expect(overviewMarkers(old)).toEqual([])
  })
})

describe('the HTML report in headless Chromium', () => {
  it('leads with the overview (three inked panels, markers), folds the per-type charts, shows legends without "--" and the failing responses', async () => {
    const file = path.join(dir, 'overview.html')
    writeFileSync(file, renderHtml(richRun()))
    const dom = await dumpDom(file)
    // the overview comes before the verdict tables; the per-type charts sit in a closed <details>
    expect(dom.indexOf('id="overview"')).toBeGreaterThan(0)
    expect(dom.indexOf('id="overview"')).toBeLessThan(dom.indexOf('<h2>Thresholds</h2>'))
    expect(dom).toMatch(/<details id="charts-fold"><summary>[^<]*<\/summary>[\s\S]*id="latency-order"[\s\S]*<\/details>/)
    expect(dom).toMatch(/<section class="overview" id="overview" data-points="10">/)
    const panels = Object.fromEntries([...dom.matchAll(/<div class="panel" id="(overview-[a-z]+)" data-painted="(\d+)"/g)].map((m) => [m[1], Number(m[2])]))
    expect(Object.keys(panels)).toEqual(['overview-rate', 'overview-latency', 'overview-errors'])
    for (const [id, n] of Object.entries(panels)) expect(n, id).toBeGreaterThan(300)
    // the log axis: its ticks are powers of ten across the 2 ms – 900 ms the run spans
    const latencyPanel = dom.slice(dom.indexOf('id="overview-latency"'), dom.indexOf('id="overview-errors"'))
    expect(latencyPanel).toMatch(/orders p99/)
    // the statuses seen get a series each: 409 appears, 201 (2xx) does not
    const errorsPanel = dom.slice(dom.indexOf('id="overview-errors"'), dom.indexOf('</section>', dom.indexOf('id="overview-errors"')))
    expect(errorsPanel).toMatch(/HTTP 409/)
    expect(errorsPanel).not.toMatch(/HTTP 201/)
    // legends show the latest second's values, not "--", in the overview and the folded charts
    const values = [...dom.matchAll(/<td class="u-value">([^<]*)<\/td>/g)].map((m) => m[1])
    expect(values.length).toBeGreaterThan(20)
    expect(values.filter((v) => v === '--')).toEqual([])
    expect(dom).toMatch(/<p class="markers">.*drop opens.*sold out.*fault injected/)
    expect(dom).toMatch(/<table id="failures">.*<td>order<\/td><td>7\.2 s<\/td><td>503<\/td><td class="body">upstream &lt;\/td&gt; unavailable<\/td>/)
  }, 40_000)
})
