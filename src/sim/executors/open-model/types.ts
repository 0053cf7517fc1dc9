import type {FailureSample, PhaseResult, SeriesPoint} from '../../metrics/result.js'
import type {LoadPhase} from '../../load/arrivals.js'

/** One HTTP request, built per send by a request builder. */
export interface HttpRequestSpec {
  /** Default GET. */
  method?: string
  /** Path and query, starting with `/` (appended to the target's base path). */
  path: string
  headers?: Record<string, string>
  /** A string is sent as is; anything else as JSON with content-type application/json. */
  body?: unknown
  /** Which statuses count as success. Default 200–399; e.g. an order's 409 sold-out is an answer, not an error. */
  ok?: (status: number) => boolean
  /** Receives the status and body text; the body is only read when this is set. */
  onResponse?: (status: number, body: string) => void
}

/** What a request builder may use: a seeded random source and where in the run it is. */
export interface RequestContext {
  type: string
  /** The phase's name. */
  phase: string
  /** 0, 1, 2… over the whole run. */
  seq: number
  /** Intended send time, ms from the run's start. */
  intendedMs: number
  /** Seeded: the same scenario seed gives the same request sequence. */
  random: () => number
}

export type RequestBuilder = (ctx: RequestContext) => HttpRequestSpec

export interface OpenModelOptions {
  /** http://host:port[/base]: the target. */
  baseUrl: string
  phases: LoadPhase[]
  /** A builder per request type that appears in any phase's rates. */
  builders: Record<string, RequestBuilder>
  /** Seeds the arrival process and the builders' random source. Default 1. */
  seed?: number
  /** Keep-alive connections, which is also the most requests in flight. Default 256. */
  connections?: number
  /** A request the generator sends later than this after its intended time counts as late. Default 10 ms. */
  slackMs?: number
  /** Per-request timeout: the whole answer must be in within it. Default 10 s. */
  timeoutMs?: number
  /**
   * A hard stall: when requests were due and the generator sent none for longer than this, the
   * run stops and is void. Default 500 ms. (Late sends alone never stop a run: see judgeRun.)
   */
  maxLagMs?: number
  /** After the last phase, how long in-flight and queued requests may finish. Default timeoutMs + 1 s. */
  drainMs?: number
  /**
   * Before the clock starts, open this many connections with `HEAD /` (answers ignored), so
   * connection setup and the HTTP parser's first compile are not charged to the requests (a
   * burst that opened new connections would wait in the server's accept queue: see Connections).
   * Default: one second of the peak rate, at most all of them; 0 turns it off.
   */
  warmupConnections?: number
  /** Stops scheduling; what was recorded so far is returned (aborted: true). */
  signal?: AbortSignal
  /** Test-only: starves the generator's own thread with a real busy loop of forMs every everyMs. */
  testStarve?: {everyMs: number; forMs: number}
  onProgress?: (p: RunProgress) => void
  onPhase?: (p: PhaseEvent) => void
  /** Each second of the run as it closes (what the run file's series holds), for live streams. */
  onSecond?: (p: SeriesPoint) => void
}

export interface RunProgress {
  elapsedMs: number
  totalMs: number
  phase: string
  /** Target rate of the current phase, req/s. */
  targetRate: number
  /** Responses in the last second. */
  rate: number
  sent: number
  completed: number
  errors: number
  late: number
  inFlight: number
  /** Corrected p99 of every second closed so far (coarse: 2 significant digits), ms. */
  p99Ms: number
}

export interface PhaseEvent {
  index: number
  name: string
  startMs: number
  durationMs: number
  targetRate: number
}

export interface OpenModelResult {
  phases: PhaseResult[]
  series: SeriesPoint[]
  durationMs: number
  eventLoopLag: {p50: number; p99: number; max: number}
  /** Sends the generator made more than slackMs after their intended time. */
  late: number
  lateFraction: number
  /** The most any request waited for the generator to get to it, ms. */
  worstLagMs: number
  /** Share of the run the generator's thread was busy (event-loop utilization), 0–1. */
  cpu: number
  /** Set when the generator stalled (sent nothing while requests were due for longer than maxLagMs). */
  stall: {reason: string; detail: Record<string, unknown>} | null
  aborted: boolean
  /** The first failing answers of each request type, to show what the errors said. */
  failures: Record<string, FailureSample[]>
}
