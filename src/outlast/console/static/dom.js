// Building DOM nodes. Text always goes in through textContent: nothing here parses HTML, so
// untrusted text (agent output, event JSON) can never become markup or script.

/** An element: h("a.link", {href, onclick}, "text", child, ...). Attributes are set as properties
 * or with setAttribute; children are nodes or strings (as text nodes); null/false are skipped. */
export function h(tag, attrs, ...children) {
  // "name", then any ".class" and "#id" parts, in any order.
  const [name, ...parts] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || "div");
  const classes = parts.filter((p) => p[0] === ".").map((p) => p.slice(1));
  const id = parts.find((p) => p[0] === "#");
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id.slice(1);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const TERMINAL = new Set(["completed", "failed", "cancelled", "incomplete"]);

export function badge(status) {
  return h(`span.badge.status-${status || "unknown"}`, {}, (status || "unknown").replace("_", " "));
}
