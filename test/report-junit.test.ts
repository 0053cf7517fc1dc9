import {describe, expect, it} from 'vitest'
import {compareRuns} from '../src/sim/report/compare.js'
import {renderJUnit} from '../src/sim/report/junit.js'
import {buildRun, generateRequests, type FixtureSpec} from './report-runs.js'

interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const ENTITIES: Record<string, string> = {amp: '&', lt: '<', gt: '>', quot: '"', apos: "'"}
const decode = (s: string) => {
  if (/&(?!(amp|lt|gt|quot|apos);)/.test(s)) throw new Error(`bare & in XML: ${s}`)
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e])
}

/** A strict little XML reader: one root, every tag closed in order, attributes quoted, only the five entities. */
function parseXml(xml: string): XmlElement {
  let i = 0
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i}: ${xml.slice(i, i + 40)}`)
  }
  const skipWs = () => {
    while (/\s/.test(xml[i] ?? '')) i++
  }
  const element = (): XmlElement => {
    if (xml[i] !== '<') fail('expected <')
    i++
    const name = /^[A-Za-z_][\w.-]*/.exec(xml.slice(i))?.[0] ?? fail('bad tag name')
    i += name.length
    const attrs: Record<string, string> = {}
    for (;;) {
      skipWs()
      if (xml.startsWith('/>', i)) {
        i += 2
        return {name, attrs, children: [], text: ''}
      }
      if (xml[i] === '>') {
        i++
        break
      }
      const m = /^([A-Za-z_][\w.-]*)="([^"<]*)"/.exec(xml.slice(i)) ?? fail('bad attribute')
      if (m[1] in attrs) fail(`duplicate attribute ${m[1]}`)
      attrs[m[1]] = decode(m[2])
      i += m[0].length
    }
    const children: XmlElement[] = []
    let text = ''
    for (;;) {
      if (xml.startsWith('</', i)) {
        const close = `</${name}>`
        if (!xml.startsWith(close, i)) fail(`expected ${close}`)
        i += close.length
        return {name, attrs, children, text: decode(text)}
      }
      if (xml[i] === '<') children.push(element())
      else if (i >= xml.length) fail(`unclosed <${name}>`)
      else text += xml[i++]
    }
  }
  const decl = /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*/.exec(xml) ?? fail('missing XML declaration')
  i = decl[0].length
  const root = element()
  skipWs()
  if (i !== xml.length) fail('content after the root element')
  return root
}

const spec: FixtureSpec = {
  name: 'drop <&> "quotes"',
  phases: [{name: 'steady', seconds: 5, rates: {browse_product: 50, order: 10}, thresholds: ['order.p95 < 5ms']}],
  thresholds: ['read.p95 < 200ms', 'order.p99 < 1ms', 'notify.p95? < 2s', 'errors.rate < 0.1%'],
  invariants: [
    {name: 'no_oversell', pass: true},
    {name: 'no_duplicate_orders', pass: false, detail: 'user 7 has 2 orders for key <k&1>', data: {userId: 7}},
  ],
}
const run = buildRun(spec, generateRequests(spec, 3, ({random}) => ({ms: 10 + random() * 20})))

describe('renderJUnit', () => {
  it('writes one testcase per threshold and invariant, failures where they failed, and parses back', () => {
    const root = parseXml(renderJUnit(run))
    expect(root.name).toBe('testsuites')
    const suites = root.children
    expect(suites.map((s) => s.name)).toEqual(['testsuite', 'testsuite', 'testsuite'])
    expect(suites.map((s) => s.attrs.name)).toEqual([`${spec.name}.run`, `${spec.name}.thresholds`, `${spec.name}.invariants`])

    for (const s of suites) {
      expect(s.children.every((c) => c.name === 'testcase')).toBe(true)
      expect(Number(s.attrs.tests)).toBe(s.children.length)
      expect(Number(s.attrs.failures)).toBe(s.children.filter((c) => c.children.some((x) => x.name === 'failure')).length)
      expect(Number(s.attrs.skipped)).toBe(s.children.filter((c) => c.children.some((x) => x.name === 'skipped')).length)
      for (const a of ['name', 'tests', 'failures', 'errors', 'time', 'timestamp']) expect(s.attrs[a], a).toBeDefined()
    }
    expect(Number(root.attrs.tests)).toBe(suites.reduce((n, s) => n + s.children.length, 0))
    expect(Number(root.attrs.failures)).toBe(suites.reduce((n, s) => n + Number(s.attrs.failures), 0))

    const thresholds = suites[1].children
    expect(thresholds.map((c) => c.attrs.name)).toEqual(run.thresholds.map((t) => `${t.expression} [${t.scope}]`))
    for (const [k, t] of run.thresholds.entries()) {
      const failure = thresholds[k].children.find((c) => c.name === 'failure')
      expect(Boolean(failure), t.expression).toBe(!t.pass)
    }
    // the fixture fails order.p99 < 1ms and the phase's order.p95 < 5ms; notify has no data and is optional (skipped, not failed)
    expect(thresholds.filter((c) => c.children.some((x) => x.name === 'failure')).map((c) => c.attrs.name)).toEqual(['order.p99 < 1ms [run]', 'order.p95 < 5ms [steady]'])
    expect(thresholds.find((c) => c.attrs.name.startsWith('notify'))!.children[0].name).toBe('skipped')
    expect(thresholds[1].children[0].attrs.message).toMatch(/order\.p99 < 1ms: actual \d+\.\dms, limit < 1\.00ms/)

    const invariants = suites[2].children
    expect(invariants.map((c) => c.attrs.name)).toEqual(['no_oversell', 'no_duplicate_orders'])
    expect(invariants[0].children).toEqual([])
    expect(invariants[1].children[0].attrs.message).toBe('user 7 has 2 orders for key <k&1>')
    expect(JSON.parse(invariants[1].children[0].text)).toEqual({userId: 7})

    expect(suites[0].children[0].children).toEqual([])
  })

  it('fails the run testcase of a void run and adds compare testcases with regressions', () => {
    const voided = {...run, void: {reason: 'generator stalled', detail: {maxLagMs: 812}}}
    const slower = buildRun(spec, generateRequests(spec, 4, ({random}) => ({ms: 40 + random() * 40})))
    const root = parseXml(renderJUnit(voided, compareRuns(slower, run)))
    const [runSuite, , , compare] = root.children
    expect(runSuite.children[0].children[0].attrs).toMatchObject({message: 'generator stalled', type: 'void_run'})
    expect(compare.attrs.name).toBe(`${spec.name}.compare`)
    expect(compare.children).toHaveLength(2 * 5)
    const failed = compare.children.filter((c) => c.children.length).map((c) => c.attrs.name)
    expect(failed).toContain('order p50 [steady]')
    expect(failed).toContain('browse_product p99 [steady]')
    expect(failed).not.toContain('order throughput [steady]')
  })
})
