import {describe, expect, it} from 'vitest'
import {cannotPass, evaluateThreshold, formatThresholdActual, formatThresholdValue, NO_SAMPLES, parseThreshold, worstWindow, type MetricLookup, type WindowLookup} from './thresholds.js'

describe('parseThreshold', () => {
  it('reads k6-like expressions into metric, stat, op and a limit in base units', () => {
    expect(parseThreshold('read.p95 < 200ms')).toMatchObject({metric: 'read', stat: 'p95', op: '<', limit: 200, kind: 'latency', timing: 'corrected'})
    expect(parseThreshold('notify.p95 < 2s')).toMatchObject({metric: 'notify', limit: 2000})
    expect(parseThreshold('order.service.p99.9 <= 750us')).toMatchObject({metric: 'order', timing: 'service', stat: 'p99.9', op: '<=', limit: 0.75})
    expect(parseThreshold('errors.rate < 0.1%')).toMatchObject({metric: 'all', stat: 'errors', kind: 'fraction', limit: 0.001})
    expect(parseThreshold('order.errors < 0.02')).toMatchObject({stat: 'errors', limit: 0.02})
    expect(parseThreshold('browse_product.rate >= 95/s')).toMatchObject({stat: 'rate', kind: 'rate', op: '>=', limit: 95})
    expect(parseThreshold('  order.count > 10 ')).toMatchObject({expression: 'order.count > 10', kind: 'count', limit: 10})
    expect(parseThreshold('read.avg < 20')).toMatchObject({stat: 'mean', limit: 20})
    expect(parseThreshold('read.late == 0%')).toMatchObject({stat: 'late', op: '==', limit: 0})
    expect(parseThreshold('read.p95 < 200ms')).toMatchObject({optional: false, windowS: null})
    expect(parseThreshold('order.p95? < 500ms')).toMatchObject({metric: 'order', stat: 'p95', optional: true, limit: 500, windowS: null})
    expect(parseThreshold('errors.rate? < 1%')).toMatchObject({stat: 'errors', optional: true, limit: 0.01})
    expect(parseThreshold('read.p99 < 300ms over 5s')).toMatchObject({stat: 'p99', limit: 300, windowS: 5, optional: false})
    expect(parseThreshold('order.service.max? <= 1s over 2m')).toMatchObject({timing: 'service', stat: 'max', limit: 1000, windowS: 120, optional: true})
  })

  it.each([
    ['read.p95 200ms', /cannot parse/],
    ['read < 200ms', /cannot parse/],
    ['read.p95 < 2 minutes', /cannot parse/],
    ['read.p0 < 1ms', /percentile/],
    ['read.p101 < 1ms', /percentile/],
    ['read.p95 < 5%', /latency takes ms, s or us/],
    ['errors.p95 < 1ms', /errors only has \.rate/],
    ['order.errors < 5ms', /share takes %/],
    ['order.rate > 5%', /rate takes \/s/],
    ['order.count > 5ms', /count takes no unit/],
    ['order.service.rate > 5', /only applies to latency/],
    ['order.p95 ? < 1ms', /cannot parse/],
    ['read.p99 < 300ms over 5', /cannot parse/],
    ['read.p99 < 300ms over 0s', /at least 1s/],
    ['order.errors < 1% over 5s', /windows only apply to latency/],
  ])('refuses %s', (text, message) => {
    expect(() => parseThreshold(text)).toThrow(message)
  })
})

describe('evaluateThreshold', () => {
  const values: Record<string, number | undefined> = {'read/p95/corrected': 180, 'read/p95/service': 20, 'all/errors/corrected': 0.002, 'order/p95/corrected': undefined}
  const lookup: MetricLookup = (m, s, t) => values[`${m}/${s}/${t}`]

  it('compares the measured value with the limit', () => {
    expect(evaluateThreshold(parseThreshold('read.p95 < 200ms'), 'run', lookup)).toMatchObject({pass: true, actual: 180, scope: 'run'})
    expect(evaluateThreshold(parseThreshold('read.p95 < 180ms'), 'run', lookup)).toMatchObject({pass: false, actual: 180})
    expect(evaluateThreshold(parseThreshold('read.p95 <= 180ms'), 'run', lookup).pass).toBe(true)
    expect(evaluateThreshold(parseThreshold('read.p95 > 0.1s'), 'run', lookup).pass).toBe(true)
    expect(evaluateThreshold(parseThreshold('read.service.p95 < 25ms'), 'burst', lookup)).toMatchObject({pass: true, actual: 20, scope: 'burst'})
    expect(evaluateThreshold(parseThreshold('errors.rate < 0.1%'), 'run', lookup)).toMatchObject({pass: false, actual: 0.002})
  })

  it('fails with noData when the metric has no samples, unless written optional with ?', () => {
    const required = evaluateThreshold(parseThreshold('order.p95 < 500ms'), 'run', lookup)
    expect(required).toMatchObject({pass: false, noData: true, actual: null, optional: false})
    expect(formatThresholdActual(required)).toBe(NO_SAMPLES)
    expect(NO_SAMPLES).toBe('no samples: the traffic this threshold guards never ran')
    const optional = evaluateThreshold(parseThreshold('order.p95? < 500ms'), 'run', lookup)
    expect(optional).toMatchObject({pass: true, noData: true, actual: null, optional: true})
    expect(formatThresholdActual(optional)).toBe('no data (optional)')
    // an optional threshold with data is judged as any other
    expect(evaluateThreshold(parseThreshold('read.p95? < 100ms'), 'run', lookup)).toMatchObject({pass: false, noData: false, actual: 180})
  })

  it('a window threshold is judged on its worst window and names it', () => {
    const perWindow: WindowLookup = (m, s, t, seconds) =>
      m === 'read' && s === 'p99' && t === 'corrected' && seconds === 5
        ? [
            {startS: 0, value: 120},
            {startS: 1, value: 340},
            {startS: 2, value: 310},
          ]
        : []
    const failed = evaluateThreshold(parseThreshold('read.p99 < 300ms over 5s'), 'run', lookup, perWindow)
    expect(failed).toMatchObject({pass: false, actual: 340, window: {seconds: 5, startS: 1}})
    expect(formatThresholdActual(failed)).toBe('340.0ms (5s window from 1s)')
    expect(evaluateThreshold(parseThreshold('read.p99 < 400ms over 5s'), 'run', lookup, perWindow)).toMatchObject({pass: true, actual: 340})
    // no window with samples: no data, failing unless optional
    expect(evaluateThreshold(parseThreshold('read.p99 < 300ms over 3s'), 'run', lookup, perWindow)).toMatchObject({pass: false, noData: true, window: null})
    expect(evaluateThreshold(parseThreshold('read.p99? < 300ms over 3s'), 'run', lookup, perWindow)).toMatchObject({pass: true, noData: true})
    // a whole-scope threshold ignores the windows; with no per-second data a window one is judged on the scope
    expect(evaluateThreshold(parseThreshold('read.p95 < 200ms'), 'run', lookup, perWindow)).toMatchObject({actual: 180, window: null})
    expect(evaluateThreshold(parseThreshold('read.p95 < 200ms over 5s'), 'run', lookup)).toMatchObject({actual: 180, window: null})
  })

  it('worstWindow picks the highest for < and <=, the lowest for > and >=, the first unequal for ==', () => {
    const w = [
      {startS: 3, value: 5},
      {startS: 4, value: 9},
      {startS: 5, value: 2},
    ]
    expect(worstWindow(w, '<', 6)).toEqual({startS: 4, value: 9})
    expect(worstWindow(w, '<=', 6)).toEqual({startS: 4, value: 9})
    expect(worstWindow(w, '>', 1)).toEqual({startS: 5, value: 2})
    expect(worstWindow(w, '>=', 1)).toEqual({startS: 5, value: 2})
    expect(worstWindow(w, '==', 5)).toEqual({startS: 4, value: 9})
    expect(worstWindow([{startS: 0, value: 5}], '==', 5)).toEqual({startS: 0, value: 5})
    expect(worstWindow([], '<', 1)).toBeUndefined()
  })

  it('formats values in the threshold unit', () => {
    expect(formatThresholdValue('latency', 212.44)).toBe('212.4ms')
    expect(formatThresholdValue('latency', 2500)).toBe('2.50s')
    expect(formatThresholdValue('fraction', 0.0005)).toBe('0.050%')
    expect(formatThresholdValue('rate', 148.91)).toBe('148.9/s')
    expect(formatThresholdValue('count', null)).toBe('no data')
  })
})

describe('cannotPass: whether a threshold fails whatever value in [lo, hi] it ends at', () => {
  it('an upper limit (< or <=) fails for certain once the least it can end at is past it', () => {
    // errors.rate < 1%: 130 errors of at most 12,001 requests are already 1.08%
    expect(cannotPass('<', 0.01, 130 / 12_001, 1)).toBe(true)
    expect(cannotPass('<', 0.01, 119 / 12_001, 1)).toBe(false)
    expect(cannotPass('<', 100, 100, 400)).toBe(true)
    expect(cannotPass('<=', 100, 100, 400)).toBe(false)
    expect(cannotPass('<=', 100, 100.5, 400)).toBe(true)
  })

  it('a lower limit (> or >=) fails for certain once the most it can end at is short of it', () => {
    // order.count >= 1000 with at most 840 completions left possible
    expect(cannotPass('>=', 1000, 300, 840)).toBe(true)
    expect(cannotPass('>=', 1000, 300, 1000)).toBe(false)
    expect(cannotPass('>', 1000, 300, 1000)).toBe(true)
    expect(cannotPass('>', 1000, 300, 1001)).toBe(false)
  })

  it('== fails for certain only when the limit is outside [lo, hi]; an empty range proves nothing', () => {
    expect(cannotPass('==', 5, 6, 9)).toBe(true)
    expect(cannotPass('==', 10, 6, 9)).toBe(true)
    expect(cannotPass('==', 7, 6, 9)).toBe(false)
    expect(cannotPass('<', 1, 5, 2)).toBe(false)
  })
})
