import {once} from 'node:events'
import {open} from 'node:fs/promises'
import type {WriteStream} from 'node:fs'
import {LivedropError, UsageError} from '../../core/errors.js'
import {LatencyHistogram} from '../../core/histogram.js'
import type {RunResult, SeriesPoint} from '../metrics/result.js'
import {createRemoteWriter, type RemoteWriteReport, type RemoteWriter} from './remote-write.js'

/**
 * One second of one request type (or `all`), as `--out-stream` writes it (one JSON line each)
 * and remote write pushes it. Latency in ms, corrected from the intended send time; null in a
 * second with no completed response of that type.
 */
export interface StreamRecord {
  run_id: string
  /** Second of the run (0-based). */
  t: number
  phase: string
  type: string
  /** The phase's target rate this second, req/s (all types together). */
  target: number
  sent: number
  done: number
  errors: number
  p50: number | null
  p95: number | null
  p99: number | null
  service_p99: number | null
  /** Answers by HTTP status this second. */
  statuses: Record<string, number>
  /** Units left, when the run knows; on every record of the second. */
  stock?: number
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

/**
 * The records of one closed second: one per request type, `all` last. Percentiles come from the
 * second's HDR histograms where the point carries them (p95 exists only there); otherwise from
 * the point's own p50/p99.
 */
export function streamRecords(point: SeriesPoint, runId: string): StreamRecord[] {
  const names = Object.keys(point.types).sort((a, b) => (a === 'all' ? 1 : b === 'all' ? -1 : a.localeCompare(b)))
  return names.map((type) => {
    const p = point.types[type]
    const lat = {p50: null as number | null, p95: null as number | null, p99: null as number | null, service_p99: null as number | null}
    if (p.done > 0 && p.histograms) {
      const c = LatencyHistogram.decode(p.histograms.corrected)
      const s = LatencyHistogram.decode(p.histograms.service)
      Object.assign(lat, {p50: round3(c.percentileMs(50)), p95: round3(c.percentileMs(95)), p99: round3(c.percentileMs(99)), service_p99: round3(s.percentileMs(99))})
    } else if (p.done > 0) Object.assign(lat, {p50: p.p50, p99: p.p99, service_p99: p.serviceP99})
    return {
      run_id: runId,
      t: point.t,
      phase: point.phase,
      type,
      target: point.target,
      sent: p.sent,
      done: p.done,
      errors: p.errors,
      ...lat,
      statuses: p.statuses ?? {},
      ...(point.stock !== undefined ? {stock: point.stock} : {}),
    }
  })
}

export interface ResultStreamOptions {
  /** Path of an NDJSON file to write one line per second per request type to (truncated first). Default none. */
  ndjson?: string
  /** Prometheus remote-write URL (e.g. http://127.0.0.1:9090/api/v1/write). Default none. */
  prometheusRw?: string
  /** The `run_id` label and field: ties the streamed seconds to one run. */
  runId: string
  /** Extra labels on every remote-written series (e.g. {scenario: 'celebrity-drop'}). Default none. */
  labels?: Record<string, string>
  /** Remote write: the most seconds waiting to be sent; older ones are dropped first. Default 120. */
  maxQueuedSeconds?: number
  /** Remote write: how long one push may take, ms. Default 5000. */
  timeoutMs?: number
  /** Remote write: how long close() waits for what is still queued, ms. Default 5000. */
  flushTimeoutMs?: number
}

/** What close() found: the remote writer's counts and, when it lost anything, why. */
export interface StreamCloseReport {
  ndjson: {file: string; lines: number} | null
  remoteWrite: RemoteWriteReport | null
  /** One sentence per problem a renderer should print (remote write failed, seconds dropped). Empty when all went out. */
  warnings: string[]
}

export interface ResultStreams {
  /** Streams one closed second. Never throws and never waits: a file error shows in close(), a remote-write failure in its report. */
  second(point: SeriesPoint): void
  /** Writes a fault (when it was caused and over, what was done) as its own NDJSON line: {"run_id", "fault", "atMs", …}. */
  fault(f: NonNullable<RunResult['faults']>[number]): void
  /** Flushes and closes. Rejects when the NDJSON file could not be written; remote-write failures are warnings in the report. */
  close(): Promise<StreamCloseReport>
}

/**
 * Opens the streams a run writes its seconds to while it goes: an NDJSON file and/or Prometheus
 * remote write. The file is opened (and so checked) before the run starts: a path that cannot be
 * written is a usage error (exit 2) then, not a surprise at the end.
 *
 * @example
 * const streams = await openResultStreams({ndjson: 'run.ndjson', runId})
 * handle.on('second', (p) => streams.second(p))
 * const {warnings} = await streams.close()
 */
export async function openResultStreams(opts: ResultStreamOptions): Promise<ResultStreams> {
  let file: WriteStream | null = null
  let fileError: Error | null = null
  let lines = 0
  if (opts.ndjson) {
    try {
      file = (await open(opts.ndjson, 'w')).createWriteStream({encoding: 'utf8'})
    } catch (err) {
      throw new UsageError('--out-stream', `cannot write ${opts.ndjson} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
        hint: 'Give a path in a directory that exists and that you can write to.',
      })
    }
    file.on('error', (err) => (fileError ??= err))
  }
  let writer: RemoteWriter | null = null
  if (opts.prometheusRw) {
    writer = createRemoteWriter({url: opts.prometheusRw, labels: {...opts.labels, run_id: opts.runId}, maxQueuedSeconds: opts.maxQueuedSeconds, timeoutMs: opts.timeoutMs})
  }
  return {
    fault(f) {
      if (file && !fileError) {
        file.write(JSON.stringify({run_id: opts.runId, fault: f.kind, atMs: f.atMs, ...(f.endMs !== undefined ? {endMs: f.endMs} : {}), action: f.action, ...(f.error ? {error: f.error} : {})}) + '\n')
        lines++
      }
    },
    second(point) {
      const records = streamRecords(point, opts.runId)
      if (file && !fileError) {
        // the stream buffers what the disk has not taken yet; a second is a few hundred bytes
        file.write(records.map((r) => JSON.stringify(r)).join('\n') + '\n')
        lines += records.length
      }
      writer?.push(records)
    },
    async close() {
      const warnings: string[] = []
      let remoteWrite: RemoteWriteReport | null = null
      if (writer) {
        remoteWrite = await writer.close(opts.flushTimeoutMs ?? 5000)
        warnings.push(...remoteWrite.warnings)
      }
      if (file) {
        if (!file.destroyed) {
          file.end()
          await Promise.race([once(file, 'close'), once(file, 'error').catch(() => {})]).catch(() => {})
        }
        // the file failed mid-run (disk full, mount gone): exit 1 naming it, after the run's own report
        if (fileError) throw new LivedropError(`--out-stream ${opts.ndjson}: ${(fileError as Error).message}`, {hint: 'The streamed seconds are incomplete; the run file (--out) holds the whole run.'})
      }
      return {ndjson: opts.ndjson ? {file: opts.ndjson, lines} : null, remoteWrite, warnings}
    },
  }
}
