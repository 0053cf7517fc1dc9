/**
 * The load generator's thread: transport only. An in-process stack serves from the main thread,
 * so the generator runs here, on its own event loop (and core): the server's work cannot delay
 * its sends, and its sends cannot steal the server's time. Builders are closures, so they are
 * made here from plain data; the samples go back to the main thread, which judges the run.
 */
import {parentPort, workerData} from 'node:worker_threads'
import {request} from 'undici'
import {describeError} from '../../core/errors.js'
import {mintToken} from '../../core/tokens.js'
import {currentThreadId} from '../metrics/cpu.js'
import {LatencyHistogram} from '../../core/histogram.js'
import {runOpenModel} from '../executors/open-model/index.js'
import {createBuilders} from '../traffic/builders.js'
import {executorSignal, holdUntil, openModelPlan} from './plan.js'
import type {GeneratorInput, ToGenerator} from './generator.js'

const input = workerData as GeneratorInput
const port = parentPort!
const controller = new AbortController()
/** Epoch ms (performance.timeOrigin-based, the same clock in every thread) when the drop was started. */
let markedAt: number | null = null
const now = () => performance.timeOrigin + performance.now()

port.on('message', (m: ToGenerator) => {
  if (m.type === 'mark') markedAt = m.at
  else controller.abort()
})

async function watch(user: number, latencies: Map<number, number>, signal: AbortSignal): Promise<void> {
  const res = await request(`${input.target}/events`, {headers: {authorization: `Bearer ${mintToken(user, input.world.secret)}`}, signal})
  if (res.statusCode !== 200) throw new Error(`GET /events answered ${res.statusCode} for user ${user}`)
  let resolveConnected!: () => void
  const connected = new Promise<void>((r) => (resolveConnected = r))
  void (async () => {
    let buffer = ''
    try {
      for await (const chunk of res.body) {
        buffer += chunk.toString()
        if (buffer.includes(': connected')) resolveConnected()
        if (markedAt !== null && !latencies.has(user) && buffer.includes('event: drop_started')) latencies.set(user, now() - markedAt)
        // keep a tail so a line split across chunks still matches
        buffer = buffer.slice(-64)
      }
    } catch {
      // closed by abort
    }
  })()
  await connected
}

// first of all: the main thread measures this thread's CPU by its id
port.postMessage({type: 'thread', p: currentThreadId()})

try {
  const latencies = new Map<number, number>()
  // one controller per stream: a shared signal would carry one abort listener per stream, and past
  // ten Node warns of a leak (MaxListenersExceededWarning) on every run that samples notifications
  const streams = input.notifyUsers.map(() => new AbortController())
  await Promise.all(input.notifyUsers.map((u, i) => watch(u, latencies, streams[i].signal)))
  const {builders, ledger} = createBuilders(input.scenario, input.world, {profile: input.profile, segment: input.segment})
  if (input.startAt !== undefined) await holdUntil(input.startAt, controller.signal)
  const load = await runOpenModel({
    ...openModelPlan(input.scenario, input.segment),
    baseUrl: input.target,
    builders,
    signal: executorSignal(controller.signal),
    testStarve: input.testStarve,
    onProgress: (p) => port.postMessage({type: 'progress', p}),
    onPhase: (p) => port.postMessage({type: 'phase', p}),
    onSecond: (p) => port.postMessage({type: 'second', p}),
  })
  for (const s of streams) s.abort()

  // followers whose event never came are recorded at the time waited, so a lost one cannot flatter the p95
  const notify = new LatencyHistogram()
  for (const ms of latencies.values()) notify.recordMs(ms)
  const waited = markedAt === null ? 0 : now() - markedAt
  for (let i = latencies.size; i < input.notifyUsers.length; i++) notify.recordMs(waited)
  port.postMessage({
    type: 'done',
    load,
    ledger: {...ledger, acknowledged: [...ledger.acknowledged.values()]},
    notify: {sampled: input.notifyUsers.length, missed: input.notifyUsers.length - latencies.size, histogram: notify.encode()},
  })
} catch (err) {
  const info = describeError(err)
  port.postMessage({type: 'error', error: {...info, field: (err as {field?: string}).field}})
}
