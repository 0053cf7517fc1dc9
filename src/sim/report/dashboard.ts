import {createServer, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {AddressInUseError} from '../../core/errors.js'
import type {RunResult, SeriesPoint} from '../metrics/result.js'
import {overviewMarkers, overviewPoint, type OverviewMarker, type OverviewPoint} from './overview.js'
import {inlineScript, OVERVIEW_CSS, OVERVIEW_SCRIPT, uplotAssets} from './overview-script.js'
import {verdictLine} from './tables.js'

export interface DashboardOptions {
  /** Port on 127.0.0.1. Default 0: any free port (see Dashboard.url). */
  port?: number
  /** The page's heading, e.g. the scenario's name. */
  title: string
}

/** A phase as the run announces it (the run handle's 'phase' event). */
export interface DashboardPhase {
  name: string
  startMs: number
}

export interface Dashboard {
  /** http://127.0.0.1:PORT/ */
  readonly url: string
  /** Charts one closed second (the run handle's 'second' event). */
  second(point: SeriesPoint): void
  phase(event: DashboardPhase): void
  /** Shows the verdict and the sold-out/drop-open/fault markers of the finished run. */
  done(result: RunResult): void
  /** Marks a fault on the timeline as soon as it is over (done() marks them all again). */
  fault(f: NonNullable<RunResult['faults']>[number]): void
  /** Ends the open pages' streams and stops listening. */
  close(): Promise<void>
}

/** Seconds kept for a page opened late: a day of a run, a few MB. */
const MAX_POINTS = 86_400
/** An SSE comment this often keeps proxies and the browser from timing the stream out. */
const KEEPALIVE_MS = 15_000

/**
 * A live view of a run on 127.0.0.1: one page with the same overview the HTML report leads with
 * (offered vs achieved rate and stock, reads/orders p50/p99 on a log axis, errors and statuses),
 * fed by server-sent events (/events) as each second closes. A page opened late gets every second
 * so far first. Nothing here can slow the run: second() only appends and writes to open sockets.
 */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const points: OverviewPoint[] = []
  const phases: Array<{name: string; startS: number}> = []
  let markers: OverviewMarker[] = []
  let verdict: {line: string; pass: boolean} | null = null
  const clients = new Set<ServerResponse>()
  const page = renderDashboardPage(opts.title)

  const send = (res: ServerResponse, event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  const broadcast = (event: string, data: unknown) => {
    for (const c of clients) send(c, event, data)
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/events') {
      res.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive'})
      send(res, 'state', {points, phases, markers})
      if (verdict) send(res, 'done', {...verdict, markers})
      clients.add(res)
      req.on('close', () => clients.delete(res))
      return
    }
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store'})
      return void res.end(page)
    }
    res.writeHead(404, {'Content-Type': 'text/plain'}).end('not found')
  })
  const keepalive = setInterval(() => {
    for (const c of clients) c.write(': keepalive\n\n')
  }, KEEPALIVE_MS)
  keepalive.unref()

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new AddressInUseError('--dashboard', `port ${opts.port} on 127.0.0.1 is in use`, {hint: 'Pick another port, or give --dashboard without one for any free port.'}) : err),
    )
    server.listen(opts.port ?? 0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}/`,
    second(point) {
      const p = overviewPoint(point)
      points.push(p)
      if (points.length > MAX_POINTS) points.shift()
      broadcast('point', p)
    },
    phase(event) {
      const p = {name: event.name, startS: event.startMs / 1000}
      phases.push(p)
      broadcast('phase', p)
    },
    fault(f) {
      markers = [...markers, ...overviewMarkers({stats: {}, faults: [f]})].sort((a, b) => a.t - b.t)
      broadcast('markers', markers)
    },
    done(result) {
      markers = overviewMarkers(result)
      verdict = {line: verdictLine(result), pass: result.verdict.pass}
      broadcast('done', {...verdict, markers})
    },
    async close() {
      clearInterval(keepalive)
      for (const c of clients) c.end()
      clients.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
    },
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)

/** The page: uPlot inlined (no network beyond this server), the shared overview, an EventSource on /events. */
function renderDashboardPage(title: string): string {
  const {js, css} = uplotAssets()
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livedrop live: ${esc(title)}</title>
<style>${css}
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}#status{color:#555;margin:0 0 12px}
#verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600;background:#888}
#verdict.ok{background:#2ca02c}#verdict.bad{background:#d62728}
${OVERVIEW_CSS}
</style>
</head>
<body>
<h1>${esc(title)} <span id="verdict">running</span></h1>
<p id="status">connecting…</p>
<section class="overview" id="overview"></section>
<script>${inlineScript(js)}</script>
<script>${OVERVIEW_SCRIPT}
(function () {
  var el = document.getElementById('overview'), status = document.getElementById('status'), badge = document.getElementById('verdict');
  var points = [], phases = [], markers = [], view = null, queued = false;
  // redraw at most once a frame however fast seconds arrive (a page opened late gets them all at once)
  function redraw() {
    if (queued) return; queued = true;
    requestAnimationFrame(function () {
      queued = false;
      if (!view) view = window.livedropOverview(el, {points: points, phases: phases, markers: markers, width: Math.min(1000, Math.max(600, el.clientWidth || 1000))});
      else view.update(points, phases, markers);
      var last = points[points.length - 1];
      if (last && !badge.className) status.textContent = 'second ' + last.t + ' · ' + last.phase + ' · ' + last.achieved + '/s of ' + last.offered.toFixed(0) + '/s · errors ' + last.errors;
    });
  }
  var es = new EventSource('/events');
  es.addEventListener('state', function (e) { var s = JSON.parse(e.data); points = s.points; phases = s.phases; markers = s.markers; redraw(); });
  es.addEventListener('point', function (e) { points.push(JSON.parse(e.data)); redraw(); });
  es.addEventListener('phase', function (e) { phases.push(JSON.parse(e.data)); redraw(); });
  es.addEventListener('markers', function (e) { markers = JSON.parse(e.data); redraw(); });
  es.addEventListener('done', function (e) {
    var d = JSON.parse(e.data); markers = d.markers; badge.textContent = d.line; badge.className = d.pass ? 'ok' : 'bad';
    status.textContent = 'the run has finished'; es.close(); redraw();
  });
  es.onerror = function () { if (!badge.className) status.textContent = 'disconnected: the run may have ended'; };
})();
</script>
</body>
</html>
`
}
