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

/**
 * Make `target` look like `source` (a node just built to show the same thing again), keeping
 * the elements of `target` where the two agree, so that an element under the pointer or holding
 * a selection stays the same element: redrawing a list every few seconds must not lose a click,
 * which needs its press and its release on one element. Children with a `data-id` are matched
 * by it (a run's row stays its row as others arrive above it). Event listeners stay those of
 * `target`'s elements: `source` must be built by the same code, with the same handlers.
 */
export function morph(target, source) {
  if (target.nodeType !== source.nodeType || target.nodeName !== source.nodeName) {
    target.replaceWith(source);
    return source;
  }
  if (target.nodeType !== Node.ELEMENT_NODE) {
    if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue;
    return target;
  }
  for (const { name } of [...target.attributes]) if (!source.hasAttribute(name)) target.removeAttribute(name);
  for (const { name, value } of [...source.attributes]) if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  const wanted = [...source.childNodes];
  const keyed = new Map();
  for (const child of target.children) if (child.dataset.id) keyed.set(child.dataset.id, child);
  const current = [...target.childNodes].filter((child) => !child.dataset?.id);
  let position = 0;
  wanted.forEach((child) => {
    const id = child.dataset?.id;
    let node;
    if (id) {
      node = keyed.get(id);
      keyed.delete(id);
      node = node ? morph(node, child) : child;
    } else {
      const old = current.shift();
      node = old ? morph(old, child) : child;
    }
    const at = target.childNodes[position];
    if (node !== at) target.insertBefore(node, at ?? null);
    position += 1;
  });
  while (target.childNodes.length > wanted.length) target.lastChild.remove();
  return target;
}

/** Show `node` in `slot`: morphed into what the slot shows, or in its place. */
export function show(slot, node) {
  if (slot.childNodes.length === 1) morph(slot.firstChild, node);
  else replace(slot, node);
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
