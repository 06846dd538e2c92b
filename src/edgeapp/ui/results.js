// What a run of "Try it" answered, shown in the page: the user's own picture with every result
// drawn over it (a canvas), per model a table, the OCR text to copy, and the Server-Timing split.
import { el } from "./dom.js";

const MAX_SIDE = 1600;  // the canvas's largest side: a 12-megapixel phone photo is drawn scaled
const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#000075"];
const PHASES = ["queue", "decode", "preprocess", "inference", "postprocess", "render"];

// The picture on the canvas, scaled to at most MAX_SIDE; the scale from image pixels to canvas pixels.
export function drawPicture(canvas, img) {
  const scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
  canvas.width = Math.round(img.naturalWidth * scale);
  canvas.height = Math.round(img.naturalHeight * scale);
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  return scale;
}

// Every model's results over the picture, one colour a model (the colour of its table).
export function drawResults(canvas, scale, outputs) {
  const ctx = canvas.getContext("2d");
  const unit = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 400));
  ctx.lineWidth = unit;
  ctx.font = "bold " + (7 * unit) + "px sans-serif";
  outputs.forEach((out, i) => {
    const colour = COLOURS[i % COLOURS.length];
    for (const r of out.result) drawOne(ctx, r, scale, colour, unit);
  });
}

function drawOne(ctx, r, scale, colour, unit) {
  const box = r.location || {};
  const x = box.left * scale, y = box.top * scale;
  ctx.strokeStyle = colour;
  const points = r.extended && r.extended.points;
  if (Array.isArray(points) && points.length > 2) polygon(ctx, points, scale);
  else ctx.strokeRect(x, y, box.width * scale, box.height * scale);
  const keypoints = (r.extended && r.extended.keypoints) || {};
  ctx.fillStyle = colour;
  for (const p of Object.values(keypoints)) {
    ctx.beginPath();
    ctx.arc(p[0] * scale, p[1] * scale, 1.5 * unit, 0, 2 * Math.PI);
    ctx.fill();
  }
  tag(ctx, r.label + " " + r.score.toFixed(2), x, y, colour, unit);
}

function polygon(ctx, points, scale) {
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(p[0] * scale, p[1] * scale) : ctx.moveTo(p[0] * scale, p[1] * scale)));
  ctx.closePath();
  ctx.stroke();
}

// The label on a filled strip above the box (inside the picture when the box touches its top).
function tag(ctx, text, x, y, colour, unit) {
  const h = 9 * unit, w = ctx.measureText(text).width + 2 * unit;
  const top = y - h >= 0 ? y - h : y;
  ctx.fillStyle = colour;
  ctx.fillRect(x, top, w, h);
  ctx.fillStyle = "#fff";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x + unit, top + h / 2);
}

// One model's results as a table (and, for an OCR model, its text to copy).
export function modelOutput(out, model, index) {
  const name = model ? model.name + " (" + model.type + ")" : "";
  const box = el("div", { className: "output", "data-mid": out.model_id },
    el("h3", {}, el("span", { className: "swatch swatch-" + (index % COLOURS.length) }),
      "Model " + out.model_id + " " + name + ": " + out.result.length + " result" + (out.result.length === 1 ? "" : "s")));
  if (model && model.type === "ocr") box.append(ocrText(out.result));
  if (out.result.length) box.append(el("div", { className: "scroll" }, resultTable(out)));
  return box;
}

function resultTable(out) {
  const head = el("tr", {}, ...["label", "score", "left", "top", "width", "height"].map((h) => el("th", {}, h)));
  const rows = out.result.map((r) => {
    const l = r.location || {};
    return el("tr", { className: "result-row" }, el("td", {}, r.label), el("td", {}, r.score.toFixed(3)),
      ...[l.left, l.top, l.width, l.height].map((v) => el("td", { className: "num" }, Math.round(v))));
  });
  return el("table", { className: "result-table", "data-mid": out.model_id }, el("thead", {}, head), el("tbody", {}, ...rows));
}

// The text lines in reading order, in a read-only box with a Copy button.
function ocrText(result) {
  const area = el("textarea", { className: "ocr-text", readOnly: true, rows: Math.min(12, Math.max(2, result.length)),
    value: result.map((r) => r.label).join("\n"), "aria-label": "Text read" });
  const note = el("span", { className: "muted copy-note" });
  const button = el("button", { type: "button", className: "copy" }, "Copy text");
  button.addEventListener("click", () => copy(area, note));
  return el("div", { className: "ocr" }, area, el("div", {}, button, " ", note));
}

// navigator.clipboard exists only on https (or localhost); a board is usually plain http on the
// LAN, where the older select-and-copy command still works. If neither does, the text is left
// selected for the person to copy.
async function copy(area, note) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(area.value);
      note.textContent = "copied";
      return;
    }
  } catch (e) {
    // refused (no permission, page not focused): the older way below
  }
  area.focus();
  area.select();
  area.setSelectionRange(0, area.value.length);
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch (e) {
    copied = false;
  }
  note.textContent = copied ? "copied" : "selected: copy it with your keyboard or menu";
}

// "queue;dur=0.61, decode;dur=0.35, ..." -> {queue: 0.61, decode: 0.35, ...}
export function parseTiming(header) {
  const out = {};
  for (const part of (header || "").split(",")) {
    const m = part.trim().match(/^([\w-]+)(?:;.*?dur=([\d.]+))?/);
    if (m && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

// The phases as one stacked bar (each part's width its share of the time) and their figures.
export function timingBar(timing) {
  const phases = PHASES.filter((p) => timing[p] > 0 || (p in timing && p !== "render"));
  const sum = phases.reduce((s, p) => s + timing[p], 0) || 1;
  const bar = el("div", { className: "timing-bar", role: "img", "aria-label": "Server-Timing" });
  const legend = el("ul", { className: "timing-legend" });
  for (const p of phases) {
    const seg = el("span", { className: "seg seg-" + p, title: p + " " + timing[p].toFixed(1) + " ms" });
    seg.style.width = (100 * timing[p] / sum).toFixed(2) + "%";
    bar.append(seg);
    legend.append(el("li", { className: "phase-" + p }, el("span", { className: "dot seg-" + p }), p + " " + timing[p].toFixed(1) + " ms"));
  }
  if ("total" in timing) legend.append(el("li", { className: "phase-total" }, "total " + timing.total.toFixed(1) + " ms"));
  return [bar, legend];
}
