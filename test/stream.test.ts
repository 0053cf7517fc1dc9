import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {LivedropError, UsageError} from '../src/core/errors.js'
import {openResultStreams, streamRecords, type StreamRecord} from '../src/sim/report/stream.js'
import {secondPoint, spread} from './report-points.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-stream-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('streamRecords', () => {
  it('gives one record per type, all last, with p95 from the second\u2019s histogram and the statuses', () => {
    const p = secondPoint(7, 'drop-opens', 400, {order: {latencies: spread(100, 10, 110), statuses: [...Array(90).fill(200), ...Array(10).fill(409)]}, browse_product: {latencies: spread(50, 1, 5)}}, 321)
    const rs = streamRecords(p, 'r1')
    expect(rs.map((r) => r.type)).toEqual(['browse_product', 'order', 'all'])
    const order = rs[1]
    expect(order).toMatchObject({run_id: 'r1', t: 7, phase: 'drop-opens', target: 400, sent: 100, done: 100, errors: 10, statuses: {200: 90, 409: 10}, stock: 321})
    // coarse histograms (2 significant digits): within 1% of the exact percentile
    expect(order.p50!).toBeGreaterThan(59 * 0.99)
    expect(order.p50!).toBeLessThan(61 * 1.01)
    expect(order.p95!).toBeGreaterThan(104 * 0.99)
    expect(order.p95!).toBeLessThan(106 * 1.01)
    expect(order.service_p99!).toBeCloseTo(109 * 0.6, -0.5)
    expect(rs[2].done).toBe(150)
  })

  it('a type with nothing completed this second has null latency, not zero', () => {
    const p = secondPoint(0, 'a', 10, {order: {latencies: []}})
    expect(streamRecords(p, 'r')[0]).toMatchObject({done: 0, p50: null, p95: null, p99: null, service_p99: null})
  })
})

describe('openResultStreams --out-stream', () => {
  it('writes one JSON line per second per type while the run goes', async () => {
    const file = path.join(dir, 'run.ndjson')
    const s = await openResultStreams({ndjson: file, runId: 'abc'})
    for (let t = 0; t < 5; t++) s.second(secondPoint(t, 'p', 20, {browse_product: {latencies: spread(10 + t, 5, 50)}, order: {latencies: spread(3, 20, 30)}}))
    // lines are on disk before close: a watcher (tail -f) sees the run as it goes
    await new Promise((r) => setTimeout(r, 50))
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(15)
    const report = await s.close()
    expect(report).toMatchObject({ndjson: {file, lines: 15}, remoteWrite: null, warnings: []})
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StreamRecord)
    expect(lines.filter((l) => l.type === 'browse_product').map((l) => l.done)).toEqual([10, 11, 12, 13, 14])
    expect(lines.every((l) => l.run_id === 'abc')).toBe(true)
  })

  it('refuses a path it cannot write before the run starts (exit 2)', async () => {
    const err = await openResultStreams({ndjson: path.join(dir, 'no-such-dir', 'x.ndjson'), runId: 'x'}).catch((e) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/--out-stream: cannot write .*ENOENT/)
  })

  it('surfaces a write failure during the run at close (a full disk: /dev/full), without throwing from second()', async () => {
    const s = await openResultStreams({ndjson: '/dev/full', runId: 'x'})
    expect(() => {
      for (let t = 0; t < 3; t++) s.second(secondPoint(t, 'p', 1, {order: {latencies: [1]}}))
    }).not.toThrow()
    const err = await s.close().catch((e) => e)
    expect(err).toBeInstanceOf(LivedropError)
    expect(err.message).toMatch(/--out-stream \/dev\/full: .*ENOSPC|no space/i)
  })
})
