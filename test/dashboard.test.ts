import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {WebSocket} from 'undici'
import {AddressInUseError} from '../src/core/errors.js'
import {startDashboard, type Dashboard} from '../src/sim/report/dashboard.js'
import {buildRun, generateRequests} from './report-runs.js'
import {secondPoint, spread} from './report-points.js'

const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-dash-'))
let browser: ChildProcess | null = null
let dash: Dashboard | null = null
afterAll(async () => {
  if (browser && browser.exitCode === null) {
    const exited = new Promise((r) => browser!.once('exit', r))
    // the whole process group: chromium's helpers go on writing into the profile after the browser exits
    process.kill(-browser.pid!, 'SIGTERM')
    await exited
  }
  await dash?.close()
  rmSync(dir, {recursive: true, force: true, maxRetries: 10, retryDelay: 200})
})

/** Headless Chromium (Debian's) showing `url`, driven over the DevTools protocol: evaluate(expr) runs in the page. */
async function openPage(url: string): Promise<{evaluate: (expression: string) => Promise<unknown>; close: () => void}> {
  browser = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${path.join(dir, 'profile')}`, '--remote-debugging-port=0', '--window-size=1300,1000', url], {stdio: ['ignore', 'ignore', 'pipe'], detached: true})
  let log = ''
  const devtools = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chromium did not start:\n${log}`)), 20_000)
    browser!.stderr!.on('data', (d) => {
      log += d
      const m = /DevTools listening on (ws:\/\/[^\s]+)/.exec(log)
      if (m) (clearTimeout(timer), resolve(m[1]))
    })
  })
  const http = devtools.replace(/^ws:/, 'http:').replace(/\/devtools\/.*$/, '')
  let target: {url: string; webSocketDebuggerUrl: string} | undefined
  for (let i = 0; i < 100 && !target; i++) {
    const list = (await (await fetch(`${http}/json/list`)).json()) as Array<{type: string; url: string; webSocketDebuggerUrl: string}>
    target = list.find((t) => t.type === 'page' && t.url === url)
    if (!target) await new Promise((r) => setTimeout(r, 100))
  }
  const ws = new WebSocket(target!.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)))
  let id = 0
  const waiting = new Map<number, (v: unknown) => void>()
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data)) as {id?: number; result?: {result?: {value?: unknown}}}
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result?.result?.value)
  }
  return {
    evaluate: (expression) =>
      new Promise((resolve) => {
        waiting.set(++id, resolve)
        ws.send(JSON.stringify({id, method: 'Runtime.evaluate', params: {expression, returnByValue: true}}))
      }),
    close: () => ws.close(),
  }
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  let v: T | undefined
  for (let i = 0; i < 200; i++) {
    v = await read()
    if (ok(v)) return v
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what}: last value ${JSON.stringify(v)}`)
}

const point = (t: number) =>
  secondPoint(t, t < 3 ? 'warm' : 'drop-opens', t < 3 ? 60 : 240, {browse_product: {latencies: spread(t < 3 ? 50 : 180, 2, 20)}, order: {latencies: spread(t < 3 ? 5 : 40, 30, 600), statuses: Array.from({length: t < 3 ? 5 : 40}, (_, i) => (t > 4 && i % 4 === 0 ? 409 : 201))}}, Math.max(0, 300 - 50 * t))

describe('live dashboard', () => {
  it('charts each second in the browser as it is fed, then shows the verdict', async () => {
    dash = await startDashboard({title: 'celebrity-drop <live>'})
    expect(dash.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    dash.phase({name: 'warm', startMs: 0})
    for (let t = 0; t < 3; t++) dash.second(point(t))
    const page = await openPage(dash.url)
    const charted = () => page.evaluate(`Number(document.getElementById('overview').getAttribute('data-points'))`) as Promise<number>
    // the page opened late gets the seconds so far first
    expect(await until(charted, (n) => n === 3, 'seconds charted after opening')).toBe(3)
    dash.phase({name: 'drop-opens', startMs: 3000})
    const seen: number[] = []
    for (let t = 3; t < 8; t++) {
      dash.second(point(t))
      seen.push(await until(charted, (n) => n === t + 1, `second ${t} charted`))
    }
    expect(seen).toEqual([4, 5, 6, 7, 8])
    // the charts are drawn with colour, the legend shows the latest second, a 409 series appeared
    const painted = (await page.evaluate(`[...document.querySelectorAll('#overview .panel')].map(function (p) { return Number(p.getAttribute('data-painted')); })`)) as number[]
    expect(painted).toHaveLength(3)
    for (const n of painted) expect(n).toBeGreaterThan(300)
    const legend = (await page.evaluate(`[...document.querySelectorAll('#overview-rate .u-value')].map(function (e) { return e.textContent; })`)) as string[]
    expect(legend[0]).toBe('7')
    expect(await page.evaluate(`document.getElementById('overview-errors').textContent.includes('HTTP 409')`)).toBe(true)
    expect(await page.evaluate(`document.title`)).toBe('livedrop live: celebrity-drop <live>')

    const result = buildRun({phases: [{name: 'warm', seconds: 8, rates: {browse_product: 10}}], thresholds: ['read.p95 < 1s']}, generateRequests({phases: [{name: 'warm', seconds: 8, rates: {browse_product: 10}}]}, 1, () => ({ms: 3})))
    result.stats.soldOutAtMs = 6500
    dash.done(result)
    const badge = await until(() => page.evaluate(`document.getElementById('verdict').textContent`) as Promise<string>, (s) => s !== 'running', 'verdict shown')
    expect(badge).toBe('PASS: 1 threshold(s) and 0 invariant(s) held')
    page.close()
  }, 60_000)

  it('replays the run so far to a new /events client, and a taken port is a usage error', async () => {
    const res = await fetch(`${dash!.url}events`)
    const reader = res.body!.getReader()
    let text = ''
    while (!text.includes('event: done')) text += new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    const state = JSON.parse(/event: state\ndata: (.*)\n/.exec(text)![1]) as {points: Array<{t: number; stock: number}>; phases: unknown[]}
    expect(state.points.map((p) => p.t)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(state.points.map((p) => p.stock)).toEqual([300, 250, 200, 150, 100, 50, 0, 0])
    expect(state.phases).toHaveLength(2)
    expect(text).toMatch(/event: done\ndata: .*"kind":"soldout"/)
    const port = Number(new URL(dash!.url).port)
    const err = await startDashboard({title: 'x', port}).catch((e) => e)
    expect(err).toBeInstanceOf(AddressInUseError)
    expect(err.exitCode).toBe(2)
    expect((await fetch(`${dash!.url}nope`)).status).toBe(404)
  })
})
