// Faces: the people the board's face model recognises (DeepStack's face routes), registering one
// from a picture and deleting one. Shown only when /api/status has "faces" (a face model is
// installed). The token rules are the API's: api.call sends it.
import { call, get } from "./api.js";
import { boardError, confirmStep, el, say, succeeded } from "./dom.js";

let parts;

export function start() {
  const section = document.getElementById("faces");
  section.hidden = true;
  parts = build(section);
  refresh();
  document.addEventListener("edgeapp:token-changed", refresh);
  document.addEventListener("edgeapp:models-changed", refresh);
}

function build(section) {
  const p = {
    section,
    summary: el("p", { id: "faces-summary", className: "muted" }),
    list: el("ul", { id: "faces-list", className: "people" }),
    message: el("p", { id: "faces-msg", hidden: true, role: "status" }),
    userid: el("input", { type: "text", id: "faces-userid", name: "userid", required: true, maxLength: 200,
      autocomplete: "off", placeholder: "name or id" }),
    image: el("input", { type: "file", id: "faces-image", name: "image", accept: "image/*", required: true, multiple: true }),
  };
  const form = el("form", { id: "faces-register", className: "stack" },
    el("h3", {}, "Register a person"),
    el("label", { htmlFor: "faces-userid" }, "User id"), p.userid,
    el("label", { htmlFor: "faces-image" }, "One or more pictures of their face"), p.image,
    el("div", {}, el("button", { type: "submit", id: "faces-add", className: "primary" }, "Register")));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); register(form); });
  section.append(p.summary, p.message, p.list, form);
  return p;
}

// The status says whether there is a face model (faces.model: the face database is always there,
// its model only with one) and the database's figures; then the list.
async function refresh() {
  const status = await get("/api/status");
  const faces = status.status === 200 && status.env.data ? status.env.data.faces : null;
  parts.section.hidden = !(faces && faces.model);
  if (parts.section.hidden) return;
  parts.summary.textContent = faces.error ? "The face database cannot be used: " + faces.error
    : faces.users + " of at most " + faces.max_users + " people registered, " + faces.faces + (faces.faces === 1 ? " face" : " faces");
  parts.summary.title = faces.model ? "face model: " + faces.model : "";
  const answer = await call("POST", "/v1/vision/face/list", new FormData());
  parts.list.textContent = "";
  if (!succeeded(answer)) { say(parts.message, boardError(answer), "error"); return; }
  if (!answer.env.faces.length) parts.list.append(el("li", { className: "muted" }, "Nobody is registered yet."));
  for (const userid of answer.env.faces) parts.list.append(person(userid));
}

function person(userid) {
  const remove = el("button", { type: "button", className: "small", "data-userid": userid }, "Delete");
  remove.addEventListener("click", () =>
    confirmStep(remove, "Forget every face of " + userid + "?", "Delete", () => forget(userid)));
  return el("li", { "data-userid": userid }, el("span", { className: "userid" }, userid), " ", remove);
}

async function register(form) {
  const button = form.querySelector("button");
  const body = new FormData();
  body.append("userid", parts.userid.value.trim());
  // DeepStack's names for several pictures: image, image1, image2, ...
  [...parts.image.files].forEach((file, i) => body.append(i ? "image" + i : "image", file));
  button.disabled = true;
  say(parts.message, "registering…");
  const answer = await call("POST", "/v1/vision/face/register", body);
  button.disabled = false;
  if (succeeded(answer)) {
    say(parts.message, parts.userid.value.trim() + ": " + answer.env.message + " (" + answer.env.faces + " face" +
      (answer.env.faces === 1 ? "" : "s") + ")", "ok");
    form.reset();
  } else say(parts.message, boardError(answer), "error");
  refresh();
}

async function forget(userid) {
  const body = new FormData();
  body.append("userid", userid);
  const answer = await call("POST", "/v1/vision/face/delete", body);
  say(parts.message, succeeded(answer) ? userid + ": " + answer.env.message : boardError(answer),
    succeeded(answer) ? "ok" : "error");
  refresh();
}
