import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {runCli} from './helpers/cli.js'
import {buildRun, generateRequests, type FixtureSpec, type LatencyModel} from './report-runs.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-report-cli-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const spec: FixtureSpec = {
  name: 'cli-fixture',
  phases: [{name: 'steady', seconds: 10, rates: {browse_product: 100, order: 20}}],
  thresholds: ['read.p95 < 100ms', 'order.p99 < 100ms'],
  invariants: [{name: 'no_oversell', pass: true}],
}
const model =
  (factor: number): LatencyModel =>
  ({type, random}) => ({ms: (type === 'order' ? factor : 1) * (20 + random() * 10)})
const write = (name: string, value: unknown) => {
  const file = path.join(dir, name)
  writeFileSync(file, JSON.stringify(value))
  return file
}
const requests = generateRequests(spec, 1, model(1))
const baseline = write('baseline.json', buildRun(spec, requests))
const same = write('same.json', buildRun(spec, generateRequests(spec, 2, model(1))))
const slower = write('slower.json', buildRun(spec, generateRequests(spec, 3, model(5))))

describe('livedrop report', () => {
  it('re-renders a run and writes HTML and JUnit', async () => {
    const html = path.join(dir, 'r.html')
    const junit = path.join(dir, 'r.xml')
    const r = await runCli(['report', baseline, '--html', html, '--junit', junit])
    expect(r.stderr).toMatch(/Wrote html/)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/browse_product/)
    expect(r.stdout).toMatch(/read\.p95 < 100ms/)
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>[\s\S]*uPlot/)
    expect(readFileSync(junit, 'utf8')).toMatch(/<testsuites name="livedrop cli-fixture" tests="4" failures="0"/)
  })

  it('compares with a baseline: same run passes, a slower one exits 97 naming the regression', async () => {
    const junit = path.join(dir, 'cmp.xml')
    // independent runs: side by side to keep the file quick
    const [ok, bad] = await Promise.all([
      runCli(['report', same, '--compare', baseline, '--json']),
      runCli(['report', slower, '--compare', baseline, '--tolerance', '20%', '--junit', junit]),
    ])
    expect(ok.code).toBe(0)
    const out = JSON.parse(ok.stdout) as {comparison: {regressions: unknown[]; rows: unknown[]}}
    expect(out.comparison.regressions).toEqual([])
    expect(out.comparison.rows).toHaveLength(2)

    expect(bad.code).toBe(97)
    expect(bad.stderr).toMatch(/Error \[REGRESSION\].*order p50 \[steady\]/)
    expect(bad.stdout).toMatch(/WORSE/)
    expect(bad.stdout.split('\n')[0]).toMatch(/^REGRESSION 97: \d+ figure\(s\) worse than the baseline \(this run: /)
    // the files are still written, so CI can show what regressed
    expect(readFileSync(junit, 'utf8')).toMatch(/type="regression"/)
  })

  it('refuses a comparison that compares nothing (exit 2), warns on another scale, --full adds the phases', async () => {
    const other = write('other.json', buildRun({...spec, name: 'other-scenario'}, requests))
    const renamed: FixtureSpec = {...spec, phases: [{...spec.phases[0], name: 'renamed'}]}
    const disjoint = write('disjoint.json', buildRun(renamed, generateRequests(renamed, 4, model(1))))
    const halfScale = write('half.json', buildRun(spec, requests, {rateShare: 0.5}))
    const [a, b, c, full] = await Promise.all([
      runCli(['report', same, '--compare', other]),
      runCli(['report', disjoint, '--compare', baseline]),
      runCli(['report', same, '--compare', halfScale]),
      runCli(['report', same, '--full']),
    ])
    expect(a.code).toBe(2)
    expect(a.stderr).toMatch(/--compare: the baseline is a run of scenario "other-scenario", this run is of "cli-fixture"/)
    expect(a.stderr).toMatch(/^Hint: \S/m)
    expect(b.code).toBe(2)
    expect(b.stderr).toMatch(/no phase and request type in common/)
    expect(b.stdout).not.toMatch(/No regression/)
    expect(c.stderr).toMatch(/Warning: the baseline ran at --scale 0\.5, this run at 1/)
    expect(c.stdout.split('\n')[0]).toMatch(/^(PASS|REGRESSION 97)/)
    expect(full.code).toBe(0)
    expect(full.stdout).toMatch(/^Phase steady \(10 s, constant\)$/m)
    expect(full.stdout.split('\n')[0]).toBe('PASS: 2 threshold(s) and 1 invariant(s) held')
  })

  it('refuses what is not a run file (exit 2)', async () => {
    const r = await runCli(['report', write('nope.json', {hello: 1})])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/not a livedrop run file/)
  })
})

describe('livedrop report merge', () => {
  it('merges generator runs exactly and exits with the merged verdict', async () => {
    const a = write('a.json', buildRun({...spec, hostname: 'a'}, requests.filter((_, i) => i % 2 === 0), {rateShare: 0.5}))
    const b = write('b.json', buildRun({...spec, hostname: 'b'}, requests.filter((_, i) => i % 2 === 1), {rateShare: 0.5}))
    const out = path.join(dir, 'merged.json')
    const out2 = path.join(dir, 'merged2.json')
    const [r, failing] = await Promise.all([runCli(['report', 'merge', a, b, '--out', out, '--json']), runCli(['report', 'merge', a, slower, '--out', out2])])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({runs: 2, verdict: {pass: true}})
    const merged = JSON.parse(readFileSync(out, 'utf8'))
    const whole = JSON.parse(readFileSync(baseline, 'utf8'))
    expect(merged.phases[0].requests.order.corrected).toEqual(whole.phases[0].requests.order.corrected)

    // a slow generator makes the merged run fail its thresholds: exit 99, file still written
    expect(failing.code).toBe(99)
    expect(failing.stderr).toMatch(/THRESHOLD_FAILED/)
    expect(existsSync(out2)).toBe(true)
  })
})

describe('livedrop scenario export', () => {
  it('writes a k6 script; refuses an unknown format', async () => {
    const out = path.join(dir, 'drop.k6.ts')
    const [r, bad] = await Promise.all([
      runCli(['scenario', 'export', 'scenarios/celebrity-drop.yaml', '--format', 'k6', '--scale', '2', '--out', out]),
      runCli(['scenario', 'export', 'scenarios/celebrity-drop.yaml', '--format', 'jmeter']),
    ])
    expect(r.code).toBe(0)
    const script = readFileSync(out, 'utf8')
    expect(script).toMatch(/^\/\/ Generated by `livedrop scenario export scenarios\/celebrity-drop\.yaml --format k6`/)
    expect(script).toMatch(/executor: "ramping-arrival-rate"/)
    // browse_product runs at 250/s in the first phase, doubled by --scale 2
    expect(script).toMatch(/startRate: 500,/)
    expect(bad.code).toBe(2)
  })
})
