import {describe, expect, it} from 'vitest'
import {ServerMetrics} from './metrics.js'

describe('request metrics', () => {
  it('exports the request counter per status and a cumulative latency histogram per route, as Prometheus text', async () => {
    const metrics = new ServerMetrics({index: 2, pid: 42})
    try {
      metrics.recordRequest('/orders', 'POST', 201, 0.0005)
      metrics.recordRequest('/orders', 'POST', 201, 0.003)
      // a hot path's own tally is the same series
      metrics.requestTally('/orders', 'POST', 409).observe(7)
      metrics.recordRequest('/orders', 'POST', 201, 0.001)
      const text = await metrics.registry.metrics()
      const line = (s: string) => expect(text.split('\n')).toContain(s)
      line('livedrop_http_requests_total{route="/orders",method="POST",status="201",worker="2",pid="42"} 3')
      line('livedrop_http_requests_total{route="/orders",method="POST",status="409",worker="2",pid="42"} 1')
      // a value on a bound counts in that bucket (le: less than or equal)
      line('livedrop_http_request_duration_seconds_bucket{le="0.001",worker="2",pid="42",route="/orders",method="POST"} 2')
      line('livedrop_http_request_duration_seconds_bucket{le="0.0025",worker="2",pid="42",route="/orders",method="POST"} 2')
      line('livedrop_http_request_duration_seconds_bucket{le="0.005",worker="2",pid="42",route="/orders",method="POST"} 3')
      line('livedrop_http_request_duration_seconds_bucket{le="5",worker="2",pid="42",route="/orders",method="POST"} 3')
      line('livedrop_http_request_duration_seconds_bucket{le="+Inf",worker="2",pid="42",route="/orders",method="POST"} 4')
      line('livedrop_http_request_duration_seconds_sum{worker="2",pid="42",route="/orders",method="POST"} 7.0045')
      line('livedrop_http_request_duration_seconds_count{worker="2",pid="42",route="/orders",method="POST"} 4')
      expect(text).toContain('# TYPE livedrop_http_request_duration_seconds histogram')
      expect(text).toContain('# TYPE livedrop_http_requests_total counter')
    } finally {
      metrics.close()
    }
  })
})
