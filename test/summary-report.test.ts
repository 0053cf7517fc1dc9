import {describe, expect, it} from 'vitest'
import {computeVerdict, type RunResult} from '../src/sim/metrics/result.js'
import {colorFor, headroom, renderReport, REPORT_WIDTH} from '../src/sim/report/tables.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'

const spec: FixtureSpec = {
  name: 'summary',
  phases: [
    {name: 'warm', seconds: 3, rates: {browse_product: 50, order: 20, follow: 5}},
    {name: 'drop', seconds: 3, rates: {browse_product: 200, order: 80, list_followers: 10}, thresholds: ['order.p99 < 50ms']},
  ],
  thresholds: ['read.p95 < 200ms', 'order.p99 < 30ms', 'errors.rate < 1%', 'read.p90 < 100ms', 'order.service.p99 < 40ms', 'browse_product.rate > 95/s', 'follow.max < 1s'],
  invariants: [{name: 'no_oversell', pass: true, detail: 'sold 500 of 500'}],
}
/** Orders answer 201, 409 (sold out) and 422; one read in 50 gets a 503. */
const make = (s: FixtureSpec = spec): RunResult =>
  buildRun({...s, invariants: s.invariants?.map((i) => ({...i}))}, generateRequests(s, 1, ({type, i, random}) => ({ms: 5 + random() * 40, status: type === 'order' ? (i % 5 === 0 ? 409 : i % 17 === 0 ? 422 : 201) : i % 50 === 0 ? 503 : 200})))
const lines = (text: string) => text.split('\n')
/** The summary table's row of a request type or group (the first line of it: statuses may wrap). */
const row = (text: string, name: string) => lines(text).find((l) => l.startsWith(`${name} `))!

describe('the terminal summary', () => {
  it('leads with the verdict, then each threshold with ✓/✗, measured value, limit and headroom, then invariants', () => {
    const r = make()
    const text = renderReport(r)
    expect(lines(text)[0]).toBe('FAIL 99: 2 of 8 threshold(s) failed')
    expect(text).toMatch(/^ {2}✓ read\.p95 < 200ms +run +[\d.]+ms +limit 200\.0ms +headroom \d+%$/m)
    expect(text).toMatch(/^ {2}✗ order\.p99 < 30ms +run +[\d.]+ms +limit 30\.0ms +headroom -\d+%$/m)
    expect(text).toMatch(/^ {2}✓ order\.p99 < 50ms +drop /m)
    expect(text).toMatch(/^ {2}✓ no_oversell +sold 500 of 500$/m)
    // order: thresholds, invariants, table
    expect(text.indexOf('Thresholds')).toBeLessThan(text.indexOf('Invariants'))
    expect(text.indexOf('Invariants')).toBeLessThan(text.indexOf('request '))
    expect(text).toMatch(/^generator: /m)
  })

  it('every whole-run threshold figure is in the table, in the row of its metric', () => {
    const r = make()
    const text = renderReport(r)
    const head = row(text, 'request').split(/ {2,}/)
    for (const t of r.thresholds.filter((x) => x.scope === 'run')) {
      const measured = lines(text).find((l) => l.includes(` ${t.expression} `))!.split(/ {2,}/)[3]
      const metric = t.metric
      const cells = row(text, metric).split(/ {2,}/)
      const column = t.stat === 'errors' ? 'errors' : t.stat === 'rate' ? 'achieved/s' : t.timing === 'service' ? `svc ${t.stat}` : t.stat
      const cell = cells[head.indexOf(column)]
      expect(cell, t.expression).toContain(measured.replace(/\/s$/, ''))
    }
    // group rows and status codes, including the orders' 409 and 422 answers
    for (const g of ['read', 'write', 'all']) expect(row(text, g)).toBeDefined()
    const order = lines(text).slice(lines(text).indexOf(row(text, 'order')), lines(text).indexOf(row(text, 'order')) + 3).join(' ')
    expect(order).toMatch(/201:\d+/)
    expect(order).toMatch(/409:60/)
    expect(order).toMatch(/422:\d+/)
  })

  it('fits 100 columns, with --full too, a long invariant detail and many status codes', () => {
    const r = make()
    r.invariants.push({name: 'no_duplicate_order', pass: false, detail: 'order 17 appears twice for idempotency key 6f1c2e7a-9b3d-4c55-8e21-0d4f5a6b7c8d and order 18 for 1a2b3c4d-1111-2222-3333-444455556666'})
    r.phases[1].requests.order.statuses = Object.fromEntries([200, 201, 202, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504].map((s) => [String(s), 12345]))
    r.phases[1].requests.order.errorsByClass = {net_ECONNRESET: 3, timeout: 7}
    r.phases[1].requests.order.late = 1234
    r.phases[1].requests.order.queued = 56789
    r.phases[1].requests.order.unsent = 12
    r.verdict = computeVerdict(r)
    for (const full of [false, true]) {
      const text = renderReport(r, {full})
      for (const l of lines(text)) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH)
    }
    const text = renderReport(r, {full: true})
    expect(lines(text)[0]).toBe('INVARIANT 98: 1 of 2 invariant(s) violated')
    expect(text).toMatch(/timeout:7/)
    expect(text).toMatch(/^ {2}✗ no_duplicate_order +order 17/m)
  })

  it('per-phase detail, service time and the schedule only with --full', () => {
    const r = make()
    r.phases[1].requests.order.late = 3
    const short = renderReport(r)
    expect(short).not.toMatch(/Phase drop/)
    expect(short).not.toMatch(/schedule|late 3/)
    const full = renderReport(r, {full: true})
    expect(full).toMatch(/^Phase warm \(3 s, constant\)$/m)
    expect(full).toMatch(/^request .* svc p99 +errors +schedule$/m)
    expect(full).toMatch(/^order .* late 3$/m)
    expect(full.startsWith(short)).toBe(true)
  })

  it('PASS, VOID 100 and REGRESSION 97 verdict lines', () => {
    const pass = make({...spec, thresholds: ['read.p95 < 200ms'], phases: spec.phases.map((p) => ({...p, thresholds: undefined}))})
    expect(lines(renderReport(pass))[0]).toBe('PASS: 1 threshold(s) and 1 invariant(s) held')
    expect(lines(renderReport(pass, {regressions: 2}))[0]).toBe('REGRESSION 97: 2 figure(s) worse than the baseline (this run: PASS: 1 threshold(s) and 1 invariant(s) held)')
    const stalled = make()
    stalled.void = {kind: 'stall', reason: 'sent nothing for 900 ms while requests were due', detail: {}}
    stalled.verdict = computeVerdict(stalled)
    const text = renderReport(stalled)
    expect(lines(text)[0]).toBe('VOID 100: the load generator could not keep its schedule')
    expect(text).toMatch(/^VOID RUN: sent nothing for 900 ms/m)
  })

  it('colour only when asked, and asked only on a terminal without NO_COLOR', () => {
    const r = make()
    // eslint-disable-next-line no-control-regex
    const ansi = /\x1b\[/
    expect(renderReport(r)).not.toMatch(ansi)
    expect(renderReport(r, {color: true})).toMatch(ansi)
    expect(renderReport(r, {color: true}).replace(/\x1b\[\d+m/g, '')).toBe(renderReport(r))
    expect(colorFor({isTTY: true}, {})).toBe(true)
    expect(colorFor({isTTY: true}, {NO_COLOR: '1'})).toBe(false)
    expect(colorFor({isTTY: false}, {})).toBe(false)
    expect(colorFor({}, {})).toBe(false)
  })

  it('headroom is the distance to the limit as a share of it, negative when failing', () => {
    expect(headroom({actual: 50, limit: 200, op: '<'})).toBe('headroom 75%')
    expect(headroom({actual: 250, limit: 200, op: '<='})).toBe('headroom -25%')
    expect(headroom({actual: 120, limit: 100, op: '>'})).toBe('headroom 20%')
    expect(headroom({actual: null, limit: 100, op: '<'})).toBe('')
    expect(headroom({actual: 3, limit: 0, op: '<'})).toBe('')
  })
})
