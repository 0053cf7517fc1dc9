import {describe, expect, it} from 'vitest'
import {translateThreshold} from './k6.js'

describe('translateThreshold', () => {
  it('maps latency, error, rate and count thresholds to k6 metrics and tag filters', () => {
    expect(translateThreshold('read.p95 < 200ms', null)).toEqual({key: 'http_req_duration{req_group:read}', condition: 'p(95)<200'})
    expect(translateThreshold('order.p99.9 <= 1.5s', null)).toEqual({key: 'http_req_duration{req_type:order}', condition: 'p(99.9)<=1500'})
    expect(translateThreshold('order.p95 < 500ms', 'drop-opens')).toEqual({key: 'http_req_duration{req_type:order,phase:drop-opens}', condition: 'p(95)<500'})
    expect(translateThreshold('order.service.max < 2s', null)).toEqual({key: 'http_req_duration{req_type:order}', condition: 'max<2000'})
    expect(translateThreshold('all.avg < 50ms', null)).toEqual({key: 'http_req_duration', condition: 'avg<50'})
    expect(translateThreshold('errors.rate < 0.1%', null)).toEqual({key: 'http_req_failed', condition: 'rate<0.001'})
    expect(translateThreshold('order.errors < 1%', 'cool-down')).toEqual({key: 'http_req_failed{req_type:order,phase:cool-down}', condition: 'rate<0.01'})
    expect(translateThreshold('browse_product.rate > 95/s', null)).toEqual({key: 'http_reqs{req_type:browse_product}', condition: 'rate>95'})
    expect(translateThreshold('write.count >= 1000', null)).toEqual({key: 'http_reqs{req_group:write}', condition: 'count>=1000'})
  })

  it('names what k6 cannot measure instead of inventing a threshold', () => {
    expect(translateThreshold('notify.p95 < 2s', null)).toMatchObject({skipped: expect.stringMatching(/notify/)})
    expect(translateThreshold('order.late < 1%', null)).toMatchObject({skipped: expect.stringMatching(/dropped_iterations/)})
  })
})
