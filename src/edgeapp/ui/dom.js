// Small DOM helpers the page's parts share: building elements without innerHTML (the page's CSP
// allows no inline styles or handlers, and board answers are never parsed as HTML), the board's
// messages, and an in-page "are you sure?" step (window.confirm blocks the page and is
// suppressed in some browsers' embedded views).

// el("p", {className: "x", hidden: true}, "text", child, ...): keys the element has as DOM
// properties (className, type, value, disabled, htmlFor, ...) are set as such, any other
// ("data-*", "aria-*", capture) as attributes.
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// The board's own words for an answer that is not a success: the EdgeBoard envelope has
// {code, msg}, DeepStack's routes {success: false, error, code}.
export function boardError(answer) {
  const env = answer.env || {};
  const text = env.msg || env.error || "the board answered HTTP " + answer.status;
  return env.code > 0 ? "Error " + env.code + ": " + text : text;  // -1: api.js's own words
}

// The board's refusal, or, for a missing or wrong token (401: the token bar asks for it), what
// this part waits for.
export function refusal(answer, waiting) {
  return answer.status === 401 ? waiting + " once the board has its access token (above)." : boardError(answer);
}

export function succeeded(answer) {
  const env = answer.env || {};
  return answer.status === 200 && (env.code === 0 || env.success === true);
}

// Shows text in a message element: kind "ok", "error" or "" (neutral); empty text hides it.
export function say(node, text, kind) {
  node.textContent = text || "";
  node.hidden = !text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

// Replaces button by "question [Yes] [Keep]" until one is chosen; onYes runs on yes. The buttons
// carry data-confirm="yes"/"no" so tests and keyboards find them.
export function confirmStep(button, question, yesLabel, onYes) {
  const box = el("span", { className: "confirm", role: "group" }, el("span", {}, question + " "));
  const yes = el("button", { type: "button", className: "danger", "data-confirm": "yes" }, yesLabel);
  const no = el("button", { type: "button", "data-confirm": "no" }, "Keep");
  box.append(yes, " ", no);
  const restore = () => { box.replaceWith(button); button.focus(); };
  yes.addEventListener("click", () => { box.replaceWith(button); onYes(); });
  no.addEventListener("click", restore);
  button.replaceWith(box);
  no.focus();
}
