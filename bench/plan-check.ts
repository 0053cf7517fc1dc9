/**
 * npm run bench:plan [-- --scale 0.3] [-- --step-seconds 10] [-- --json]
 *
 * The plan's calibration, three times: from ONE measured run (test/fixtures/plan/costs.yaml, which
 * sends reads, order attempts and writes apart and together so each group's CPU is fitted) and ONE
 * capacity run of that same file (its measured capacity sets the utilisation ceiling), predict this
 * machine's capacity for three other mixes, then measure each with `scenario run --mode capacity`:
 *
 *   celebrity   scenarios/celebrity-drop.yaml, the shipped drop
 *   read-heavy  test/fixtures/plan/read-heavy.yaml (its burst: twice the reads, a third of the orders)
 *   order-heavy test/fixtures/plan/order-heavy.yaml (its burst: a third of the reads, four times the orders)
 *
 * Everything runs through the built CLI (npm run build first), exactly as the printed commands, on
 * the embedded default Postgres (all four files share one dataset, seeded once). The load average
 * is printed beside each figure: this machine is shared, and what else runs moves the capacity.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import Table from 'cli-table3'
import type {PlanCheck} from '../src/sim/plan/check.js'
import {JSON_OUT, numberArg} from './args.js'

const scale = numberArg('scale', 0.3)
const stepSeconds = numberArg('step-seconds', 10)
const ROOT = path.resolve(import.meta.dirname, '..')
const out = mkdtempSync(path.join(tmpdir(), 'livedrop-bench-plan-'))
const MIXES = [
  {name: 'celebrity', file: 'scenarios/celebrity-drop.yaml'},
  {name: 'read-heavy', file: 'test/fixtures/plan/read-heavy.yaml'},
  {name: 'order-heavy', file: 'test/fixtures/plan/order-heavy.yaml'},
]

const load = () => loadavg().map((v) => v.toFixed(2)).join(' ')
const log = (line: string) => process.stderr.write(line + '\n')

/** Runs the CLI; returns stdout. Exit codes in `ok` are fine (a measured run may fail a threshold and still be a measurement). */
function cli(args: string[], ok: number[] = [0]): string {
  log(`$ livedrop ${args.join(' ')}    (load ${load()})`)
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args], {cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024})
  if (!ok.includes(r.status ?? -1)) throw new Error(`livedrop ${args.join(' ')} exited ${r.status}`)
  return r.stdout
}

const costs = path.join(out, 'costs.json')
const capacity = path.join(out, 'costs-capacity.json')
// 99: a threshold failed; the run is still a measurement of what each request cost
cli(['scenario', 'run', 'test/fixtures/plan/costs.yaml', '--scale', String(scale), '--out', costs], [0, 99])
cli(['scenario', 'run', 'test/fixtures/plan/costs.yaml', '--scale', String(scale), '--mode', 'capacity', '--step-seconds', String(stepSeconds), '--no-probe', '--out', capacity])

const checks: Array<{mix: string; file: string; command: string; check: PlanCheck}> = []
for (const m of MIXES) {
  const args = ['plan', '--check', costs, '--scenario', m.file, '--scale', String(scale), '--step-seconds', String(stepSeconds), '--calibrate', capacity, '--json']
  const check = JSON.parse(cli(args)) as PlanCheck
  checks.push({mix: m.name, file: m.file, command: `livedrop ${args.join(' ').replaceAll(out + '/', '')}`, check})
}

const sc = (v: number | null) => (v === null ? '-' : `×${Number(v.toPrecision(3))}`)
const rps = (v: number | null) => (v === null ? '-' : Math.round(v).toLocaleString('en-US'))
const pct = (v: number | null) => (v === null ? '-' : `${v > 0 ? '+' : ''}${v.toFixed(1)}%`)
if (JSON_OUT) {
  process.stdout.write(JSON.stringify({scale, stepSeconds, out, checks: checks.map(({mix, file, command, check}) => ({mix, file, command, ...summary(check)}))}, null, 2) + '\n')
} else {
  const first = checks[0].check
  const t = new Table({head: ['mix', 'busiest phase ×1 (reads / orders / writes per s)', 'predicted', 'req/s', 'limited by', 'measured', 'req/s', 'error', 'at 80%: error', 'load avg before → after', 'others\' cores']})
  for (const {mix, check: c} of checks) {
    const s = summary(c)
    t.push([mix, `${rps(c.mix.read)} / ${rps(c.mix.order)} / ${rps(c.mix.write)}`, sc(c.predicted.scale), rps(c.predicted.reqPerSec), c.predicted.limitedBy, `${c.measured.atLeast ? '≥ ' : ''}${sc(c.measured.scale)}`, rps(c.measured.reqPerSec), pct(c.errorPct), pct(s.defaultErrorPct), `${c.machine.loadBefore[0]} → ${c.machine.loadAfter[0]}`, c.machine.otherCores ?? '-'])
  }
  console.log(`Costs from ${first.run.name} ×${first.run.scale} (${first.costs.method === 'fit' ? `fitted per group over ${first.costs.intervals} intervals` : 'its mix average'}); ceiling ${(first.ceiling.value * 100).toFixed(1)}% (${first.ceiling.from}); ${first.limits.cores} cores; steps of ${stepSeconds} s.`)
  for (const [part, g] of Object.entries(first.costs.components)) if (g) console.log(`  ${part}: CPU-s per 1,000 reads ${g.read ?? '-'}, orders ${g.order ?? '-'}, writes ${g.write ?? '-'}`)
  console.log(t.toString())
  for (const {mix, command} of checks) console.log(`${mix}: ${command}`)
  console.log(`Run files in ${out}`)
}

function summary(c: PlanCheck) {
  const m = c.measured.scale
  return {
    predicted: {scale: c.predicted.scale, reqPerSec: c.predicted.reqPerSec, limitedBy: c.predicted.limitedBy},
    measured: {scale: m, reqPerSec: c.measured.reqPerSec, atLeast: c.measured.atLeast, limit: c.measured.limit},
    errorPct: c.errorPct,
    ceiling: c.ceiling.value,
    defaultErrorPct: m ? Math.round(((c.predicted.atDefaultCeiling.scale - m) / m) * 1000) / 10 : null,
    machine: c.machine,
  }
}
