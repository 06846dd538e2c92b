// "Try it": choose models, drop, pick or photograph an image, run it on the board and see what
// each model found drawn over the picture (results.js). One model goes to the binary endpoint
// with the raw file, several to multipart (the board decodes the image once for all of them).
import { call, get } from "./api.js";
import { boardError, el, refusal, say } from "./dom.js";
import { drawPicture, drawResults, modelOutput, parseTiming, timingBar } from "./results.js";

const state = { file: null, img: null, scale: 1, loading: null, models: new Map() };  // the picture chosen, as drawn
let parts;

export function start() {
  parts = build(document.getElementById("try"));
  loadModels();
  document.addEventListener("edgeapp:token-changed", loadModels);
  document.addEventListener("edgeapp:models-changed", loadModels);
}

function build(section) {
  const p = {
    models: el("fieldset", { id: "try-models", className: "choices" }, el("legend", {}, "Models")),
    file: el("input", { type: "file", id: "try-file", accept: "image/*", className: "visually-hidden" }),
    camera: el("input", { type: "file", id: "try-camera", accept: "image/*", capture: "environment", className: "visually-hidden" }),
    chosen: el("span", { id: "try-chosen", className: "muted" }, "Drop an image here, or"),
    run: el("button", { type: "submit", id: "try-run", className: "primary", disabled: true }, "Run"),
    state: el("span", { id: "try-state", className: "muted", "aria-live": "polite" }),
    error: el("p", { id: "try-error", className: "error", hidden: true, role: "alert" }),
    timing: el("div", { id: "try-timing", className: "timing", hidden: true }),
    canvas: el("canvas", { id: "try-canvas", "aria-label": "the picture with what the models found" }),
    results: el("div", { id: "try-results" }),
  };
  // Each input before its label: the label is the visible button, outlined when the input has focus.
  p.drop = el("div", { id: "try-drop", className: "drop" }, p.chosen, " ",
    p.file, el("label", { className: "button", htmlFor: "try-file" }, "Choose a picture"), " ",
    p.camera, el("label", { className: "button camera", htmlFor: "try-camera" }, "Take a photo"));
  const form = el("form", { id: "try-form" }, p.models, p.drop, el("div", { className: "actions" }, p.run, " ", p.state));
  p.picture = el("div", { id: "try-picture", className: "picture", hidden: true }, p.canvas);
  section.append(form, p.error, p.timing, el("div", { className: "try-output" }, p.picture, p.results));
  wireDrop(p);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  return p;
}

function wireDrop(p) {
  for (const input of [p.file, p.camera]) input.addEventListener("change", () => choose(input.files[0]));
  p.drop.addEventListener("dragover", (ev) => { ev.preventDefault(); p.drop.classList.add("over"); });
  p.drop.addEventListener("dragleave", () => p.drop.classList.remove("over"));
  p.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    p.drop.classList.remove("over");
    choose(ev.dataTransfer.files[0]);
  });
}

async function loadModels() {
  const answer = await get("/api/models");
  if (answer.status !== 200 || answer.env.code !== 0) {
    say(parts.error, refusal(answer, "The models are listed here"), answer.status === 401 ? "" : "error");
    return;
  }
  say(parts.error, "");
  const checked = new Set(chosenMids());
  state.models = new Map(answer.env.data.map((m) => [m.id, m]));
  parts.models.querySelectorAll("label").forEach((n) => n.remove());
  for (const m of answer.env.data) parts.models.append(choice(m, checked));
  if (!chosenMids().length) {
    const first = parts.models.querySelector("input:not([disabled])");
    if (first) first.checked = true;
  }
  updateRun();
}

function choice(m, checked) {
  const input = el("input", { type: "checkbox", name: "mid", value: m.id, disabled: !m.ready,
    checked: m.ready && checked.has(m.id) });
  input.addEventListener("change", updateRun);
  return el("label", { className: "choice" + (m.ready ? "" : " muted"), title: m.ready ? m.type : "not ready: " + (m.reason || "") },
    input, " " + m.id + " " + m.name);
}

function chosenMids() {
  return [...parts.models.querySelectorAll("input[name=mid]:checked")].map((n) => Number(n.value));
}

function updateRun() {
  parts.run.disabled = !(state.file && chosenMids().length);
}

// Shows the picture at once (before any run), scaled; a file the browser cannot show is still sent.
function choose(file) {
  if (!file) return;
  state.file = file;
  state.img = null;
  parts.chosen.textContent = file.name + " (" + Math.round(file.size / 1024) + " KB)";
  parts.results.textContent = "";
  parts.timing.hidden = true;
  say(parts.error, "");
  updateRun();
  state.loading = showPicture(file);  // a run waits for it, to draw over this picture
}

async function showPicture(file) {
  const img = new Image();
  const url = URL.createObjectURL(file);
  try {
    img.src = url;
    await img.decode();
    if (state.file !== file) return;  // another picture was chosen meanwhile
    state.img = img;
    state.scale = drawPicture(parts.canvas, img);
    parts.picture.hidden = false;
  } catch (e) {  // a file the browser cannot show (HEIC, not an image): still sent, the board says
    if (state.file === file) parts.picture.hidden = true;
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function run() {
  const mids = chosenMids();
  if (!state.file || !mids.length) return;
  parts.run.disabled = true;
  say(parts.state, "running…");
  try {
    const file = state.file;
    const [answer] = await Promise.all([send(file, mids), state.loading]);
    if (state.file === file) show(answer, mids);
    else say(parts.state, "");  // another picture was chosen meanwhile: this answer is not about it
  } finally {
    updateRun();
  }
}

function send(file, mids) {
  if (mids.length === 1) {
    return call("POST", "/api/model/service/binary?mid=" + mids[0], file,
      { "Content-Type": file.type || "application/octet-stream" });
  }
  const form = new FormData();
  form.append("file", file);
  form.append("mids", "[" + mids.join(",") + "]");
  return call("POST", "/api/model/service/multipart", form);
}

function show(answer, mids) {
  showTiming(answer.headers.get("Server-Timing"));
  parts.results.textContent = "";
  if (answer.status !== 200 || answer.env.code !== 0) {
    say(parts.state, "");
    say(parts.error, boardError(answer), "error");
    return;
  }
  say(parts.error, "");
  const outputs = mids.length === 1 ? [{ model_id: mids[0], result: answer.env.data.result }] : answer.env.data;
  if (state.img) {
    drawPicture(parts.canvas, state.img);
    drawResults(parts.canvas, state.scale, outputs);
  }
  outputs.forEach((out, i) => parts.results.append(modelOutput(out, state.models.get(out.model_id), i)));
  say(parts.state, "done", "ok");
}

function showTiming(header) {
  const timing = parseTiming(header);
  parts.timing.textContent = "";
  parts.timing.hidden = !Object.keys(timing).length;
  if (!parts.timing.hidden) parts.timing.append(el("h3", {}, "Where the time went"), ...timingBar(timing));
}
