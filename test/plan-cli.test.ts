import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {runCli} from './helpers/cli.js'

/**
 * A real run (`scenario run scenarios/sold-out-race.yaml --scale 0.2 --db memory`), unedited: its
 * stats.cpu and stats.storage are measured (test/fixtures/plan/README.md).
 */
const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/plan/sold-out-race-x0.2.json')
const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-plan-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('livedrop plan (end to end)', () => {
  it('plans from a run file: costs fitted from the run, every answer with its formula, Markdown and HTML written', async () => {
    const md = path.join(dir, 'plan.md')
    const html = path.join(dir, 'plan.html')
    const r = await runCli(['plan', '--from', FIXTURE, '--md', md, '--html', html, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const plan = JSON.parse(r.stdout)
    expect(plan.kind).toBe('livedrop-plan')
    // the run's two phases change its mix (300 then 150 orders/s beside 200 reads/s), so reads and orders separate
    expect(plan.measured.cpu.method).toBe('fit')
    const serveCosts = plan.measured.cpu.components.serve
    for (const part of ['serve', 'postgres', 'generator']) {
      for (const g of ['read', 'order']) expect(plan.measured.cpu.components[part][g], `${part} ${g}`).toBeGreaterThan(0)
      // the run sent no writes: not measured, never 0
      expect(plan.measured.cpu.components[part].write).toBeNull()
    }
    const serve = plan.answers.find((a: {id: string}) => a.id === 'serve')
    // the default targets, 1,500 reads/s and 150 order attempts/s, with 30% headroom, from the fitted costs
    const cores = (serveCosts.read * 1500 + serveCosts.order * 150) / 1000 / 0.7
    expect(serve.data.coresNeeded).toBeCloseTo(cores, 6)
    expect(serve.data.processes).toBe(Math.max(1, Math.ceil(cores)))
    expect(serve.data.servers).toBe(Math.ceil(serve.data.processes / 8) + 1)
    expect(plan.answers.map((a: {id: string}) => a.id)).toEqual(['serve', 'postgres', 'hot-row', 'cache', 'domino', 'fanout', 'storage', 'purge', 'breaks-first'])
    for (const a of plan.answers) expect(a.formula.length).toBeGreaterThan(10)
    expect(plan.assumed.join('\n')).toMatch(/Redis node capacity/)
    expect(readFileSync(md, 'utf8')).toMatch(/^## Back-of-the-envelope estimate/)
    const page = readFileSync(html, 'utf8')
    expect(page).toContain('new uPlot(')
    expect(page).toContain('Utilisation against load')
  })

  it('prints the terminal table with the targets from a file and flags (flags win)', async () => {
    const targets = path.join(dir, 'targets.yaml')
    writeFileSync(targets, 'readsPerSecond: 30000\norderAttemptsPerSecond: 1000\ncoresPerServer: 16\n')
    const r = await runCli(['plan', '--from', FIXTURE, '--targets', targets, '--reads', '60,000'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Targets: 60,000 reads/s, 1,000 order attempts/s')
    expect(r.stdout).toMatch(/serve processes/)
    expect(r.stdout).toMatch(/Breaks first: /)
    expect(r.stdout).toMatch(/CPU costs: the run's own, not calibrated\. .*--calibrate CAP\.json/)
  })

  it('--calibrate scales every cost by 0.8 ÷ the ceiling a measured capacity implies, and says so', async () => {
    const plain = JSON.parse((await runCli(['plan', '--from', FIXTURE, '--json'])).stdout)
    // a capacity of ×3 for 1,000 reads/s + 100 orders/s + 20 writes/s, measured on 2 cores
    const cap = path.join(dir, 'cap.json')
    writeFileSync(cap, JSON.stringify({kind: 'livedrop-capacity', capacity: 3, atLeast: false, base: {phase: 'burst', total: 1120, read: 1000, order: 100}, steps: [{scale: 3, data: {cpu: {machine: {cores: 2}}}}]}))
    const r = await runCli(['plan', '--from', FIXTURE, '--calibrate', cap, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const plan = JSON.parse(r.stdout)
    // the ceiling by hand: the run's costs at ×3 of that mix, the higher of Σ cores ÷ 2 and serve's cores ÷ 1
    const c = plain.measured.cpu.components
    const cores = (part: string) => 3 * (c[part].read * 1000 + c[part].order * 100 + ((c[part].read + c[part].order) / 2) * 20) / 1000
    const ceiling = Math.max((cores('serve') + cores('postgres') + cores('generator')) / 2, cores('serve'))
    expect(plan.calibration).toMatchObject({file: cap, scale: 3, atLeast: false, ceiling: expect.closeTo(ceiling, 2), factor: expect.closeTo(0.8 / ceiling, 2)})
    for (const part of ['serve', 'postgres', 'generator']) expect(plan.costs[part].read).toBeCloseTo(c[part].read * plan.calibration.factor, 3)
    // the raw costs stay in measured; the answers use the calibrated ones
    expect(plan.measured.cpu.components).toEqual(c)
    const serve = (p: {answers: Array<{id: string; data: {coresNeeded: number}}>}) => p.answers.find((a) => a.id === 'serve')!.data.coresNeeded
    expect(serve(plan)).toBeCloseTo(serve(plain) * plan.calibration.factor, 2)
    const text = await runCli(['plan', '--from', FIXTURE, '--calibrate', cap])
    expect(text.stdout).toContain(`CPU costs: the run's × ${plan.calibration.factor}, calibrated by the measured capacity ×3 of ${cap}`)
  })

  it('a bad targets file exits 4 naming file:line:column and the field', async () => {
    const targets = path.join(dir, 'bad.yaml')
    writeFileSync(targets, 'readsPerSecond: 100\nheadroom: lots\n')
    const r = await runCli(['plan', '--from', FIXTURE, '--targets', targets])
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`${targets}:2:11 headroom:`)
  })

  it('a bad target flag exits 2 naming the flag', async () => {
    const r = await runCli(['plan', '--from', FIXTURE, '--followers', 'many'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--followers: .*"many"/)
  })

  it('a run without CPU accounting is refused (exit 2), naming what to measure', async () => {
    const run = JSON.parse(readFileSync(FIXTURE, 'utf8'))
    delete run.stats.cpu
    const file = path.join(dir, 'no-cpu.json')
    writeFileSync(file, JSON.stringify(run))
    const r = await runCli(['plan', '--from', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--from: the run file has no stats\.cpu/)
    expect(r.stderr).toMatch(/Hint: Record a run with CPU accounting/)
  })
})
