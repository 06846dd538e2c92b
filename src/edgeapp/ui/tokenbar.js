// The access token bar: shown when the board refuses a request for want of its token (api.js
// raises "edgeapp:token-needed"), it takes the token once, keeps it in the tab's session storage
// (api.setToken) and never puts it in the address. A "Forget token" button in the nav drops it.
import { setToken, token } from "./api.js";
import { el } from "./dom.js";

export function start() {
  const bar = document.getElementById("token-bar");
  const title = el("strong", { id: "token-title" });
  const detail = el("span", { id: "token-detail", className: "muted" });
  const input = el("input", { type: "password", id: "token-input", autocomplete: "off", required: true,
    "aria-label": "Access token", placeholder: "access token" });
  const form = el("form", { id: "token-form" }, input, " ", el("button", { type: "submit", id: "token-use" }, "Use token"));
  bar.append(el("p", {}, title, " ", detail), form);
  const forget = forgetButton();

  document.addEventListener("edgeapp:token-needed", (ev) => {
    title.textContent = token() ? "The token was not accepted." : "This board needs its access token.";
    detail.textContent = ev.detail ? "The board says: " + ev.detail : "";
    bar.hidden = false;
  });
  document.addEventListener("edgeapp:token-changed", () => { forget.hidden = !token(); });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    input.value = "";
    bar.hidden = true;  // shown again, "not accepted", if the board refuses it
    setToken(value);
  });
}

function forgetButton() {
  const button = el("button", { type: "button", id: "token-forget", className: "small", hidden: !token() }, "Forget token");
  button.addEventListener("click", () => setToken(""));
  document.querySelector("nav").append(button);
  return button;
}
