import {describe, expect, it} from 'vitest'
import {evaluateThreshold, formatThresholdValue, parseThreshold, type MetricLookup} from './thresholds.js'

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

  it('passes with noData when the metric has no samples (as k6 does), and says so', () => {
    expect(evaluateThreshold(parseThreshold('order.p95 < 500ms'), 'run', lookup)).toMatchObject({pass: true, noData: true, actual: null})
  })

  it('formats values in the threshold unit', () => {
    expect(formatThresholdValue('latency', 212.44)).toBe('212.4ms')
    expect(formatThresholdValue('latency', 2500)).toBe('2.50s')
    expect(formatThresholdValue('fraction', 0.0005)).toBe('0.050%')
    expect(formatThresholdValue('rate', 148.91)).toBe('148.9/s')
    expect(formatThresholdValue('count', null)).toBe('no data')
  })
})
