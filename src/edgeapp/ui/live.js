// The board at a glance: the header (name, version, engines, uptime, the health word, the addresses
// to use) from GET /api/status every few seconds, and the live figures plotted over the last minutes
// from GET /api/status/history every 2 s. The service keeps those minutes itself (a bounded ring),
// so a page opened now also shows what happened before it was opened.
import { get } from "./api.js";
import { LineChart } from "./chart.js";
import { el } from "./dom.js";

const HISTORY_EVERY_MS = 2000;  // the service takes one sample every 2 s: asking faster shows nothing new
const STATUS_EVERY_MS = 6000;   // uptime and health change slowly
const PALETTE = ["#1f77b4", "#e8710a", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#6b6b6b",
                 "#a4a81c", "#12a4b8"];
const MEMORY_PARTS = [["http_mb", "HTTP", "#1f77b4"], ["worker_mb", "worker", "#2ca02c"],
                      ["slots_mb", "slots", "#e8710a"], ["bodies_mb", "bodies", "#9467bd"]];

// The samples kept in the page: at most `keep` (what the service keeps too), oldest first.
const history = { samples: [], keep: 300, period: 2, now: 0 };
const models = { names: new Map(), ids: [] };  // from /api/status: names for the legends, stable colours
let header = null, live = null, plots = [], statusAt = 0;

export function start() {
  header = buildHeader(document.getElementById("board"));
  live = buildLive(document.getElementById("live"));
  const loop = poller(step, HISTORY_EVERY_MS);
  // A hidden tab polls nothing; the service kept the samples meanwhile, so one poll catches up.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") loop.run();
    else loop.stop();
  });
  document.addEventListener("edgeapp:token-changed", () => {
    statusAt = 0;
    loop.run();
  });
  loop.run();
}

// Runs step() now and then every `everyMs` while the tab is visible and step() answers true (false:
// the board wants a token; "edgeapp:token-changed" starts it again). Never two steps at once.
function poller(step, everyMs) {
  let timer = null, busy = false, again = false;
  async function run() {
    clearTimeout(timer);
    timer = null;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    let goOn = false;
    try {
      goOn = await step();
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      run();
    } else if (goOn && document.visibilityState === "visible") {
      timer = setTimeout(run, everyMs);
    }
  }
  return { run, stop: () => clearTimeout(timer) };
}

async function step() {
  if (Date.now() - statusAt >= STATUS_EVERY_MS && !(await refreshStatus())) return false;
  return refreshHistory();
}

// ---- the header ----------------------------------------------------------------------------

function buildHeader(root) {
  const parts = {
    name: root.querySelector("h1") || root.appendChild(el("h1", {}, "edgeapp")),
    health: el("span", { className: "health" }), reason: el("span", { className: "health-reason" }),
    facts: el("ul", { className: "facts" }), urls: el("ul", { className: "urls" }),
  };
  const verdict = el("p", { className: "verdict" });
  verdict.append(parts.health, parts.reason);
  root.append(verdict, parts.facts, parts.urls);
  return parts;
}

async function refreshStatus() {
  const { status, env } = await get("/api/status");
  if (status === 401) return waitForToken();
  if (env.code !== 0) {
    showHealth({ healthy: false, word: "NO ANSWER", reason: env.msg });
    return true;
  }
  statusAt = Date.now();
  live.note.hidden = true;
  learnModels(env.data.models || []);
  fillHeader(env.data);
  return true;
}

// The board wants a token: the token bar asks for it (api.js raised "edgeapp:token-needed"); this
// part stays calm, says what it waits for, and polls again once a token is given.
function waitForToken() {
  live.note.textContent = "The live figures need the board's access token.";
  live.note.hidden = false;
  return false;
}

function fillHeader(data) {
  const name = data.board || "edgeapp";
  header.name.textContent = name;
  document.title = name === "edgeapp" ? "edgeapp" : name + " · edgeapp";
  showHealth(data.health);
  const engines = Object.entries(data.engines || {}).map(([n, v]) => (v ? n + " " + v : n));
  header.facts.replaceChildren(el("li", { className: "version" }, "edgeapp " + data.version),
                               el("li", { className: "engines" }, engines.join(", ") || "no engine running"),
                               el("li", { className: "uptime" }, "up " + humanDuration(data.uptime_s)));
  fillUrls(data.urls || []);
}

function showHealth(health) {
  header.health.textContent = health.word;
  header.health.className = "health " + (health.healthy ? "healthy" : "unhealthy");
  header.health.title = health.reason || "";
  header.reason.textContent = health.reason || "";
}

function fillUrls(urls) {
  const key = urls.join(" ");
  if (header.urls.dataset.key === key) return;  // unchanged: keep the links (and a selection in them)
  header.urls.dataset.key = key;
  header.urls.replaceChildren(...urls.map((url) => {
    const item = el("li"), link = el("a", {}, url);
    link.href = url;
    item.append(link);
    return item;
  }));
}

// "45 s", "12 min", "3 h 12 min", "4 d 2 h": what a person says, not a count of seconds.
function humanDuration(seconds) {
  const s = Math.floor(seconds || 0), m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d) return d + " d " + (h % 24) + " h";
  if (h) return h + " h " + (m % 60) + " min";
  return m ? m + " min" : s + " s";
}

function learnModels(list) {
  for (const m of list) models.names.set(String(m.id), m.name);
  models.ids = list.map((m) => String(m.id));
}

const modelName = (mid) => models.names.get(mid) || "model " + mid;

// One colour per model, the same in every plot and poll: by its place among the board's models.
function modelColor(mid) {
  const at = models.ids.indexOf(mid);
  return PALETTE[(at >= 0 ? at : Number(mid) || 0) % PALETTE.length];
}

// ---- the live figures ----------------------------------------------------------------------

// Each plot: its title, unit, series from the kept samples, limit line, and the latest figure
// ({value, text}) shown beside the title.
const PLOTS = [
  { key: "rate", title: "Requests per second", unit: "req/s", series: rateSeries, latest: rateLatest },
  { key: "latency", title: "Latency: p50 solid, p95 dashed", unit: "ms", series: latencySeries, latest: latencyLatest },
  { key: "queue", title: "Queue", unit: "jobs", integer: true, series: queueSeries, limit: queueLimit,
    latest: queueLatest },
  { key: "refused", title: "Refused (503) per second", unit: "/s", series: refusedSeries, latest: refusedLatest },
  { key: "memory", title: "Memory", unit: "MB", stacked: true, series: memorySeries, limit: memoryLimit,
    latest: memoryLatest },
  { key: "restarts", title: "Worker restarts", unit: "total", integer: true, series: restartSeries,
    latest: restartLatest },
];

function buildLive(root) {
  const note = el("p", { className: "live-note" });
  note.hidden = true;
  const grid = el("div", { className: "plots" });
  root.append(note, grid);
  plots = PLOTS.map((def) => buildPlot(grid, def));
  return { note };
}

// <figure data-plot data-latest data-models>: the latest figure and the models drawn, for a
// person (the caption) and for a test (the attributes), without reading pixels.
function buildPlot(grid, def) {
  const figure = el("figure", { className: "plot" }), caption = el("figcaption");
  const latest = el("span", { className: "plot-latest" }), canvas = el("canvas");
  const legend = el("ul", { className: "legend" });
  figure.dataset.plot = def.key;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", def.title);
  caption.append(el("span", { className: "plot-title" }, def.title), latest);
  figure.append(caption, canvas, legend);
  grid.append(figure);
  const options = { unit: def.unit, stacked: !!def.stacked, integer: !!def.integer, legend, span: 60 };
  return { def, figure, latest, canvas, chart: new LineChart(canvas, options) };
}

async function refreshHistory() {
  const last = history.samples[history.samples.length - 1];
  const { status, env } = await get("/api/status/history" + (last ? "?since=" + last.t : ""));
  if (status === 401) return waitForToken();
  if (env.code === 0) {
    keepSamples(env.data);
    drawPlots();
  }
  return true;  // no answer this time (a restart, the network): the next poll tries again
}

function keepSamples(data) {
  const last = history.samples[history.samples.length - 1];
  if (last && data.now < last.t) history.samples = [];  // the board's clock went back: start afresh
  history.keep = data.keep;
  history.period = data.period_s;
  history.now = data.now;
  history.samples = history.samples.concat(data.samples).slice(-history.keep);
}

// The minutes shown: the whole kept history, but at least a minute, so the first samples of a board
// that just started are lines to read, not a sliver at the right edge of ten minutes.
function shownSpan(samples) {
  const full = history.keep * history.period;
  const held = samples.length ? history.now - samples[0].t : 0;
  return Math.min(full, Math.max(60, Math.ceil(held / 60) * 60));
}

function drawPlots() {
  const samples = history.samples, last = samples[samples.length - 1];
  const times = samples.map((s) => s.t);
  const options = { span: shownSpan(samples), gap: history.period * 2.5 };
  for (const plot of plots) drawPlot(plot, samples, times, last, options);
}

function drawPlot(plot, samples, times, last, options) {
  const def = plot.def, series = def.series(samples);
  const limit = def.limit && last ? def.limit(last) : null;
  Object.assign(plot.chart.options, options);
  plot.chart.update({ now: history.now, times, series, limit });
  const latest = last ? def.latest(last) : { value: "", text: "" };
  plot.latest.textContent = latest.text;
  plot.canvas.setAttribute("aria-label", def.title + (latest.text ? ": " + latest.text : ""));  // screen readers
  plot.figure.dataset.latest = latest.value;
  plot.figure.dataset.models = series.map((s) => s.mid).filter((m) => m).join(",");
}

// 4.5, 12, 1273: one decimal below 10, whole figures above.
const rounded = (v) => (v < 10 ? Math.round(v * 10) / 10 : Math.round(v));

// The models with something to draw in the kept samples, in the board's order.
function modelsWith(samples, has) {
  const seen = new Set();
  for (const s of samples) for (const [mid, runs] of Object.entries(s.models || {})) if (has(runs)) seen.add(mid);
  return [...seen].sort((a, b) => Number(a) - Number(b));
}

function rateSeries(samples) {
  // A sample without a model ran nothing of it in its period: 0, not a gap.
  return modelsWith(samples, (r) => r.requests > 0).map((mid) => ({
    mid, label: modelName(mid), color: modelColor(mid),
    values: samples.map((s) => ((s.models[mid] || {}).requests || 0) / history.period),
  }));
}

function rateLatest(last) {
  const total = Object.values(last.models || {}).reduce((n, r) => n + r.requests, 0) / history.period;
  return { value: rounded(total), text: rounded(total) + " req/s" };
}

function latencySeries(samples) {
  // A period without runs has no latency: a gap, not 0 ms.
  const pick = (mid, key) => samples.map((s) => (s.models[mid] ? s.models[mid][key] : null));
  return modelsWith(samples, (r) => r.p50 !== null).flatMap((mid) => [
    { mid, label: modelName(mid), color: modelColor(mid), values: pick(mid, "p50") },
    { label: modelName(mid) + " p95", group: modelName(mid), color: modelColor(mid), values: pick(mid, "p95"),
      dashed: true, legend: false },
  ]);
}

// The latest p50 / p95 of the model that ran most in the last period.
function latencyLatest(last) {
  const [mid, busiest] = Object.entries(last.models || {}).filter(([, r]) => r.p50 !== null)
    .sort(([, a], [, b]) => b.requests - a.requests)[0] || [];
  if (!busiest) return { value: "", text: "idle" };
  const text = modelName(mid) + ": p50 " + rounded(busiest.p50) + " · p95 " + rounded(busiest.p95) + " ms";
  return { value: busiest.p50, text };
}

function queueSeries(samples) {
  return [{ label: "on the accelerator", color: PALETTE[0], values: samples.map((s) => s.queue_depth) },
          { label: "waiting in line", color: PALETTE[1], values: samples.map((s) => s.queue_line) }];
}

function queueLimit(last) {
  return last.queue_capacity ? { value: last.queue_capacity, label: "capacity " + last.queue_capacity } : null;
}

function queueLatest(last) {
  const of = last.queue_capacity ? " of " + last.queue_capacity : "";
  const waiting = last.queue_line ? ", " + last.queue_line + " waiting" : "";
  return { value: last.queue_depth, text: last.queue_depth + of + waiting };
}

function refusedSeries(samples) {
  return [{ label: "503 answers", color: PALETTE[3], values: samples.map((s) => s.refused / history.period) }];
}

function refusedLatest(last) {
  const rate = rounded(last.refused / history.period);
  return { value: rate, text: rate + " /s" };
}

function memorySeries(samples) {
  return MEMORY_PARTS.map(([key, label, color]) => ({
    label, color, values: samples.map((s) => (s.memory && s.memory[key] !== undefined ? s.memory[key] : null)),
  }));
}

function memoryLimit(last) {
  const budget = last.memory && last.memory.budget_mb;
  return budget ? { value: budget, label: "budget " + budget + " MB" } : null;
}

function memoryLatest(last) {
  const m = last.memory || {};
  if (m.total_mb === undefined || m.total_mb === null) return { value: "", text: "" };
  return { value: m.total_mb, text: Math.round(m.total_mb) + (m.budget_mb ? " of " + m.budget_mb : "") + " MB" };
}

function restartSeries(samples) {
  return [{ label: "restarts since start", color: PALETTE[3], values: samples.map((s) => s.restarts) }];
}

function restartLatest(last) {
  return { value: last.restarts, text: String(last.restarts) };
}
