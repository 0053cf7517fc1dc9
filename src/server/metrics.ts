import {monitorEventLoopDelay} from 'node:perf_hooks'
import client from 'prom-client'

/** Upper bounds of the request latency histogram, seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]

/** The requests answered for one route, method and status, and their latency, in plain numbers. */
export class RequestTally {
  count = 0
  sum = 0
  /** Requests per latency bucket, not cumulative: index i is at most LATENCY_BUCKETS[i], the last is above them all. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1)

  constructor(
    readonly route: string,
    readonly method: string,
    readonly status: number,
  ) {}

  observe(seconds: number): void {
    this.count++
    this.sum += seconds
    let i = 0
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++
    this.buckets[i]++
  }
}

/** Per-server Prometheus metrics (a registry per instance, so tests can run several servers). */
export class ServerMetrics {
  readonly registry = new client.Registry()
  readonly orders = new client.Counter({
    name: 'livedrop_orders_total',
    help: 'Order attempts by outcome (confirmed, sold_out, replay, error code)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly sseClients = new client.Gauge({
    name: 'livedrop_sse_clients',
    help: 'Connected Server-Sent Events streams',
    registers: [this.registry],
  })

  /** Per route, method and status; turned into the two request series at scrape time (see constructor). */
  private readonly tallies = new Map<string, RequestTally>()

  /** The tally of one route, method and status, made on first use: a hot path keeps it and calls observe. */
  requestTally(route: string, method: string, status: number): RequestTally {
    const key = `${method} ${status} ${route}`
    let tally = this.tallies.get(key)
    if (!tally) this.tallies.set(key, (tally = new RequestTally(route, method, status)))
    return tally
  }

  /** Records one answered request. */
  recordRequest(route: string, method: string, status: number, seconds: number): void {
    this.requestTally(route, method, status).observe(seconds)
  }

  /** Adds a gauge computed at scrape time (cache counters, lock waits, fan-out backlog). */
  gauge(name: string, help: string, labelNames: string[], collect: (set: (labels: Record<string, string>, value: number) => void) => Promise<void> | void): void {
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset()
        await collect((labels, value) => this.set(labels, value))
      },
    })
  }

  /** Stops the event-loop monitor (the server's onClose calls it). */
  readonly close: () => void

  /** worker: the serve worker this process is; every series then carries worker and pid labels. */
  constructor(worker?: {index: number; pid: number}) {
    if (worker) this.registry.setDefaultLabels({worker: String(worker.index), pid: String(worker.pid)})
    // The request series, in prom-client's own export shape: prom-client's Counter and Histogram
    // hash a label object on every call, which cost the cached product read a sixth of its CPU
    const tallies = this.tallies
    const requests = {
      name: 'livedrop_http_requests_total',
      help: 'HTTP requests by route, method and status code',
      type: 'counter',
      aggregator: 'sum',
      get() {
        const values = [...tallies.values()].map((t) => ({labels: {route: t.route, method: t.method, status: String(t.status)}, value: t.count}))
        return {name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values}
      },
    }
    const latency = {
      name: 'livedrop_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      type: 'histogram',
      aggregator: 'sum',
      get() {
        // the histogram is per route and method: its statuses' tallies summed
        const byRoute = new Map<string, {route: string; method: string; count: number; sum: number; buckets: number[]}>()
        for (const t of tallies.values()) {
          const key = `${t.method} ${t.route}`
          let r = byRoute.get(key)
          if (!r) byRoute.set(key, (r = {route: t.route, method: t.method, count: 0, sum: 0, buckets: new Array<number>(t.buckets.length).fill(0)}))
          r.count += t.count
          r.sum += t.sum
          t.buckets.forEach((n, i) => (r.buckets[i] += n))
        }
        const values = [...byRoute.values()].flatMap((r) => {
          const sharedLabels = {route: r.route, method: r.method}
          let below = 0
          return [
            ...LATENCY_BUCKETS.map((le, i) => ({metricName: `${this.name}_bucket`, labels: {le}, sharedLabels, value: (below += r.buckets[i])})),
            {metricName: `${this.name}_bucket`, labels: {le: '+Inf'}, sharedLabels, value: r.count},
            {metricName: `${this.name}_sum`, labels: {}, sharedLabels, value: r.sum},
            {metricName: `${this.name}_count`, labels: {}, sharedLabels, value: r.count},
          ]
        })
        return {name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values}
      },
    }
    for (const metric of [requests, latency]) this.registry.registerMetric(metric as unknown as client.Metric)
    // prom-client's default Node metrics name gauges *_total, which promtool rejects; these two
    // carry what an operator looks at: memory and event-loop lag
    const lag = monitorEventLoopDelay({resolution: 10})
    lag.enable()
    this.close = () => lag.disable()
    this.gauge('livedrop_process_resident_memory_bytes', 'Resident memory of this serve process', [], (set) => set({}, process.memoryUsage.rss()))
    this.gauge('livedrop_event_loop_lag_p99_seconds', 'p99 event-loop delay since the last scrape', [], (set) => {
      set({}, lag.percentile(99) / 1e9)
      lag.reset()
    })
  }
}
