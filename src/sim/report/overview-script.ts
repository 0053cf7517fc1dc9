import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)

/** uPlot (MIT, ~50 KB) read from node_modules at render time, so a page needs no network. */
export function uplotAssets(): {js: string; css: string} {
  const js = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8')
  const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')
  return {js, css}
}

/** uPlot's script, safe inside a <script> element. */
export const inlineScript = (js: string) => js.replace(/<\/script/gi, '<\\/script')

/** JSON safe inside <script>: no "</script>" or "<!--" can appear. */
export const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')

/** CSS of the overview's panels and marker legend. */
export const OVERVIEW_CSS = `.overview{margin:8px 0 24px}.overview .panel{margin:0 0 6px}.markers{font-size:12px;color:#555;margin:4px 0}.markers span{margin-right:14px}.markers i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}`

/**
 * window.livedropPainted(u): the coloured pixels on a chart's canvas (axes, grid and labels are
 * grey, so only drawn series count). Every page's charts set it as data-painted, which the tests
 * read in a headless browser to tell a drawn chart from an empty one.
 */
export const PAINTED_SCRIPT = String.raw`
window.livedropPainted = function (u) {
  var c = u.ctx.canvas, px = u.ctx.getImageData(0, 0, c.width, c.height).data, n = 0;
  for (var i = 0; i < px.length; i += 4) {
    if (px[i + 3] < 128) continue;
    var hi = Math.max(px[i], px[i + 1], px[i + 2]), lo = Math.min(px[i], px[i + 1], px[i + 2]);
    if (hi - lo > 60) n++;
  }
  return n;
};
`

/**
 * The overview in the browser, shared by the HTML report (drawn once) and the live dashboard
 * (updated each second): three panels on one time axis with a synced cursor.
 *   rate:    offered vs achieved (and sent) req/s, stock on its own right-hand axis
 *   latency: p50/p99 of reads and of orders, ms on a log axis
 *   errors:  errors/s and each non-2xx status per second
 * Every panel carries the phase lines and the markers (drop opens, sold out, faults). A legend
 * away from the cursor shows the latest second, never "--".
 *
 * window.livedropOverview(el, {points, phases, markers, width}) returns {update(points, phases,
 * markers)}; el gets data-points (seconds charted) and, per panel, data-painted (coloured pixels).
 */
export const OVERVIEW_SCRIPT = PAINTED_SCRIPT + String.raw`
(function () {
  var MARK = {drop: '#2ca02c', soldout: '#d62728', fault: '#ff7f0e'};
  // counts and rates start at zero, so a dip is not drawn as a collapse
  function fromZero(u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; }
  function num(v) { return v == null || !isFinite(v) ? null : v; }
  function pos(v) { return v == null || !(v > 0) ? null : v; }
  function statusesOf(points) {
    var totals = {};
    points.forEach(function (p) { for (var k in p.statuses) if (!/^2/.test(k)) totals[k] = (totals[k] || 0) + p.statuses[k]; });
    return Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; });
  }
  function columns(points, statuses) {
    var col = function (f) { return points.map(f); };
    return {
      rate: [col(function (p) { return p.t; }), col(function (p) { return p.offered; }), col(function (p) { return p.achieved; }), col(function (p) { return p.sent; }), col(function (p) { return num(p.stock); })],
      latency: [col(function (p) { return p.t; }), col(function (p) { return pos(p.readP50); }), col(function (p) { return pos(p.readP99); }), col(function (p) { return pos(p.orderP50); }), col(function (p) { return pos(p.orderP99); })],
      errors: [col(function (p) { return p.t; }), col(function (p) { return p.errors; })].concat(statuses.map(function (s) { return col(function (p) { return p.statuses[s] || 0; }); }))
    };
  }
  var painted = window.livedropPainted;
  // the legend shows the cursor's second, or the latest second when the cursor is elsewhere
  function latestLegend(u) {
    if (u.cursor.idx == null && u.data[0].length) u.setLegend({idx: u.data[0].length - 1}, false);
  }
  window.livedropLatestLegend = latestLegend;
  window.livedropOverview = function (el, o) {
    var state = {points: o.points || [], phases: o.phases || [], markers: o.markers || []};
    var statuses = statusesOf(state.points);
    var sync = uPlot.sync('overview');
    var width = o.width || 1000;
    function lines(u) {
      var ctx = u.ctx; ctx.save(); ctx.font = '11px sans-serif';
      state.phases.forEach(function (p) {
        var x = u.valToPos(p.startS, 'x', true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.strokeStyle = '#aaa'; ctx.setLineDash([4, 4]); ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = '#777'; ctx.fillText(p.name, x + 3, u.bbox.top + 11);
      });
      state.markers.forEach(function (m, i) {
        var x = u.valToPos(m.t, 'x', true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.strokeStyle = MARK[m.kind] || '#333'; ctx.setLineDash([]); ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = MARK[m.kind] || '#333'; ctx.fillText(m.label, x + 3, u.bbox.top + 24 + 12 * (i % 3));
      });
      ctx.restore();
    }
    function panel(id, title, series, data, axes, scales, height) {
      var box = document.createElement('div'); box.className = 'panel'; box.id = id; el.appendChild(box);
      var u = new uPlot({
        title: title, width: width, height: height, cursor: {sync: {key: sync.key}},
        scales: Object.assign({x: {time: false}}, scales),
        series: [{label: 'second'}].concat(series.map(function (s) { return Object.assign({width: 1.5, spanGaps: false}, s); })),
        axes: axes,
        hooks: {draw: [function (u) { lines(u); box.setAttribute('data-painted', String(painted(u))); }], setCursor: [latestLegend], ready: [latestLegend]}
      }, data, box);
      return u;
    }
    var c = columns(state.points, statuses);
    var x = {label: 'second of the run'};
    var rate = panel('overview-rate', 'Offered vs achieved rate (req/s), stock remaining', [
      {label: 'offered', stroke: '#7f7f7f', dash: [6, 4]},
      {label: 'achieved', stroke: '#1f77b4', width: 2},
      {label: 'sent', stroke: '#17becf'},
      {label: 'stock', stroke: '#9467bd', scale: 'units', fill: 'rgba(148,103,189,0.08)'}
    ], c.rate, [x, {label: 'req/s'}, {scale: 'units', side: 1, label: 'units left', grid: {show: false}}], {y: {range: fromZero}, units: {range: fromZero}}, 220);
    var latency = panel('overview-latency', 'Latency from the intended send (ms, log scale): reads and orders', [
      {label: 'reads p50', stroke: '#2ca02c'},
      {label: 'reads p99', stroke: '#2ca02c', width: 2.5, dash: [1, 0]},
      {label: 'orders p50', stroke: '#d62728'},
      {label: 'orders p99', stroke: '#d62728', width: 2.5}
    ], c.latency, [x, {label: 'ms'}], {y: {distr: 3, log: 10}}, 260);
    var STATUS_COLORS = ['#ff7f0e', '#8c564b', '#e377c2', '#bcbd22', '#9467bd', '#17becf'];
    function statusSeries(s, i) { return {label: 'HTTP ' + s, stroke: STATUS_COLORS[i % STATUS_COLORS.length]}; }
    var errors = panel('overview-errors', 'Errors and non-2xx answers per second', [{label: 'errors', stroke: '#d62728', width: 2, fill: 'rgba(214,39,40,0.08)'}].concat(statuses.map(statusSeries)), c.errors, [x, {label: 'per second'}], {y: {range: fromZero}}, 200);
    el.setAttribute('data-points', String(state.points.length));
    return {
      panels: [rate, latency, errors],
      update: function (points, phases, markers) {
        state.points = points; if (phases) state.phases = phases; if (markers) state.markers = markers;
        var now = statusesOf(points);
        now.forEach(function (s) { if (statuses.indexOf(s) < 0) { statuses.push(s); errors.addSeries(statusSeries(s, statuses.length - 1)); } });
        var d = columns(points, statuses);
        rate.setData(d.rate); latency.setData(d.latency); errors.setData(d.errors);
        [rate, latency, errors].forEach(latestLegend);
        el.setAttribute('data-points', String(points.length));
      }
    };
  };
})();
`
