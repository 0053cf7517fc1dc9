import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import snappy from 'snappyjs'
import {freePort} from '../src/core/net.js'
import {createRemoteWriter, encodeWriteRequest} from '../src/sim/report/remote-write.js'
import {openResultStreams, streamRecords} from '../src/sim/report/stream.js'
import {secondPoint, spread} from './report-points.js'

/** A real Prometheus (Debian's package; the test setup installs it) with the remote-write receiver on a free port. */
const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-prom-'))
let prom: ChildProcess
let base = ''
let promLog = ''

beforeAll(async () => {
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  const config = path.join(dir, 'prometheus.yml')
  writeFileSync(config, 'global:\n  scrape_interval: 1m\n')
  prom = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--web.enable-remote-write-receiver'], {stdio: ['ignore', 'ignore', 'pipe']})
  prom.stderr!.on('data', (d) => (promLog += d))
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false)
    if (ok) return
    if (prom.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`prometheus did not become ready:\n${promLog.slice(-2000)}`)
}, 60_000)

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const exited = new Promise((r) => prom.once('exit', r))
    process.kill(prom.pid!, 'SIGTERM')
    await exited
  }
  rmSync(dir, {recursive: true, force: true})
})

/** Every raw sample of a selector over the last hour, as [ms, value], read back through the HTTP API. */
async function samples(selector: string): Promise<Array<[number, number]>> {
  const time = (Date.now() + 60_000) / 1000
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(`${selector}[1h]`)}&time=${time}`)
  const body = (await res.json()) as {status: string; data: {result: Array<{metric: Record<string, string>; values: Array<[number, string]>}>}}
  expect(body.status).toBe('success')
  return body.data.result.flatMap((r) => r.values.map(([t, v]) => [Math.round(t * 1000), Number(v)] as [number, number]))
}

describe('Prometheus remote write against a real Prometheus', () => {
  it('pushes the streamed series with run_id; Prometheus returns them by query', async () => {
    const runId = `t${Date.now()}`
    const streams = await openResultStreams({prometheusRw: `${base}/api/v1/write`, runId, labels: {scenario: 'celebrity-drop'}})
    const points = Array.from({length: 6}, (_, t) =>
      secondPoint(t, t < 3 ? 'warm' : 'drop', t < 3 ? 50 : 200, {browse_product: {latencies: spread(40 + t, 2, 20)}, order: {latencies: spread(10 * t + 5, 30, 300), statuses: Array.from({length: 10 * t + 5}, (_, i) => (i % 5 === 0 ? 409 : 201))}}, 500 - 60 * t),
    )
    for (const p of points) streams.second(p)
    const report = await streams.close()
    expect(report.warnings).toEqual([])
    expect(report.remoteWrite).toMatchObject({sentSeconds: 6, droppedSeconds: 0, failedPushes: 0})

    const sent = await samples(`livedrop_sent_per_second{run_id="${runId}",type="order",scenario="celebrity-drop"}`)
    expect(sent.map(([, v]) => v)).toEqual([5, 15, 25, 35, 45, 55])
    // one second apart, as the run's seconds were
    for (let i = 1; i < sent.length; i++) expect(sent[i][0] - sent[i - 1][0]).toBe(1000)
    const p99 = await samples(`livedrop_latency_seconds{run_id="${runId}",type="order",timing="corrected",quantile="0.99"}`)
    const expected = points.map((p) => streamRecords(p, runId).find((r) => r.type === 'order')!.p99! / 1000)
    expect(p99.map(([, v]) => v)).toEqual(expected)
    expect(await samples(`livedrop_responses_per_second{run_id="${runId}",type="order",status="409"}`)).toHaveLength(6)
    expect((await samples(`livedrop_stock_remaining{run_id="${runId}"}`)).map(([, v]) => v)).toEqual([500, 440, 380, 320, 260, 200])
    expect((await samples(`livedrop_offered_per_second{run_id="${runId}"}`)).map(([, v]) => v)).toEqual([50, 50, 50, 200, 200, 200])
    // another run's id selects nothing
    expect(await samples(`livedrop_sent_per_second{run_id="${runId}x"}`)).toEqual([])
  })

  it('catches up after Prometheus refused a while (5xx): retried seconds arrive in order', async () => {
    // a proxy that answers 503 to the first pushes, then forwards to the real Prometheus
    let refuse = 3
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        if (refuse-- > 0) return void res.writeHead(503).end('busy')
        fetch(`${base}/api/v1/write`, {method: 'POST', body: Buffer.concat(chunks), headers: {'Content-Encoding': 'snappy', 'Content-Type': 'application/x-protobuf', 'X-Prometheus-Remote-Write-Version': '0.1.0'}}).then(
          async (r) => res.writeHead(r.status).end(await r.text()),
          () => res.writeHead(502).end(),
        )
      })
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    const runId = `retry${Date.now()}`
    const w = createRemoteWriter({url: `http://127.0.0.1:${(proxy.address() as {port: number}).port}/`, labels: {run_id: runId}})
    for (let t = 0; t < 4; t++) w.push(streamRecords(secondPoint(t, 'p', 10, {order: {latencies: [t + 1]}}), runId))
    const report = await w.close(15_000)
    proxy.close()
    expect(report).toMatchObject({sentSeconds: 4, droppedSeconds: 0, failedPushes: 3, lastError: 'HTTP 503: busy'})
    // a retry that succeeded in the end is no loss: the renderer has something to say only about losses or failures
    expect(report.warnings[0]).toMatch(/4 second\(s\) sent, 0 dropped, 3 failed push/)
    expect((await samples(`livedrop_sent_per_second{run_id="${runId}",type="order"}`)).map(([, v]) => v)).toEqual([1, 1, 1, 1])
  }, 30_000)
})

describe('remote write that cannot reach Prometheus', () => {
  it('never throws or waits in the run, drops the oldest beyond the bounded queue, and says so at close', async () => {
    const port = await freePort()
    const w = createRemoteWriter({url: `http://127.0.0.1:${port}/api/v1/write`, labels: {run_id: 'x'}, maxQueuedSeconds: 3, timeoutMs: 500})
    const t0 = performance.now()
    for (let t = 0; t < 10; t++) w.push(streamRecords(secondPoint(t, 'p', 10, {order: {latencies: [5]}}), 'x'))
    expect(performance.now() - t0).toBeLessThan(200)
    const closing = performance.now()
    const report = await w.close(1000)
    // close waits at most its flush budget, then gives up
    expect(performance.now() - closing).toBeLessThan(2500)
    expect(report.sentSeconds).toBe(0)
    expect(report.droppedSeconds).toBe(10)
    expect(report.failedPushes).toBeGreaterThanOrEqual(1)
    expect(report.lastError).toMatch(/ECONNREFUSED/)
    expect(report.warnings[0]).toMatch(new RegExp(`Prometheus remote write to http://127.0.0.1:${port}/api/v1/write: 0 second\\(s\\) sent, 10 dropped`))
  })

  it('refuses a URL that is not http and a label Prometheus would refuse (exit 2)', () => {
    expect(() => createRemoteWriter({url: 'localhost:9090', labels: {}})).toThrow(/--prometheus-rw: expected http/)
    expect(() => createRemoteWriter({url: 'http://127.0.0.1:1/', labels: {'run-id': 'x'}})).toThrow(/not a Prometheus label name/)
  })

  it('encodes the WriteRequest protobuf that snappy round-trips', () => {
    const bytes = encodeWriteRequest([{labels: [{name: '__name__', value: 'm'}, {name: 'run_id', value: 'r'}], samples: [{value: 1.5, timestampMs: 1_700_000_000_123}]}])
    // WriteRequest.timeseries (field 1, bytes) → TimeSeries.labels (field 1) → Label.name "__name__"
    expect([...bytes.slice(0, 1)]).toEqual([0x0a])
    expect(Buffer.from(bytes).includes(Buffer.from('__name__'))).toBe(true)
    // the timestamp's varint: 1_700_000_000_123 needs 6 bytes past 32 bits
    const ts = Buffer.from([0x10, ...varint(1_700_000_000_123)])
    expect(Buffer.from(bytes).includes(ts)).toBe(true)
    expect(Buffer.from(snappy.uncompress(snappy.compress(bytes)))).toEqual(Buffer.from(bytes))
  })
})

function varint(n: number): number[] {
  const out: number[] = []
  let v = BigInt(n)
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}
