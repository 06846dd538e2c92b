// Models: what the board has installed (GET /api/models), installing a bundle archive
// (POST /api/models, the .tar.gz as the raw body) and deleting one (DELETE /api/models/ID).
// Both changes reload the table and tell the other parts ("edgeapp:models-changed").
import { call, get } from "./api.js";
import { boardError, confirmStep, el, refusal, say, succeeded } from "./dom.js";

const COLUMNS = ["id", "name", "type", "engine", "input", "memory", "accuracy", "sha256", "status", ""];
const NO_TOKEN = 1019;  // the board refuses pushes and deletes when it has no token configured
let parts;

export function start() {
  parts = build(document.getElementById("models"));
  load();
  document.addEventListener("edgeapp:token-changed", load);
}

function build(section) {
  const p = {
    body: el("tbody", {}),
    message: el("p", { id: "models-msg", hidden: true, role: "status" }),
    archive: el("input", { type: "file", id: "models-archive", accept: ".tar.gz,.tgz,application/gzip", required: true }),
  };
  const head = el("tr", {}, ...COLUMNS.map((c) => el("th", { scope: "col" }, c)));
  const table = el("table", { id: "models-table", className: "cards" }, el("thead", {}, head), p.body);
  const form = el("form", { id: "models-upload", className: "stack" },
    el("h3", {}, "Install a bundle"),
    el("label", { htmlFor: "models-archive" }, "The bundle folder as a .tar.gz (tar czf NAME.tar.gz -C PARENT NAME)"),
    p.archive, el("div", {}, el("button", { type: "submit", id: "models-install", className: "primary" }, "Install")));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); install(form); });
  section.append(el("div", { className: "scroll" }, table), p.message, form);
  return p;
}

async function load() {
  const answer = await get("/api/models");
  parts.body.textContent = "";
  if (!succeeded(answer)) {
    const why = refusal(answer, "The models are listed here");
    const kind = answer.status === 401 ? "muted" : "error";
    parts.body.append(el("tr", {}, el("td", { colSpan: COLUMNS.length, className: "why " + kind }, why)));
    return;
  }
  for (const m of answer.env.data) parts.body.append(row(m));
}

function row(m) {
  const shape = m.input_shape || [];
  const sha = m.sha256 ? el("code", { title: m.sha256 }, m.sha256.slice(0, 12)) : "–";
  const status = m.ready ? el("span", { className: "ok" }, "ready") : el("span", { className: "error" }, "not ready: " + (m.reason || "?"));
  const remove = el("button", { type: "button", className: "small", "data-mid": m.id }, "Delete");
  remove.addEventListener("click", () =>
    confirmStep(remove, "Delete model " + m.id + " (" + m.name + ") from the board?", "Delete", () => forget(m)));
  const cells = [m.id, m.name, m.type, m.engine || "–", shape.length === 4 ? shape[3] + "×" + shape[2] : "–",
    m.memory_mb == null ? "–" : m.memory_mb + " MB", m.accuracy == null ? "–" : m.accuracy, sha, status, remove];
  return el("tr", { "data-mid": m.id },
    ...cells.map((c, i) => el("td", { "data-label": COLUMNS[i], className: "col-" + (COLUMNS[i] || "actions") }, c)));
}

async function install(form) {
  const file = parts.archive.files[0];
  if (!file) return;
  const button = form.querySelector("button");
  button.disabled = true;
  say(parts.message, "installing " + file.name + "…");
  const answer = await call("POST", "/api/models", file, { "Content-Type": "application/gzip" });
  button.disabled = false;
  if (succeeded(answer)) {
    const d = answer.env.data;
    say(parts.message, "Model " + d.id + " (" + d.name + ") " + d.action + ", sha256 " + d.sha256.slice(0, 12), "ok");
    form.reset();
    changed();
  } else say(parts.message, pushRefusal(answer), "error");
}

async function forget(m) {
  const answer = await call("DELETE", "/api/models/" + m.id);
  say(parts.message, succeeded(answer) ? "Model " + m.id + " (" + m.name + ") removed" : pushRefusal(answer),
    succeeded(answer) ? "ok" : "error");
  if (succeeded(answer)) changed();
}

function pushRefusal(answer) {
  if (answer.env && answer.env.code === NO_TOKEN) {
    return "This board has no access token configured, so it does not take or remove models over HTTP " +
      "(set EDGEAPP_TOKEN on the board). " + boardError(answer);
  }
  return boardError(answer);
}

function changed() {
  load();
  document.dispatchEvent(new CustomEvent("edgeapp:models-changed"));
}
