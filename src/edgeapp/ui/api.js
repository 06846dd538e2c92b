// Talking to this board: its access token and its JSON answers. Every part of the page goes
// through call(): it sends the token, parses the envelope, and tells the page when the board
// wants a token (or a different one), so that one bar asks for it.

const KEY = "edgeapp.token";  // sessionStorage: kept while the tab lives, never in the address

// A token given once as ?token=... is moved into the session's storage and taken out of the
// address bar (and so out of the history, bookmarks and screenshots).
export function takeTokenFromAddress() {
  const url = new URL(location.href);
  if (!url.searchParams.has("token")) return;
  setToken(url.searchParams.get("token"));
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
  document.dispatchEvent(new CustomEvent("edgeapp:token-changed"));
}

export function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

// fetch() with the token: {status, env (the parsed JSON, or an envelope saying why not), headers}.
// A 401 also raises "edgeapp:token-needed" with the board's message.
export async function call(method, path, body, headers) {
  const sent = token();
  let r;
  try {
    r = await fetch(path, { method, body, headers: Object.assign(authHeaders(), headers || {}) });
  } catch (e) {
    return { status: 0, env: { code: -1, msg: "the board did not answer: " + e.message }, headers: new Headers() };
  }
  let env;
  try {
    env = await r.json();
  } catch (e) {
    env = { code: -1, msg: "the board answered HTTP " + r.status + " without JSON" };
  }
  // Only when the token sent is still the one held: an answer to a request that left before a
  // new token was given says nothing about the new one.
  if (r.status === 401 && sent === token()) {
    document.dispatchEvent(new CustomEvent("edgeapp:token-needed", { detail: env.msg || env.error || "" }));
  }
  return { status: r.status, env, headers: r.headers };
}

export const get = (path) => call("GET", path);
