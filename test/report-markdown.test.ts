import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {compareRuns, renderComparison} from '../src/sim/report/compare.js'
import {appendStepSummary, renderMarkdownSummary} from '../src/sim/report/markdown.js'
import {renderReport, summaryTableData} from '../src/sim/report/tables.js'
import {runCli} from './helpers/cli.js'
import {buildRun, generateRequests, type FixtureSpec, type LatencyModel} from './report-runs.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-md-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const spec: FixtureSpec = {
  name: 'md-fixture',
  phases: [{name: 'steady', seconds: 12, rates: {browse_product: 100, order: 20}}],
  thresholds: ['read.p95 < 100ms', 'order.p99 < 40ms'],
  invariants: [{name: 'no_oversell', pass: true}],
}
const model =
  (orderFactor: number): LatencyModel =>
  ({type, random}) => ({ms: (type === 'order' ? orderFactor : 1) * (20 + random() * 10), status: type === 'order' && random() < 0.1 ? 409 : 200})
const run = (seed: number, factor = 1) => buildRun(spec, generateRequests(spec, seed, model(factor)))

describe('renderMarkdownSummary', () => {
  const result = run(1, 2)
  result.failures = {order: [{t: 3.25, status: 409, body: '{"error":"sold_out" | "x": "<b>"}'}, {t: 1.5, status: 'timeout', body: ''}]}
  const md = renderMarkdownSummary(result)

  it('leads with the verdict, then thresholds with ✓/✗, measured vs limit and headroom', () => {
    const lines = md.split('\n')
    expect(lines[0]).toBe('### ❌ FAIL 99: 1 of 2 threshold(s) failed')
    const th = lines.filter((l) => /^\| [✓✗] \| [a-z]/.test(l))
    expect(th).toHaveLength(3)
    expect(th[0]).toMatch(/^\| ✓ \| read\.p95 &lt; 100ms \| run \| [\d.]+ms \| 100(\.0)?ms \| \d+% \|$/)
    // orders at 40–60 ms against a 40 ms limit: failing, so negative headroom
    expect(th[1]).toMatch(/^\| ✗ \| order\.p99 &lt; 40ms \| run \| [\d.]+ms \| 40(\.0)?ms \| -\d+% \|$/)
    expect(th[2]).toBe('| ✓ | no_oversell |  |')
    expect(md.indexOf('#### Thresholds')).toBeLessThan(md.indexOf('#### Invariants'))
    expect(md).toMatch(/\| ✓ \| no_oversell \|/)
  })

  it('has the terminal\u2019s whole-run table, same figures, as a pipe table', () => {
    const d = summaryTableData(result)
    for (const row of d.rows) expect(md).toContain(`| ${row.join(' | ')} |`)
    expect(md).toContain(`| ${d.head.join(' | ')} |`)
    // every figure the terminal prints is found in the Markdown
    const terminal = renderReport(result)
    for (const row of d.rows) expect(terminal).toContain(row[3])
  })

  it('lists the first failing responses in time order, body escaped for a table', () => {
    expect(md).toMatch(/<details><summary>First failing responses<\/summary>/)
    const i = md.indexOf('| order | 1.5 s | timeout |')
    const j = md.indexOf('| order | 3.3 s | 409 | {"error":"sold_out" \\| "x": "&lt;b&gt;"} |')
    expect(i).toBeGreaterThan(0)
    expect(j).toBeGreaterThan(i)
    // and in the terminal's --full output, not in the short one
    expect(renderReport(result, {full: true})).toMatch(/First failing responses\n  order +1\.5 s +timeout\n  order +3\.3 s +409 +\{"error":"sold_out" \| "x": "<b>"\}/)
    expect(renderReport(result)).not.toMatch(/First failing responses/)
  })

  it('a passing run says PASS and has no failures section', () => {
    const ok = renderMarkdownSummary(run(2))
    expect(ok.split('\n')[0]).toMatch(/^### (✅ PASS|❌ FAIL 99)/)
    const passing = buildRun({...spec, thresholds: ['read.p95 < 100ms']}, generateRequests(spec, 2, model(1)))
    expect(renderMarkdownSummary(passing).split('\n')[0]).toBe('### ✅ PASS: 1 threshold(s) and 1 invariant(s) held')
    expect(renderMarkdownSummary(passing)).not.toMatch(/First failing/)
  })
})

describe('report --compare shows what changed beyond noise', () => {
  const baseline = run(1)
  const slower = run(3, 3)
  const c = compareRuns(slower, baseline)

  it('lists only the changed figures by default, every one with all', () => {
    const changed = c.rows.flatMap((r) => r.metrics.filter((m) => m.verdict !== 'same').map((m) => `${r.type} ${m.metric}`))
    expect(changed).toContain('order p50')
    expect(changed.some((x) => x.startsWith('browse_product'))).toBe(false)
    const short = renderComparison(c)
    expect(short).not.toMatch(/browse_product/)
    expect(short).toMatch(/order +│? *p50/)
    const total = c.rows.length * 5
    expect(short).toContain(`${total - changed.length} of ${total} figure(s) unchanged (within 10% or inside the runs' noise) not shown; --all lists them.`)
    const all = renderComparison(c, {all: true})
    expect(all).toMatch(/browse_product/)
    expect(all).not.toMatch(/not shown/)
    const md = renderMarkdownSummary(slower, {comparison: c})
    expect(md.split('\n')[0]).toMatch(/^### ❌ REGRESSION 97: \d+ figure\(s\) worse than the baseline/)
    expect(md).toMatch(/\| steady \| order \| p50 \| [\d.]+ms \| [\d.]+ms \| \+\d+\.\d% \| \*\*WORSE\*\* \|/)
    expect(md).not.toMatch(/\| steady \| browse_product \|/)
    expect(renderMarkdownSummary(slower, {comparison: c, all: true})).toMatch(/\| steady \| browse_product \| p50 \|/)
  })

  it('says so when nothing changed', () => {
    const same = compareRuns(run(2), baseline)
    expect(same.regressions).toEqual([])
    const text = renderComparison(same)
    if (same.improvements === 0) expect(text).toMatch(/No figure changed beyond the tolerance and the runs' noise\./)
    expect(text).toMatch(/not shown; --all lists them/)
  })
})

describe('appendStepSummary', () => {
  it('appends, as several steps writing $GITHUB_STEP_SUMMARY do', async () => {
    const file = path.join(dir, 'summary.md')
    writeFileSync(file, '# earlier step\n')
    await appendStepSummary(file, renderMarkdownSummary(run(1)))
    await appendStepSummary(file, 'second')
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^# earlier step\n### (✅ PASS|❌ FAIL 99)/)
    expect(text.endsWith('\nsecond\n\n')).toBe(true)
    await expect(appendStepSummary(path.join(dir, 'nope', 'x.md'), 'x')).rejects.toThrow(/--summary-md: cannot write .*ENOENT/)
  })

  it('livedrop report FILE --summary-md OUT writes the verdict, thresholds and table; --compare only the changes', async () => {
    const base = path.join(dir, 'base.json')
    const cur = path.join(dir, 'cur.json')
    writeFileSync(base, JSON.stringify(baseline()))
    writeFileSync(cur, JSON.stringify(run(3, 3)))
    const out = path.join(dir, 'cli.md')
    const r = await runCli(['report', cur, '--compare', base, '--summary-md', out])
    expect(r.code, r.stderr).toBe(97)
    const md = readFileSync(out, 'utf8')
    expect(md.split('\n')[0]).toMatch(/^### ❌ REGRESSION 97/)
    expect(md).toMatch(/#### Thresholds/)
    expect(md).toMatch(/\| order \| 20\.0 \| 20\.0 \|/)
    expect(md).toMatch(/not shown; --all lists them/)
    expect(r.stdout).toMatch(/not shown; --all lists them/)
    expect(r.stderr).toMatch(/Wrote markdown to/)
    const all = await runCli(['report', cur, '--compare', base, '--all'])
    expect(all.stdout).toMatch(/browse_product/)
    expect(all.stdout).not.toMatch(/not shown/)
  })
})

function baseline() {
  return run(1)
}
