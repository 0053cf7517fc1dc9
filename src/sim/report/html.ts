import {mergedHistogram, type RunResult} from '../metrics/result.js'
import {formatThresholdActual, formatThresholdValue} from '../metrics/thresholds.js'
import type {RunComparison} from './compare.js'
import {overviewMarkers, overviewOf} from './overview.js'
import {inlineScript, OVERVIEW_CSS, OVERVIEW_SCRIPT, scriptJson, uplotAssets} from './overview-script.js'
import {abortLine, failureRows, generatorHealthLine, latenessFlipsOf} from './tables.js'

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)

/** Percentiles of the spectrum chart; the x axis is "nines" (−log10(1 − p)), as HdrHistogram plots do. */
const SPECTRUM = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 99.999]

/** A stock series in the run's stats: `stats.stockSeries` as [{t (s), remaining}] and `stats.soldOutAtMs`. */
export interface StockSeries {
  points: Array<{t: number; remaining: number}>
  soldOutAtS: number | null
}

export function stockSeriesOf(result: RunResult): StockSeries | null {
  const raw = result.stats.stockSeries
  if (!Array.isArray(raw) || raw.length === 0) return null
  const points = raw
    .map((p) => (Array.isArray(p) ? {t: Number(p[0]), remaining: Number(p[1])} : {t: Number((p as {t: unknown}).t), remaining: Number((p as {remaining: unknown}).remaining)}))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.remaining))
  const soldOut = result.stats.soldOutAtMs
  return points.length ? {points, soldOutAtS: typeof soldOut === 'number' ? soldOut / 1000 : null} : null
}

/** The data the page's script charts: all per-second or per-percentile arrays, ready for uPlot. */
export function chartData(result: RunResult) {
  const types = [...new Set(result.phases.flatMap((p) => Object.keys(p.requests)))]
  const t = result.series.map((p) => p.t)
  const col = (type: string, f: 'p50' | 'p99' | 'serviceP99' | 'done' | 'errors' | 'sent') => result.series.map((p) => p.types[type]?.[f] ?? null)
  // a second with no completed request has no latency: a gap, not a zero
  const lat = (type: string, f: 'p50' | 'p99' | 'serviceP99') => result.series.map((p) => (p.types[type]?.done ? p.types[type][f] : null))
  const spectrum = (timing: 'corrected' | 'service') =>
    types.map((type) => {
      const h = mergedHistogram(result, null, type, timing, {})
      return h && h.count ? SPECTRUM.map((p) => h.percentileMs(p)) : SPECTRUM.map(() => null)
    })
  return {
    types,
    t,
    phases: result.phases.map((p) => ({name: p.name, startS: p.startMs / 1000})),
    latency: Object.fromEntries(['all', ...types].map((type) => [type, {p50: lat(type, 'p50'), p99: lat(type, 'p99'), serviceP99: lat(type, 'serviceP99')}])),
    target: result.series.map((p) => p.target),
    achieved: col('all', 'done'),
    sent: col('all', 'sent'),
    errors: Object.fromEntries(types.map((type) => [type, col(type, 'errors')])),
    spectrum: {x: SPECTRUM.map((p) => -Math.log10(1 - p / 100)), percentiles: SPECTRUM, corrected: spectrum('corrected'), service: spectrum('service')},
    stock: stockSeriesOf(result),
    overview: {points: overviewOf(result), markers: overviewMarkers(result), phases: result.phases.map((p) => ({name: p.name, startS: p.startMs / 1000}))},
  }
}

const fmtMs = (v: number) => formatThresholdValue('latency', v)

function summaryTable(result: RunResult): string {
  const rows = result.phases.flatMap((p) =>
    Object.entries(p.requests).map(([type, s]) => {
      const attempts = s.sent + s.unsent
      return `<tr><td>${esc(p.name)}</td><td>${esc(type)}</td><td>${s.targetRate.toFixed(1)}</td><td>${s.achievedRate.toFixed(1)}</td><td>${fmtMs(s.corrected.p50)}</td><td>${fmtMs(s.corrected.p95)}</td><td>${fmtMs(s.corrected.p99)}</td><td>${fmtMs(s.corrected.max)}</td><td>${fmtMs(s.service.p99)}</td><td>${s.errors}${attempts ? ` (${((s.errors / attempts) * 100).toFixed(2)}%)` : ''}</td><td>${s.late}</td></tr>`
    }),
  )
  return `<table><thead><tr><th>phase</th><th>type</th><th>target/s</th><th>achieved/s</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>service p99</th><th>errors</th><th>late</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

function verdictTables(result: RunResult): string {
  const flips = latenessFlipsOf(result)
  const excused = (t: RunResult['thresholds'][number]) => {
    if (!flips.length) return ''
    const f = flips.find((x) => x.expression === t.expression && x.scope === t.scope)
    return `<td>${f ? `${esc(formatThresholdValue(f.kind, f.excused))} (PASS)` : ''}</td>`
  }
  const th = result.thresholds
    .map((t) => `<tr class="${t.pass ? 'pass' : 'fail'}"><td>${esc(t.expression)}</td><td>${esc(t.scope)}</td><td>${esc(formatThresholdActual(t))}</td><td>${t.pass ? 'PASS' : 'FAIL'}</td>${excused(t)}</tr>`)
    .join('')
  const inv = result.invariants.map((i) => `<tr class="${i.pass ? 'pass' : 'fail'}"><td>${esc(i.name)}</td><td>${i.pass ? 'PASS' : 'FAIL'}</td><td>${esc(i.detail ?? '')}</td></tr>`).join('')
  return (
    `<h2>Thresholds</h2>${th ? `<table id="thresholds"><thead><tr><th>threshold</th><th>scope</th><th>actual</th><th>verdict</th>${flips.length ? "<th>without the generator's lateness</th>" : ''}</tr></thead><tbody>${th}</tbody></table>` : '<p>No thresholds.</p>'}` +
    `<h2>Invariants</h2>${inv ? `<table id="invariants"><thead><tr><th>invariant</th><th>verdict</th><th>detail</th></tr></thead><tbody>${inv}</tbody></table>` : '<p>No invariants were checked in this run.</p>'}`
  )
}

/** result.failures: the first failing responses per request type, with time, status and body excerpt. */
function failuresTable(result: RunResult): string {
  const rows = failureRows(result)
  if (!rows.length) return ''
  const body = rows.map((f) => `<tr><td>${esc(f.type)}</td><td>${f.t.toFixed(1)} s</td><td>${esc(f.status)}</td><td class="body">${esc(f.body)}</td></tr>`).join('')
  return `<h2>First failing responses</h2><table id="failures"><thead><tr><th>request</th><th>at</th><th>status</th><th class="body">body</th></tr></thead><tbody>${body}</tbody></table>`
}

/** The colours of the overview's markers, as a legend under it. */
function markerLegend(result: RunResult): string {
  const kinds = new Set(overviewMarkers(result).map((m) => m.kind))
  const item = (kind: string, color: string, label: string) => (kinds.has(kind as never) ? `<span><i style="background:${color}"></i>${label}</span>` : '')
  const items = item('drop', '#2ca02c', 'drop opens') + item('soldout', '#d62728', 'sold out') + item('fault', '#ff7f0e', 'fault injected')
  return items ? `<p class="markers">${items}<span><i style="background:#aaa"></i>phase starts</span></p>` : ''
}

function comparisonTable(c: RunComparison): string {
  const rows = c.rows.flatMap((r) =>
    r.metrics.map(
      (m) =>
        `<tr class="${m.verdict === 'worse' ? 'fail' : m.verdict === 'better' ? 'pass' : ''}"><td>${esc(r.phase)}</td><td>${esc(r.type)}</td><td>${m.metric}</td><td>${m.baseline.toFixed(3)}</td><td>${m.current.toFixed(3)}</td><td>${m.relative === null ? 'new' : `${(m.relative * 100).toFixed(1)}%`}</td><td>${m.verdict}</td><td>${esc(m.reason)}</td></tr>`,
    ),
  )
  return `<h2>Compared with the baseline (tolerance ${(c.tolerance * 100).toFixed(0)}%)</h2><table id="compare"><thead><tr><th>phase</th><th>type</th><th>figure</th><th>baseline</th><th>current</th><th>change</th><th>verdict</th><th>why</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

/** Draws the charts in the page; sets body[data-drawn] to the number of charts drawn and data-painted on each. */
const PAGE_SCRIPT = String.raw`
(function () {
  var D = JSON.parse(document.getElementById('run-data').textContent);
  var ov = document.getElementById('overview');
  window.livedropOverview(ov, {points: D.overview.points, phases: D.overview.phases, markers: D.overview.markers, width: Math.min(1000, Math.max(600, ov.clientWidth || 1000))});
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  var charts = document.getElementById('charts');
  var drawn = 0, expected = 0;
  // the folded charts have no width of their own until opened: they take the overview's
  var width = Math.min(1000, Math.max(600, ov.clientWidth || 1000));
  function phaseLines(u) {
    var ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#999'; ctx.setLineDash([4, 4]); ctx.fillStyle = '#666'; ctx.font = '11px sans-serif';
    D.phases.forEach(function (p) {
      var x = u.valToPos(p.startS, 'x', true);
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.fillText(p.name, x + 4, u.bbox.top + 12);
    });
    ctx.restore();
  }
  function chart(id, title, series, data, opts) {
    expected++;
    var box = document.createElement('section'); box.className = 'chart'; box.id = id;
    charts.appendChild(box);
    var done = false;
    var o = Object.assign({
      title: title, width: width, height: 260,
      scales: {x: {time: false}},
      series: [{label: (opts && opts.xLabel) || 'second', value: opts && opts.xValue}].concat(series.map(function (s, i) { return Object.assign({stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true}, s); })),
      hooks: {setCursor: [window.livedropLatestLegend], ready: [window.livedropLatestLegend], draw: [function (u) {
        if (opts && opts.phases !== false) phaseLines(u);
        if (opts && opts.marker) opts.marker(u);
        if (!done) { done = true; drawn++; document.body.setAttribute('data-drawn', String(drawn)); box.setAttribute('data-painted', String(painted(u))); }
      }]}
    }, opts && opts.uplot);
    new uPlot(o, data, box);
  }
  // coloured pixels on the canvas: axes, grid and labels are grey, so only drawn series count
  var painted = window.livedropPainted;
  var ms = {label: 'ms'};
  D.types.concat(['all']).forEach(function (type) {
    var l = D.latency[type];
    chart('latency-' + type, 'Latency over time: ' + type + ' (ms; corrected from the intended send, and service time)',
      [{label: 'p50 corrected'}, {label: 'p99 corrected'}, {label: 'p99 service', dash: [6, 3]}],
      [D.t, l.p50, l.p99, l.serviceP99], {uplot: {axes: [{label: 'second of the run'}, ms]}});
  });
  function pct(v) { return v == null ? '--' : (100 - 100 * Math.pow(10, -v)).toPrecision(6).replace(/\.?0+$/, '') + '%'; }
  var nines = {label: 'percentile', splits: function () { return [0, 1, 2, 3, 4, 5]; }, values: function (u, vals) { return vals.map(pct); }};
  ['corrected', 'service'].forEach(function (timing) {
    chart('spectrum-' + timing, 'Percentile spectrum (' + timing + ', whole run, log ms)',
      D.types.map(function (t) { return {label: t, points: {show: true, size: 4}}; }),
      [D.spectrum.x].concat(D.spectrum[timing]),
      {phases: false, xLabel: 'percentile', xValue: function (u, v) { return pct(v); }, uplot: {scales: {x: {time: false}, y: {distr: 3}}, axes: [nines, ms]}});
  });
  chart('rate', 'Target vs achieved rate (requests/s, all types)',
    [{label: 'target'}, {label: 'achieved (completed)'}, {label: 'sent', dash: [4, 2]}],
    [D.t, D.target, D.achieved, D.sent], {uplot: {axes: [{label: 'second of the run'}, {label: 'req/s'}]}});
  chart('errors', 'Errors per second by request type',
    D.types.map(function (t) { return {label: t}; }),
    [D.t].concat(D.types.map(function (t) { return D.errors[t]; })), {uplot: {axes: [{label: 'second of the run'}, {label: 'errors/s'}]}});
  if (D.stock) {
    var soldOut = D.stock.soldOutAtS;
    chart('stock', 'Stock remaining' + (soldOut !== null ? ' (sold out at ' + soldOut.toFixed(1) + ' s)' : ''),
      [{label: 'remaining', fill: 'rgba(31,119,180,0.1)'}],
      [D.stock.points.map(function (p) { return p.t; }), D.stock.points.map(function (p) { return p.remaining; })],
      {uplot: {axes: [{label: 'second of the run'}, {label: 'units'}]}, marker: function (u) {
        if (soldOut === null) return;
        var x = u.valToPos(soldOut, 'x', true), ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#d62728'; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = '#d62728'; ctx.fillText('sold out', x + 4, u.bbox.top + 26); ctx.restore();
      }});
  }
  document.body.setAttribute('data-charts', String(expected));
})();
`

export interface HtmlOptions {
  /** Adds the comparison table. Default none. */
  comparison?: RunComparison
}

/**
 * One self-contained HTML page (no CDN, no network). It leads with the overview (offered vs
 * achieved rate and stock, p50/p99 of reads and orders on a log axis, errors and non-2xx statuses,
 * with the drop-open, sold-out and fault markers), then the verdict tables and the first failing
 * responses; the per-type latency charts, percentile spectrum, rate, errors and stock charts
 * follow, folded.
 */
export function renderHtml(result: RunResult, options: HtmlOptions = {}): string {
  const {js, css} = uplotAssets()
  const v = result.verdict
  const verdict = result.void ? `VOID: ${result.void.reason}` : v.pass ? 'PASS' : `FAIL (${result.abort ? `aborted at ${result.abort.atMs / 1000} s, ` : ''}${v.thresholdsFailed} threshold(s), ${v.invariantsFailed} invariant(s))`
  const aborted = abortLine(result)
  const stockNote = stockSeriesOf(result)
    ? ''
    : '<p class="note">This run carries no stock series (stats.stockSeries), so stock remaining over time is not charted.</p>'
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livedrop: ${esc(result.scenario.name)}</title>
<style>${css}
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}
tr.fail td{background:#fde8e8}tr.pass td{background:#eefbea}.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.verdict.ok{background:#2ca02c}.verdict.bad{background:#d62728}.note{color:#666}.chart{margin:18px 0}
td.body,th.body{text-align:left;font-family:ui-monospace,monospace;font-size:12px;max-width:640px;word-break:break-all}
details>summary{cursor:pointer;font-size:17px;font-weight:600;margin:24px 0 8px}
${OVERVIEW_CSS}
</style>
</head>
<body>
<h1>${esc(result.scenario.name)} <span class="verdict ${v.pass ? 'ok' : 'bad'}">${esc(verdict)}</span></h1>
<p>Target ${esc(result.target)} · started ${esc(result.startedAt)} · ${(result.durationMs / 1000).toFixed(1)} s · scale ${result.scenario.scale} · ${result.generator.runs} generator run(s) on ${esc(result.generator.hostname)} · ${esc(generatorHealthLine(result))}</p>
${aborted ? `<p id="aborted"><strong>${esc(aborted)}</strong></p>` : ''}
<section class="overview" id="overview"></section>
${markerLegend(result)}
${verdictTables(result)}
${failuresTable(result)}
${options.comparison ? comparisonTable(options.comparison) : ''}
<h2>Per phase and request type</h2>
<p class="note">Latency is measured from each request's intended send time (coordinated-omission corrected); service time from the actual send.</p>
${summaryTable(result)}
<details id="charts-fold"><summary>Charts per request type, percentile spectrum, rate, errors, stock</summary>
${stockNote}
<div id="charts"></div>
</details>
<script type="application/json" id="run-data">${scriptJson(chartData(result))}</script>
<script>${inlineScript(js)}</script>
<script>${OVERVIEW_SCRIPT}${PAGE_SCRIPT}</script>
</body>
</html>
`
}
