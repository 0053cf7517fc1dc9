import {monitorEventLoopDelay} from 'node:perf_hooks'
import client from 'prom-client'

/** Per-server Prometheus metrics (a registry per instance, so tests can run several servers). */
export class ServerMetrics {
  readonly registry = new client.Registry()
  readonly requests = new client.Counter({
    name: 'livedrop_http_requests_total',
    help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  })
  readonly latency = new client.Histogram({
    name: 'livedrop_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  })
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
