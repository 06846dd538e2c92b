// A small line chart on <canvas>, of our own: the page loads nothing from outside the board, and
// what it needs (a few series over the last minutes) is a page of code, not a library.
//
// Time runs on x (the last `span` seconds, labelled "-10 min" ... "now", or "-30 s" ... "now"), y
// starts at 0 with a few round ticks and the unit. A series may have gaps (null, or samples further
// apart than `gap` seconds): they are drawn as breaks, never as drops to zero, which would read as
// "idle". A series may be dashed (p95 beside a solid p50), the series may be stacked as areas (memory by part), and a
// horizontal limit line shows what a figure must stay under (queue capacity, memory budget).

const PAD = { left: 40, right: 10, top: 16, bottom: 20 };  // CSS px: y labels, unit, x labels
const FONT = "11px system-ui, sans-serif";
const LIMIT_COLOR = "#c0392b";

export class LineChart {
  // options: {unit, span (s shown), gap (s between samples that still join), stacked, integer (a
  // count: whole ticks), legend (an element the chart fills with one entry per series), empty (the
  // text shown without data)}
  constructor(canvas, options) {
    this.canvas = canvas;
    this.options = Object.assign({ unit: "", span: 600, gap: 5, stacked: false, empty: "no data yet" }, options);
    this.data = null;
    this.legendKey = "";
    // Series the person switched off in the legend, by label: the y scale then fits the rest (a
    // 600 ms detector otherwise flattens the 3 ms classifiers next to it).
    this.hidden = new Set();
    // The canvas's width follows the page (a window resized, a phone turned, the grid reflowing):
    // its pixels must be sized and drawn again then, or the plot is stretched and blurred.
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  // data: {now (the newest time, s), times [s...], series [{label, color, values, dashed, legend:
  // false to leave it out of the legend, group: the label of the entry that shows and hides it too}],
  // limit {value, label} or null}
  update(data) {
    this.data = data;
    this.fillLegend();
    this.draw();
  }

  draw() {
    const ctx = this.context();
    if (!ctx) return;
    const box = plotBox(this.size);
    const data = this.shownData();
    const tops = this.options.stacked ? stackTops(data.series) : data.series.map((s) => s.values);
    const top = Math.max(maxOf(tops), (data.limit && data.limit.value) || 0);
    const ticks = niceTicks(top, this.options.integer);
    const scale = makeScale(box, data.now - this.options.span, this.options.span, ticks.max);
    const style = getComputedStyle(this.canvas);
    ctx.font = FONT;
    drawValueAxis(ctx, box, ticks, this.options.unit, style.color);
    drawTimeAxis(ctx, box, this.options.span, style.color);
    ctx.save();
    clipTo(ctx, box);
    if (this.options.stacked) drawAreas(ctx, scale, data, tops, this.options.gap);
    else drawLines(ctx, scale, data, this.options.gap);
    ctx.restore();
    if (data.limit) drawLimit(ctx, box, scale, data.limit);
    if (!data.times.length) drawEmpty(ctx, box, this.options.empty, style.color);
  }

  // The 2D context with the canvas's pixels matching its CSS size times devicePixelRatio (sharp on
  // high-DPI screens), drawing in CSS pixels; null while the canvas is not laid out (hidden).
  context() {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width < 1 || rect.height < 1) return null;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(rect.width * ratio), h = Math.round(rect.height * ratio);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, rect.width, rect.height);
    this.size = { w: rect.width, h: rect.height };
    return ctx;
  }

  shownData() {
    const data = this.data || { now: 0, times: [], series: [] };
    const series = data.series.filter((s) => !this.hidden.has(s.group || s.label));
    return Object.assign({}, data, { series });
  }

  // The legend is HTML beside the canvas (it wraps on a phone, its text can be read, and each
  // entry is a button that shows or hides its series); rebuilt only when the series change.
  fillLegend() {
    const list = this.options.legend;
    const entries = this.data.series.filter((s) => s.legend !== false);
    const key = entries.map((s) => s.label + s.color + !!s.dashed).join("|");
    if (!list || key === this.legendKey) return;
    this.legendKey = key;
    list.replaceChildren(...entries.map((s) => this.legendEntry(s)));
  }

  legendEntry(series) {
    const item = document.createElement("li"), button = document.createElement("button");
    const line = document.createElement("span");
    line.className = series.dashed ? "key-line dashed" : "key-line";
    line.style.borderColor = series.color;  // CSSOM, which the page's CSP allows
    button.type = "button";
    button.title = "show or hide " + series.label + " in this plot";
    button.setAttribute("aria-pressed", String(!this.hidden.has(series.label)));
    button.append(line, document.createTextNode(series.label));
    button.addEventListener("click", () => {
      const shown = this.hidden.has(series.label);
      if (shown) this.hidden.delete(series.label);
      else this.hidden.add(series.label);
      button.setAttribute("aria-pressed", String(shown));
      this.draw();
    });
    item.append(button);
    return item;
  }
}

function plotBox(size) {
  return { x0: PAD.left, x1: size.w - PAD.right, y0: PAD.top, y1: size.h - PAD.bottom };
}

// From data to CSS pixels: x(t) for a time in seconds, y(v) for a value.
function makeScale(box, from, span, max) {
  return {
    x: (t) => box.x0 + ((t - from) / span) * (box.x1 - box.x0),
    y: (v) => box.y1 - (v / max) * (box.y1 - box.y0),
  };
}

function maxOf(lists) {
  let max = 0;
  for (const values of lists) for (const v of values) if (v !== null && v > max) max = v;
  return max;
}

// Round ticks from 0 up to at least `top`: steps of 1, 2 or 5 times a power of ten, about four of
// them, so the labels are figures a person reads at a glance (whole ones for a count: no "0.5 restarts").
function niceTicks(top, integer) {
  if (!(top > 0)) return { step: 1, max: 1, digits: 0 };
  const rough = integer ? Math.max(1, top / 4) : top / 4;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  return { step, max: Math.ceil(top / step - 1e-9) * step, digits: Math.max(0, -Math.floor(Math.log10(step))) };
}

function drawValueAxis(ctx, box, ticks, unit, color) {
  ctx.fillStyle = color;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = 0; v <= ticks.max + ticks.step / 2; v += ticks.step) {
    const y = box.y1 - (v / ticks.max) * (box.y1 - box.y0);
    hairline(ctx, box.x0, y, box.x1, y, color, v === 0 ? 0.5 : 0.15);
    ctx.fillText(v.toFixed(ticks.digits), box.x0 - 4, y);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.fillText(unit, box.x0 + 2, box.y0 - 2);  // above the plot, clear of the top tick's label
}

// Labels every 15 s ... 10 min, the shortest step that leaves about 60 px between them (a phone
// shows fewer of them than a desktop); seconds only within the last minute, so no "-1.5 min".
const TIME_STEPS = [15, 30, 60, 120, 300, 600];

function drawTimeAxis(ctx, box, span, color) {
  const width = box.x1 - box.x0;
  const step = TIME_STEPS.find((s) => (s >= 60 || span <= 60) && (width * s) / span >= 60) || 600;
  ctx.fillStyle = color;
  ctx.textBaseline = "top";
  for (let ago = 0; ago <= span + 1e-9; ago += step) {
    const x = box.x1 - (ago / span) * width;
    const label = ago === 0 ? "now" : ago < 60 ? "-" + ago + " s" : "-" + Math.round(ago / 60) + " min";
    // "now" ends at the right edge; the oldest label starts at the left one, clear of the y labels.
    const half = ctx.measureText(label).width / 2;
    ctx.textAlign = ago === 0 ? "right" : x - half < box.x0 ? "left" : "center";
    ctx.fillText(label, x, box.y1 + 4);
  }
}

function hairline(ctx, x0, y0, x1, y1, color, alpha) {
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(x0, Math.round(y0) + 0.5);  // on the pixel grid: a crisp line, not two grey ones
  ctx.lineTo(x1, Math.round(y1) + 0.5);
  ctx.stroke();
  ctx.restore();
}

function clipTo(ctx, box) {
  ctx.beginPath();
  ctx.rect(box.x0, box.y0 - 2, box.x1 - box.x0, box.y1 - box.y0 + 3);  // a line at the top stays whole
  ctx.clip();
}

// The runs of samples a line joins: [[i, j, ...], ...], split at nulls and at time gaps.
function runs(times, values, gap) {
  const out = [];
  let run = [];
  for (let i = 0; i < times.length; i++) {
    const missing = values[i] === null || values[i] === undefined;
    if (run.length && (missing || times[i] - times[run[run.length - 1]] > gap)) {
      out.push(run);
      run = [];
    }
    if (!missing) run.push(i);
  }
  if (run.length) out.push(run);
  return out;
}

function drawLines(ctx, scale, data, gap) {
  ctx.lineWidth = 1.5;
  ctx.lineJoin = "round";
  for (const s of data.series) {
    ctx.strokeStyle = s.color;
    ctx.setLineDash(s.dashed ? [4, 3] : []);
    for (const run of runs(data.times, s.values, gap)) {
      ctx.beginPath();
      run.forEach((i, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, scale.x(data.times[i]), scale.y(s.values[i])));
      if (run.length === 1) ctx.lineTo(scale.x(data.times[run[0]]) + 1, scale.y(s.values[run[0]]));  // a dot
      ctx.stroke();
    }
  }
  ctx.setLineDash([]);
}

// Each stacked series' top edge: its value on the sum of the ones below (null where it has none).
function stackTops(series) {
  const tops = [];
  series.forEach((s, k) => {
    tops.push(s.values.map((v, i) => (v === null ? null : v + (k ? tops[k - 1][i] || 0 : 0))));
  });
  return tops;
}

// Each area between its top edge and the one below, filled lightly and outlined in its colour.
function drawAreas(ctx, scale, data, tops, gap) {
  data.series.forEach((s, k) => {
    for (const run of runs(data.times, tops[k], gap)) {
      const xs = run.map((i) => scale.x(data.times[i]));
      ctx.beginPath();
      run.forEach((i, n) => ctx.lineTo(xs[n], scale.y(tops[k][i])));
      for (let n = run.length - 1; n >= 0; n--) ctx.lineTo(xs[n], scale.y(k ? tops[k - 1][run[n]] || 0 : 0));
      ctx.closePath();
      ctx.fillStyle = s.color;
      ctx.globalAlpha = 0.35;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.strokeStyle = s.color;
      ctx.stroke();
    }
  });
}

function drawLimit(ctx, box, scale, limit) {
  const y = Math.round(scale.y(limit.value)) + 0.5;
  ctx.save();
  ctx.strokeStyle = LIMIT_COLOR;
  ctx.setLineDash([6, 4]);
  ctx.beginPath();
  ctx.moveTo(box.x0, y);
  ctx.lineTo(box.x1, y);
  ctx.stroke();
  ctx.fillStyle = LIMIT_COLOR;
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  ctx.fillText(limit.label, box.x1 - 2, y - 2);
  ctx.restore();
}

function drawEmpty(ctx, box, text, color) {
  ctx.fillStyle = color;
  ctx.globalAlpha = 0.6;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2);
  ctx.globalAlpha = 1;
}
