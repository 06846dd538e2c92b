// The try-it page: plain JavaScript, no build step, no network beyond this board.
"use strict";

const $ = (sel) => document.querySelector(sel);
let chosen = null;

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: headers() });
  return r.json();
}

function headers() {
  // An access token, if the board has one, can be given once as ?token=... in the page address.
  const token = new URLSearchParams(location.search).get("token");
  return token ? { Authorization: "Bearer " + token } : {};
}

async function loadModels() {
  const env = await getJSON("/api/models");
  const box = $("#models");
  box.querySelectorAll("label, p").forEach((el) => el.remove());
  if (env.code !== 0) { box.appendChild(text("p", env.msg, "error")); return; }
  for (const m of env.data) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox"; input.name = "mid"; input.value = m.id; input.disabled = !m.ready;
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + m.id + " " + m.name));
    if (!m.ready) label.title = m.reason || "not ready";
    box.appendChild(label);
  }
  const first = box.querySelector("input:not([disabled])");
  if (first) first.checked = true;
}

async function loadStatus() {
  const [models, status] = await Promise.all([getJSON("/api/models"), getJSON("/api/status")]);
  const stats = {};
  if (status.code === 0) {
    for (const m of status.data.models) stats[m.id] = m;
    const s = status.data;
    $("#service").textContent = "v" + s.version + " · worker " + s.state + " · queue " +
      s.queue_depth + "/" + s.queue_capacity + " · up " + Math.round(s.uptime_s) + " s";
    $("#status").textContent = JSON.stringify(s, null, 2);
  }
  const body = $("#model-table tbody");
  body.textContent = "";
  if (models.code !== 0) return;
  for (const m of models.data) {
    const st = stats[m.id] || {};
    const row = document.createElement("tr");
    const cells = [m.id, m.name, m.type, m.input_shape.slice(2).reverse().join("×"),
      m.ready ? "ready" : "failed: " + (m.reason || ""), m.engine || "–", m.memory_mb == null ? "–" : m.memory_mb + " MB",
      st.requests == null ? "–" : st.requests, st.latency_ms && st.latency_ms.p50 != null ? st.latency_ms.p50 : "–"];
    for (const c of cells) row.appendChild(text("td", String(c)));
    body.appendChild(row);
  }
}

function choose(file) {
  chosen = file;
  $("#drop span").textContent = file ? file.name + " (" + Math.round(file.size / 1024) + " KB)" : "Drop an image here or choose one";
  $("#run").disabled = !file;
}

async function run(ev) {
  ev.preventDefault();
  const mids = [...document.querySelectorAll("input[name=mid]:checked")].map((el) => el.value);
  if (!chosen || !mids.length) { $("#state").textContent = "choose an image and at least one model"; return; }
  const form = new FormData();
  form.append("file", chosen);
  form.append("mids", "[" + mids.join(",") + "]");
  $("#state").textContent = "running…";
  $("#run").disabled = true;
  try {
    const r = await fetch("/api/model/service/multipart?show=1", { method: "POST", body: form, headers: headers() });
    const env = await r.json();
    show(env, r.headers.get("Server-Timing"));
    $("#state").textContent = env.code === 0 ? "done" : "";
  } catch (e) {
    $("#state").textContent = "failed: " + e;
  } finally {
    $("#run").disabled = false;
    loadStatus();
  }
}

function show(env, timing) {
  $("#results").hidden = false;
  $("#json").textContent = JSON.stringify(env, (k, v) => (k === "image" ? "<base64 JPEG>" : v), 2);
  const t = $("#timing");
  t.textContent = "";
  for (const part of (timing || "").split(",")) {
    const [name, dur] = part.trim().split(";dur=");
    if (name && dur) t.appendChild(text("span", name + " " + Number(dur).toFixed(1) + " ms"));
  }
  const out = $("#outputs");
  out.textContent = "";
  if (env.code !== 0) { out.appendChild(text("p", "Error " + env.code + ": " + env.msg, "error")); return; }
  for (const d of env.data) {
    const div = document.createElement("div");
    div.className = "output";
    div.appendChild(text("h3", "model " + d.model_id + ": " + d.result.length + " result(s)"));
    const table = document.createElement("table");
    table.className = "result-table";
    const head = document.createElement("tr");
    for (const h of ["label", "score", "left", "top", "width", "height"]) head.appendChild(text("th", h));
    table.appendChild(head);
    for (const r of d.result) {
      const row = document.createElement("tr");
      row.className = "result-row";
      const l = r.location;
      for (const c of [r.label, r.score.toFixed(3), l.left.toFixed(0), l.top.toFixed(0), l.width.toFixed(0), l.height.toFixed(0)]) {
        row.appendChild(text("td", c));
      }
      table.appendChild(row);
    }
    div.appendChild(table);
    if (d.image) {
      const img = document.createElement("img");
      img.alt = "rendered result of model " + d.model_id;
      img.className = "rendered";
      img.src = "data:image/jpeg;base64," + d.image;
      div.appendChild(img);
    }
    out.appendChild(div);
  }
}

const drop = $("#drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]); });
$("#file").addEventListener("change", (e) => choose(e.target.files[0]));
$("#form").addEventListener("submit", run);
loadModels();
loadStatus();
setInterval(loadStatus, 5000);
