/**
 * Renders a capacity run (src/sim/capacity): a terminal table per step, the CPU of each
 * component per step, the answer line, and an HTML section charting p95/p99 against the offered
 * rate with the passing region shaded. `--json` prints the CapacityResult itself.
 */
import type {CapacityResult, CapacityStep, Percentiles} from '../capacity/result.js'
import {MACHINE} from '../metrics/cpu.js'
import {inlineScript, PAINTED_SCRIPT, scriptJson, uplotAssets} from './overview-script.js'

/** Same width budget as the run report (src/sim/report/tables.ts REPORT_WIDTH). */
const WIDTH = 100
const GAP = '  '

const int = (v: number) => Math.round(v).toLocaleString('en-US')
export const fmtScale = (k: number) => `×${Number(k.toPrecision(3))}`

/** p95/p99 with one unit: "12/40ms", "4.2/9.8ms", "0.95/1.20s"; "-" with no samples. */
function pair(p: Percentiles | null): string {
  if (!p) return '-'
  if (p.p99 >= 1000) return `${(p.p95 / 1000).toFixed(2)}/${(p.p99 / 1000).toFixed(2)}s`
  const one = (v: number) => (v < 10 ? v.toFixed(1) : v.toFixed(0))
  return `${one(p.p95)}/${one(p.p99)}ms`
}

const VERDICT: Record<CapacityStep['verdict'], string> = {pass: 'PASS', fail: 'FAIL', void: 'VOID', invariant: 'INVARIANT'}

/** Right-aligned columns two spaces apart (the first `left` columns left-aligned). */
function columns(rows: string[][], left: number[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  return rows.map((r) => r.map((cell, c) => (left.includes(c) ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(GAP).trimEnd())
}

const paint = (on: boolean | undefined, code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s)

/** Words into lines of at most `width` characters, each after `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  return line ? [...lines, indent + line] : lines
}

/**
 * "capacity: ×2.45 = 4,128 req/s at drop-opens (3,675 reads/s, 368 order attempts/s); limited by …":
 * the highest rate scale that passed, in the busiest phase's rates.
 */
export function capacityAnswerLine(r: CapacityResult): string {
  const rates = (k: number) => `${int(r.base.total * k)} req/s at ${r.base.phase} (${int(r.base.read * k)} reads/s, ${int(r.base.order * k)} order attempts/s)`
  let head: string
  if (r.capacity !== null) head = `capacity: ${r.atLeast ? 'at least ' : ''}${fmtScale(r.capacity)} = ${rates(r.capacity)}`
  else if (r.belowMin) head = `capacity: below ${fmtScale(r.firstFail!)}, the lowest scale tried`
  else head = 'capacity: unknown, no step passed'
  const gate = r.gate === null ? '' : `; gate --min-scale ${r.gate}: ${r.exitCode === 0 ? 'PASS' : r.exitCode === 99 ? 'FAIL' : 'VOID'}`
  return `${head}; limited by ${r.limitedBy}${gate}`
}

export interface CapacityTableOptions {
  /** ANSI colour for verdicts. Default false. */
  color?: boolean
}

/** The step table, the failures of each step that did not pass, the CPU table, and the answer line. */
export function renderCapacityTable(r: CapacityResult, opts: CapacityTableOptions = {}): string {
  const out: string[] = []
  const steps = r.steps
  out.push(
    ...wrap(
      `Capacity of ${r.scenario.name}: its rates × scale, open model${r.stepSeconds ? `, each step ${r.stepSeconds} s` : ''}; rates are the busiest phase's (${r.base.phase}), latency the whole step's (corrected).`,
      WIDTH,
      '',
    ),
  )
  const rows = [['#', 'scale', 'target/s', 'achieved/s', 'read p95/p99', 'order p95/p99', 'notify p95/p99', 'errors', 'verdict']]
  for (const s of steps) {
    const d = s.data
    rows.push([
      String(s.index + 1),
      fmtScale(s.scale),
      int(d.peak.target),
      int(d.peak.achieved),
      pair(d.latency.read),
      pair(d.latency.order),
      pair(d.latency.notify),
      `${(d.errors.share * 100).toFixed(2)}%`,
      VERDICT[s.verdict],
    ])
  }
  const table = columns(rows, [1, 8])
  out.push(
    ...table.map((line, i) =>
      i === 0 ? line : line.replace(/(PASS|FAIL|VOID|INVARIANT)$/, (v) => paint(opts.color, v === 'PASS' ? 32 : v === 'VOID' ? 33 : 31, v)),
    ),
  )
  for (const s of steps.filter((x) => x.verdict !== 'pass' && x.reason)) out.push(...wrap(`${s.index + 1} at ${fmtScale(s.scale)}: ${s.reason}`, WIDTH, '  '))

  const names = [...new Set(steps.flatMap((s) => Object.keys(s.data.cpu?.components ?? {})))]
  if (steps.some((s) => s.data.cpu)) {
    out.push('', 'CPU per step: cores used (CPU-seconds per second); CPU-seconds per 1,000 requests in parentheses.')
    const cpuRows = [['#', 'scale', ...names, MACHINE, 'idle']]
    for (const s of steps) {
      const cpu = s.data.cpu
      const per = s.data.cpuPer1000 ?? {}
      const cell = (cores: number | null | undefined, per1000: number | null | undefined) =>
        cores === null || cores === undefined ? 'not measured' : `${cores.toFixed(2)}${per1000 === null || per1000 === undefined ? '' : ` (${per1000.toFixed(2)})`}`
      cpuRows.push([
        String(s.index + 1),
        fmtScale(s.scale),
        ...names.map((n) => cell(cpu?.components[n]?.meanCores, per[n])),
        cell(cpu?.machine?.meanBusyCores, per[MACHINE]),
        cpu?.machine ? `${(cpu.machine.idleShare * 100).toFixed(0)}%` : '-',
      ])
    }
    out.push(...columns(cpuRows, [1]))
    const notes = [...new Set(steps.flatMap((s) => Object.entries(s.data.cpu?.components ?? {}).flatMap(([n, c]) => (c.note ? [`${n}: ${c.note}`] : []))))]
    for (const n of notes) out.push(...wrap(n, WIDTH, '  '))
  }
  out.push('', ...wrap(capacityAnswerLine(r), WIDTH, ''))
  return out.join('\n')
}

/** What the capacity chart plots: one point per step, by offered rate (the busiest phase's target req/s). */
export function capacityChartData(r: CapacityResult) {
  const steps = [...r.steps].sort((a, b) => a.data.peak.target - b.data.peak.target)
  const col = (metric: 'read' | 'order' | 'notify', p: 'p95' | 'p99') => steps.map((s) => s.data.latency[metric]?.[p] ?? null)
  const offeredAt = (k: number | null) => (k === null ? null : r.base.total * k)
  return {
    offered: steps.map((s) => s.data.peak.target),
    scale: steps.map((s) => s.scale),
    verdict: steps.map((s) => s.verdict),
    series: {
      'read p95': col('read', 'p95'),
      'read p99': col('read', 'p99'),
      'order p95': col('order', 'p95'),
      'order p99': col('order', 'p99'),
      'notify p95': col('notify', 'p95'),
      'notify p99': col('notify', 'p99'),
    },
    /** Shaded: from the lowest offered rate to the capacity's. */
    passing: r.capacity === null ? null : {from: Math.min(...steps.map((s) => s.data.peak.target)), to: offeredAt(r.capacity)!},
    firstFail: offeredAt(r.firstFail),
  }
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)

/** Draws the capacity chart; sets data-painted (coloured pixels) and data-drawn on its section, as the run report's charts do. */
const CHART_SCRIPT = String.raw`
(function () {
  var D = JSON.parse(document.getElementById('capacity-data').textContent);
  var box = document.getElementById('capacity-chart');
  var COLORS = ['#1f77b4', '#aec7e8', '#d62728', '#ff9896', '#2ca02c', '#98df8a'];
  var names = Object.keys(D.series);
  var done = false;
  var painted = window.livedropPainted;
  new uPlot({
    title: 'Latency against offered rate (ms; the passing region shaded)', width: Math.min(1000, Math.max(600, box.clientWidth || 1000)), height: 300,
    scales: {x: {time: false}},
    series: [{label: 'offered req/s'}].concat(names.map(function (n, i) { return {label: n, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, dash: /p99/.test(n) ? [6, 3] : undefined, points: {show: true, size: 6}}; })),
    axes: [{label: 'offered req/s (busiest phase)'}, {label: 'ms'}],
    hooks: {
      drawClear: [function (u) {
        if (!D.passing) return;
        var x0 = u.valToPos(D.passing.from, 'x', true), x1 = u.valToPos(D.passing.to, 'x', true), ctx = u.ctx;
        ctx.save(); ctx.fillStyle = 'rgba(44,160,44,0.12)'; ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height); ctx.restore();
      }],
      draw: [function (u) {
        if (D.firstFail !== null) {
          var x = u.valToPos(D.firstFail, 'x', true), ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#d62728'; ctx.setLineDash([4, 4]);
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke(); ctx.restore();
        }
        if (!done) { done = true; box.setAttribute('data-painted', String(painted(u))); box.setAttribute('data-drawn', '1'); }
      }]
    }
  }, [D.offered].concat(names.map(function (n) { return D.series[n]; })), box);
})();
`

/** The step table as HTML. */
function stepTable(r: CapacityResult): string {
  const rows = r.steps.map((s) => {
    const d = s.data
    const cls = s.verdict === 'pass' ? 'pass' : 'fail'
    return `<tr class="${cls}"><td>${s.index + 1}</td><td>${esc(fmtScale(s.scale))}</td><td>${esc(s.why)}</td><td>${int(d.peak.target)}</td><td>${int(d.peak.achieved)}</td><td>${esc(pair(d.latency.read))}</td><td>${esc(pair(d.latency.order))}</td><td>${esc(pair(d.latency.notify))}</td><td>${(d.errors.share * 100).toFixed(2)}%</td><td>${VERDICT[s.verdict]}</td><td>${esc(s.reason ?? '')}</td></tr>`
  })
  return `<table id="capacity-steps"><thead><tr><th>#</th><th>scale</th><th>why</th><th>target/s</th><th>achieved/s</th><th>read p95/p99</th><th>order p95/p99</th><th>notify p95/p99</th><th>errors</th><th>verdict</th><th>failures</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

/**
 * The capacity section of a report: the answer, the step table and the chart. A fragment: the
 * page must already hold uPlot's script and CSS and PAINTED_SCRIPT (see renderCapacityPage).
 */
export function capacityHtmlSection(r: CapacityResult): string {
  return `<section id="capacity">
<h2>Capacity</h2>
<p class="answer">${esc(capacityAnswerLine(r))}</p>
${stepTable(r)}
<div class="chart" id="capacity-chart"></div>
<script type="application/json" id="capacity-data">${scriptJson(capacityChartData(r))}</script>
<script>${CHART_SCRIPT}</script>
</section>`
}

/** A self-contained page (uPlot inlined, no network) holding only the capacity section. */
export function renderCapacityPage(r: CapacityResult): string {
  const {js, css} = uplotAssets()
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>livedrop capacity: ${esc(r.scenario.name)}</title>
<style>${css}
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
tr.fail td{background:#fde8e8}tr.pass td{background:#eefbea}.answer{font-weight:600}
</style>
</head>
<body>
<h1>${esc(r.scenario.name)}</h1>
<script>${inlineScript(js)}</script>
<script>${PAINTED_SCRIPT}</script>
${capacityHtmlSection(r)}
</body>
</html>
`
}
