// A response's output as a person reads it, rebuilt from its events (the same fold as the
// server's protocol/fold.py): text as Markdown, tool calls with their arguments and outputs,
// reasoning summaries, and any other item (a pending question, say) as its JSON.

import { h, replace } from "./dom.js";
import { GrowingMarkdown, render as markdown } from "./markdown.js";

/** Apply one event to `output` (an array of items), in place. */
export function fold(output, event) {
  const kind = event.type;
  const item = output[event.output_index];
  switch (kind) {
    case "response.output_item.added":
      output.length = event.output_index;
      output.push(structuredClone(event.item));
      return event.output_index;
    case "response.output_item.done":
      output[event.output_index] = structuredClone(event.item);
      return event.output_index;
    case "response.content_part.added":
      item.content = item.content || [];
      item.content[event.content_index] = structuredClone(event.part);
      return event.output_index;
    case "response.output_text.delta": {
      const part = item.content[event.content_index];
      part.text = (part.text || "") + event.delta;
      return event.output_index;
    }
    case "response.function_call_arguments.delta":
      item.arguments = (item.arguments || "") + event.delta;
      return event.output_index;
    case "response.reasoning_summary_part.added":
      item.summary = item.summary || [];
      if (item.summary.length <= event.summary_index) item.summary.push(structuredClone(event.part));
      return event.output_index;
    case "response.reasoning_summary_text.delta": {
      const part = item.summary[event.summary_index];
      part.text = (part.text || "") + event.delta;
      return event.output_index;
    }
    default:
      if (event.response && kind.startsWith("response.")) {
        output.length = 0;
        for (const each of event.response.output || []) output.push(structuredClone(each));
        return "all";
      }
      return null;
  }
}

/** The text of every output_text part of every message, joined: the API's `output_text`. */
export function outputText(output) {
  let text = "";
  for (const item of output) {
    if (item.type !== "message") continue;
    for (const part of item.content || []) if (part.type === "output_text") text += part.text || "";
  }
  return text;
}

// JSON on one line when it is short, indented when it is not; other text as it is.
function pretty(value) {
  let parsed = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      return value;
    }
  }
  const line = JSON.stringify(parsed);
  return line.length <= 100 ? line : JSON.stringify(parsed, null, 2);
}

// A message's node, drawn again in place: its text parts keep their GrowingMarkdown, so a
// message that streams costs each frame what it gained, not all of its text again.
function renderMessage(item, node) {
  if (!node?.classList.contains("message")) {
    node = h("div.item.message");
    node._texts = [];
  }
  node.dataset.status = item.status || "";
  const parts = item.content || [];
  parts.forEach((part, i) => {
    const current = node.children[i];
    if (part.type === "output_text") {
      const text = node._texts[i] || (node._texts[i] = new GrowingMarkdown());
      text.render(part.text || "");
      if (current !== text.root) current ? current.replaceWith(text.root) : node.append(text.root);
    } else {
      node._texts[i] = undefined;
      const pre = h("pre.json", {}, JSON.stringify(part, null, 2));
      current ? current.replaceWith(pre) : node.append(pre);
    }
  });
  while (node.children.length > parts.length) node.lastElementChild.remove();
  node._texts.length = parts.length;
  return node;
}

/** One output item's node; `previous`, the node drawn for it before, may be reused. */
export function renderItem(item, previous = null) {
  switch (item.type) {
    case "message":
      return renderMessage(item, previous);
    case "reasoning":
      return h(
        "details.item.reasoning",
        { open: true },
        h("summary", {}, "Reasoning"),
        (item.summary || []).map((part) => markdown(part.text || "")),
      );
    case "function_call":
      return h(
        "div.item.tool-call",
        {},
        h("div.item-title", {}, "Tool call ", h("code", {}, item.name || ""), item.status ? ` · ${item.status}` : ""),
        h("pre.json", {}, pretty(item.arguments || "")),
      );
    case "function_call_output":
      return h(
        "div.item.tool-output",
        {},
        h("div.item-title", {}, "Tool output ", h("code", {}, item.call_id || "")),
        h("pre.json", {}, pretty(item.output ?? "")),
      );
    default:
      return h(
        "div.item.other",
        {},
        h("div.item-title", {}, item.type || "item"),
        h("pre.json", {}, JSON.stringify(item, null, 2)),
      );
  }
}

/** Keeps a container in step with an output array, re-rendering only the items that changed. */
export class OutputView {
  constructor() {
    this.element = h("div.output");
    this.nodes = [];
    this.dirty = new Set();
    this.all = false;
  }

  changed(what) {
    if (what === "all") this.all = true;
    else if (what !== null && what !== undefined) this.dirty.add(what);
  }

  render(output) {
    if (this.all) {
      replace(this.element);
      this.nodes = [];
      this.all = false;
      this.dirty = new Set(output.keys());
    }
    while (this.nodes.length > output.length) this.nodes.pop().remove();
    for (const index of [...this.dirty].sort((a, b) => a - b)) {
      if (index >= output.length) continue;
      const previous = this.nodes[index];
      const node = renderItem(output[index], previous);
      if (!previous) this.element.append(node);
      else if (node !== previous) previous.replaceWith(node);
      this.nodes[index] = node;
    }
    this.dirty.clear();
    if (!output.length) replace(this.element, h("p.muted", {}, "No output yet."));
    else if (this.element.firstChild?.classList?.contains("muted")) this.element.firstChild.remove();
  }
}
