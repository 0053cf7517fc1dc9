/**
 * The plan as text: rows for the terminal table (the command builds it), Markdown like a design
 * doc's back-of-the-envelope section, and a small HTML page with the utilisation chart.
 */
import {inlineScript, scriptJson, uplotAssets} from '../report/overview-script.js'
import {DEFAULT_CEILING} from './check.js'
import type {Answer, Plan, PlanInput} from './plan.js'

const STATUS = {ok: 'ok', warning: 'WARN', 'not measured': 'not measured'} as const

/** Breaks text into lines of at most `width` characters at spaces (a longer word stays whole). */
export function wrap(text: string, width: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines.join('\n')
}

/** One row per answer: title, answer, status; with `width`, the answer and its formula wrapped for a terminal. */
export function planRows(plan: Plan, width?: number): string[][] {
  return plan.answers.map((a) => (width ? [wrap(a.title, 24), `${wrap(a.answer, width)}\n${wrap(`= ${a.formula}`, width)}`, STATUS[a.status]] : [a.title, a.answer, STATUS[a.status]]))
}

function inputText(i: PlanInput): string {
  const v = i.value === null ? 'not measured' : typeof i.value === 'number' ? i.value.toLocaleString('en-US') : i.value
  return `${i.name} = ${v} (${i.source}: ${i.from})`
}

/** Header lines: the run the costs came from and how its CPU was split. */
export function planHeader(plan: Plan): string[] {
  const m = plan.measured
  const t = plan.targets
  return [
    `Plan from run "${m.run.name}" ×${m.run.scale} (${m.run.startedAt}, ${m.run.durationS} s); CPU split by ${m.cpu?.method === 'fit' ? `a least-squares fit over ${m.cpu.intervals} intervals` : "the run's mix average"}.`,
    `Targets: ${t.readsPerSecond.toLocaleString('en-US')} reads/s, ${t.orderAttemptsPerSecond.toLocaleString('en-US')} order attempts/s, ${t.writesPerSecond.toLocaleString('en-US')} writes/s; ${t.users.toLocaleString('en-US')} users, ${t.creators.toLocaleString('en-US')} creators, a celebrity with ${t.celebrityFollowers.toLocaleString('en-US')} followers; headroom ${Math.round(t.headroom * 100)}%, ${t.coresPerServer} cores per server.`,
    calibrationLine(plan),
  ]
}

/** Where the plan's CPU costs stand: calibrated by a measured capacity, or the run's own (and what that means). */
export function calibrationLine(plan: Plan): string {
  const c = plan.calibration
  if (!c) return "CPU costs: the run's own, not calibrated. CPU per request falls as the load rises, so costs from a light run overstate it at the targets; --calibrate CAP.json (a capacity run, `scenario run FILE --mode capacity --out CAP.json`) scales them to what they are at capacity."
  return `CPU costs: the run's × ${c.factor}, calibrated by the measured capacity ×${c.scale}${c.atLeast ? ' (a lower bound)' : ''} of ${c.file} (with the run's own costs it implies a ${(c.ceiling * 100).toFixed(0)}% ceiling; scaled, the default ${DEFAULT_CEILING * 100}%).`
}

/** The CPU costs the plan used as rows: component, CPU-seconds per 1,000 read / order / write requests. */
export function costRows(plan: Plan): string[][] {
  const notes = plan.measured.cpu?.notes ?? {}
  return Object.entries(plan.costs).map(([part, g]) => [part, ...(['read', 'order', 'write'] as const).map((k) => (g ? (g[k] === null ? '-' : String(g[k])) : `not measured${notes[part] ? ` (${notes[part]})` : ''}`))])
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function mdAnswer(a: Answer): string {
  const lines = [`### ${a.title}`, '', `**${a.answer}**${a.status === 'ok' ? '' : ` _(${a.status})_`}`, '', `- formula: ${a.formula}`]
  for (const i of a.inputs) lines.push(`- ${inputText(i)}`)
  return lines.join('\n')
}

/** The plan as a design doc's estimate section. */
export function renderPlanMarkdown(plan: Plan): string {
  const out = ['## Back-of-the-envelope estimate (livedrop plan)', '', ...planHeader(plan).map((l) => `${l}  `), '']
  const costs = costRows(plan)
  if (costs.length) {
    out.push('| component | CPU-s per 1,000 reads | per 1,000 orders | per 1,000 writes |', '|---|---:|---:|---:|', ...costs.map((r) => `| ${r.map(mdCell).join(' | ')} |`), '')
  }
  out.push('| question | answer | |', '|---|---|---|', ...planRows(plan).map((r) => `| ${r.map(mdCell).join(' | ')} |`), '')
  for (const a of plan.answers) out.push(mdAnswer(a), '')
  if (plan.assumed.length) out.push('**Assumed** (the run cannot measure these):', '', ...plan.assumed.map((a) => `- ${a}`), '')
  if (plan.notMeasured.length) out.push('**Not measured** in this run:', '', ...plan.notMeasured.map((a) => `- ${a}`), '')
  return out.join('\n')
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** A self-contained page: the answers and each component's utilisation against load. */
export function renderPlanHtml(plan: Plan): string {
  const {js, css} = uplotAssets()
  const names = Object.keys(plan.growth.components)
  const data = [plan.growth.load, ...names.map((n) => plan.growth.components[n].map((u) => u * 100))]
  const rows = plan.answers
    .map((a) => `<tr class="${a.status.replace(' ', '-')}"><td>${esc(a.title)}</td><td><b>${esc(a.answer)}</b><div class="f">${esc(a.formula)}</div><ul>${a.inputs.map((i) => `<li>${esc(inputText(i))}</li>`).join('')}</ul></td></tr>`)
    .join('\n')
  const notes = [...plan.assumed.map((a) => `assumed: ${a}`), ...plan.notMeasured.map((a) => `not measured: ${a}`)]
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livedrop plan — ${esc(plan.run.name)}</title>
<style>${css}
body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:6px;vertical-align:top}
.f{font-family:monospace;font-size:12px;color:#444;margin:4px 0}ul{margin:2px 0;font-size:12px;color:#555}tr.warning td:first-child{color:#b45309}tr.not-measured td:first-child{color:#888}</style></head>
<body><h1>Capacity plan</h1>${planHeader(plan).map((l) => `<p>${esc(l)}</p>`).join('')}
<h2>Utilisation against load</h2><p>Each sized component's utilisation (100% = its provisioned capacity) as the targets' load is multiplied.${plan.breaksFirst ? ` First to reach 100%: <b>${esc(plan.breaksFirst.component)}</b> at ×${plan.breaksFirst.atLoad.toFixed(2)}.` : ''}</p>
<div id="chart"></div>
<h2>Answers</h2><table>${rows}</table>
${notes.length ? `<h2>Assumed and not measured</h2><ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<script>${inlineScript(js)}</script>
<script>
var D = ${scriptJson({data, names})};
var colors = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];
new uPlot({width: Math.min(1000, window.innerWidth - 40), height: 360, scales: {x: {time: false}},
  axes: [{label: '× the targets\\' load'}, {label: 'utilisation %'}],
  series: [{label: 'load ×'}].concat(D.names.map(function (n, i) { return {label: n, stroke: colors[i % colors.length], width: 2}; }))
    .concat([{label: '100%', stroke: '#999', dash: [4, 4]}])},
  D.data.concat([D.data[0].map(function () { return 100; })]), document.getElementById('chart'));
</script></body></html>
`
}
