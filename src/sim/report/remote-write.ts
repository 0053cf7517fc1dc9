import snappy from 'snappyjs'
import {UsageError, redactUrl} from '../../core/errors.js'
import type {StreamRecord} from './stream.js'

/**
 * Prometheus remote write (protocol 1.0: a snappy-compressed protobuf WriteRequest POSTed to
 * e.g. /api/v1/write) of the seconds `--out-stream` writes, so a long run's corrected latency
 * sits in Grafana beside the target's own /metrics. Every series carries `run_id`.
 *
 * Series (values per second of the run; latency in seconds, Prometheus' base unit):
 *   livedrop_offered_per_second                  the scenario's target rate
 *   livedrop_sent_per_second{type}               requests sent
 *   livedrop_completed_per_second{type}          responses completed
 *   livedrop_errors_per_second{type}             failed (non-OK status or no answer)
 *   livedrop_latency_seconds{type,timing,quantile}  corrected 0.5/0.95/0.99, service 0.99
 *   livedrop_responses_per_second{type,status}   answers by HTTP status
 *   livedrop_stock_remaining                     units left, when known
 * `type` is a request type or `all`.
 */

export interface Label {
  name: string
  value: string
}

export interface TimeSeries {
  labels: Label[]
  samples: Array<{value: number; timestampMs: number}>
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** The series of one second's records at one timestamp; labels sorted by name, as Prometheus requires. */
export function seriesOf(records: StreamRecord[], labels: Record<string, string>, timestampMs: number): TimeSeries[] {
  const out: TimeSeries[] = []
  const add = (name: string, extra: Record<string, string>, value: number | null | undefined) => {
    if (value === null || value === undefined || !Number.isFinite(value)) return
    const all: Record<string, string> = {...labels, ...extra, __name__: name}
    out.push({
      labels: Object.keys(all)
        .sort()
        .map((k) => ({name: k, value: all[k]})),
      samples: [{value, timestampMs}],
    })
  }
  const first = records[0]
  if (!first) return out
  add('livedrop_offered_per_second', {}, first.target)
  if (first.stock !== undefined) add('livedrop_stock_remaining', {}, first.stock)
  for (const r of records) {
    const type = {type: r.type}
    add('livedrop_sent_per_second', type, r.sent)
    add('livedrop_completed_per_second', type, r.done)
    add('livedrop_errors_per_second', type, r.errors)
    const sec = (ms: number | null) => (ms === null ? null : ms / 1000)
    add('livedrop_latency_seconds', {...type, timing: 'corrected', quantile: '0.5'}, sec(r.p50))
    add('livedrop_latency_seconds', {...type, timing: 'corrected', quantile: '0.95'}, sec(r.p95))
    add('livedrop_latency_seconds', {...type, timing: 'corrected', quantile: '0.99'}, sec(r.p99))
    add('livedrop_latency_seconds', {...type, timing: 'service', quantile: '0.99'}, sec(r.service_p99))
    for (const [status, n] of Object.entries(r.statuses)) add('livedrop_responses_per_second', {...type, status}, n)
  }
  return out
}

// ---- the protobuf of prometheus/prompb/remote.proto and types.proto, by hand (four messages) ----

class Writer {
  private bytes: number[] = []

  /** Unsigned varint; timestamps exceed 32 bits, so plain arithmetic rather than bit shifts. */
  varint(n: number): this {
    let v = n
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80)
      v = Math.floor(v / 0x80)
    }
    this.bytes.push(v)
    return this
  }

  tag(field: number, wire: 0 | 1 | 2): this {
    return this.varint(field * 8 + wire)
  }

  bytesField(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length)
    for (const b of data) this.bytes.push(b)
    return this
  }

  double(field: number, v: number): this {
    const b = Buffer.alloc(8)
    b.writeDoubleLE(v)
    this.tag(field, 1)
    for (const x of b) this.bytes.push(x)
    return this
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes)
  }
}

const utf8 = (s: string) => new TextEncoder().encode(s)

/** WriteRequest{timeseries=1}; TimeSeries{labels=1, samples=2}; Label{name=1, value=2}; Sample{value=1 double, timestamp=2 int64 ms}. */
export function encodeWriteRequest(series: TimeSeries[]): Uint8Array {
  const req = new Writer()
  for (const ts of series) {
    const t = new Writer()
    for (const l of ts.labels) t.bytesField(1, new Writer().bytesField(1, utf8(l.name)).bytesField(2, utf8(l.value)).finish())
    for (const s of ts.samples) t.bytesField(2, new Writer().double(1, s.value).tag(2, 0).varint(s.timestampMs).finish())
    req.bytesField(1, t.finish())
  }
  return req.finish()
}

export interface RemoteWriterOptions {
  /** http(s)://host:port/api/v1/write */
  url: string
  /** Labels on every series; `run_id` among them. */
  labels: Record<string, string>
  /** The most seconds waiting to be sent; when more arrive the oldest is dropped. Default 120. */
  maxQueuedSeconds?: number
  /** How long one push may take, ms. Default 5000. */
  timeoutMs?: number
  /** Clock for the samples' timestamps, ms since the epoch. Default Date.now. */
  now?: () => number
}

export interface RemoteWriteReport {
  /** The URL, password hidden. */
  url: string
  /** Seconds Prometheus accepted. */
  sentSeconds: number
  /** Seconds lost: dropped from a full queue, refused by Prometheus (4xx), or still queued at close. */
  droppedSeconds: number
  /** Pushes that failed (each retryable one is retried until it goes or is dropped). */
  failedPushes: number
  lastError: string | null
  /** What a renderer prints: empty when every second went out. */
  warnings: string[]
}

export interface RemoteWriter {
  /** Queues one second's records; never throws, never waits. */
  push(records: StreamRecord[]): void
  /** Sends what is queued for at most flushTimeoutMs, then stops and reports. */
  close(flushTimeoutMs: number): Promise<RemoteWriteReport>
}

/** Seconds sent together when Prometheus was away and a backlog built up. */
const MAX_SECONDS_PER_PUSH = 10
/** Waits between retries of a failed push: 0.5 s doubling to 8 s. */
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 8000

/**
 * A remote writer that cannot hold up or crash the run: push() only queues; one request is in
 * flight at a time with a timeout; a failed push (network, 5xx, 429) is retried with backoff while
 * newer seconds queue behind it; the queue keeps at most maxQueuedSeconds and drops the oldest
 * beyond that; a 4xx answer (a sample Prometheus refuses) drops that push. Every loss is counted
 * in the report close() returns.
 */
export function createRemoteWriter(opts: RemoteWriterOptions): RemoteWriter {
  let url: URL
  try {
    url = new URL(opts.url)
    if (!/^https?:$/.test(url.protocol)) throw new Error('not http')
  } catch {
    throw new UsageError('--prometheus-rw', `expected http(s)://host:port/api/v1/write, got "${redactUrl(opts.url)}"`, {hint: 'For example --prometheus-rw http://127.0.0.1:9090/api/v1/write (Prometheus started with --web.enable-remote-write-receiver).'})
  }
  for (const name of Object.keys(opts.labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new UsageError('--prometheus-rw', `"${name}" is not a Prometheus label name`, {hint: 'Label names are letters, digits and _, not starting with a digit or __.'})
  }
  const maxQueued = opts.maxQueuedSeconds ?? 120
  const timeoutMs = opts.timeoutMs ?? 5000
  const now = opts.now ?? Date.now
  const shown = redactUrl(opts.url)
  const queue: TimeSeries[][] = []
  const report: RemoteWriteReport = {url: shown, sentSeconds: 0, droppedSeconds: 0, failedPushes: 0, lastError: null, warnings: []}
  // second t of the run ends at anchor + (t + 1) s: timestamps keep the run's spacing
  let anchor: number | null = null
  let running: Promise<void> | null = null
  let retryMs = RETRY_MIN_MS
  let closing = false
  const inFlight = new AbortController()

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      // a writer left open never keeps the process alive
      timer.unref()
      inFlight.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), {once: true})
    })

  async function pump(): Promise<void> {
    while (queue.length && !inFlight.signal.aborted) {
      const batch = queue.slice(0, MAX_SECONDS_PER_PUSH)
      const body = snappy.compress(encodeWriteRequest(merge(batch)))
      let retry = false
      try {
        const res = await fetch(url, {
          method: 'POST',
          body,
          headers: {'Content-Encoding': 'snappy', 'Content-Type': 'application/x-protobuf', 'User-Agent': 'livedrop', 'X-Prometheus-Remote-Write-Version': '0.1.0'},
          signal: AbortSignal.any([inFlight.signal, AbortSignal.timeout(timeoutMs)]),
        })
        const text = res.ok ? '' : (await res.text().catch(() => '')).slice(0, 200).trim()
        if (res.ok) {
          report.sentSeconds += batch.length
          retryMs = RETRY_MIN_MS
        } else {
          report.failedPushes++
          report.lastError = `HTTP ${res.status}${text ? `: ${text}` : ''}`
          retry = res.status >= 500 || res.status === 429
          if (!retry) report.droppedSeconds += batch.length
        }
      } catch (err) {
        if (inFlight.signal.aborted) return
        report.failedPushes++
        report.lastError = describe(err)
        retry = true
      }
      // the batch may have shrunk meanwhile: a full queue drops from the front
      const sent = Math.min(batch.length, queue.length)
      if (!retry) queue.splice(0, sent)
      else {
        await sleep(retryMs)
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2)
      }
    }
  }

  const kick = () => {
    if (running || closing) return
    running = pump().finally(() => {
      running = null
      if (queue.length && !closing && !inFlight.signal.aborted) kick()
    })
  }

  return {
    push(records) {
      if (closing || !records.length) return
      const t = records[0].t
      anchor ??= now() - (t + 1) * 1000
      queue.push(seriesOf(records, opts.labels, Math.round(anchor + (t + 1) * 1000)))
      while (queue.length > maxQueued) {
        queue.shift()
        report.droppedSeconds++
      }
      kick()
    },
    async close(flushTimeoutMs) {
      closing = true
      if (!running && queue.length) running = pump().finally(() => (running = null))
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, flushTimeoutMs).unref())
      await Promise.race([running ?? Promise.resolve(), deadline])
      inFlight.abort()
      await running
      report.droppedSeconds += queue.splice(0).length
      if (report.droppedSeconds || report.failedPushes) {
        report.warnings.push(
          `Prometheus remote write to ${shown}: ${report.sentSeconds} second(s) sent, ${report.droppedSeconds} dropped, ${report.failedPushes} failed push(es)${report.lastError ? ` (last: ${report.lastError})` : ''}`,
        )
      }
      return report
    },
  }
}

/** Several seconds in one request: each series once, its samples in time order. */
function merge(batch: TimeSeries[][]): TimeSeries[] {
  const byKey = new Map<string, TimeSeries>()
  for (const second of batch)
    for (const ts of second) {
      const key = ts.labels.map((l) => `${l.name}=${l.value}`).join('\u0000')
      const have = byKey.get(key)
      if (have) have.samples.push(...ts.samples)
      else byKey.set(key, {labels: ts.labels, samples: [...ts.samples]})
    }
  return [...byKey.values()]
}

function describe(err: unknown): string {
  const e = err as {name?: string; message?: string; cause?: {code?: string; message?: string}}
  if (e?.name === 'TimeoutError') return 'timed out'
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)
}
