// A small Markdown renderer for untrusted text. It builds DOM nodes and sets only textContent and
// a checked href: raw HTML in the source stays text, and a link is a link only when its URL is
// http:, https: or mailto: (never javascript:, data: or a relative path).
//
// Blocks: headings, paragraphs, fenced code, block quotes, lists, rules. Inline: code, bold,
// italic, links, bare http(s) URLs.

import { h } from "./dom.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The URL if it is absolute and of a safe protocol, else null. */
export function safeUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function link(text, href) {
  const url = safeUrl(href);
  if (url === null) return document.createTextNode(text === href ? text : `${text} (${href})`);
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, text);
}

const INLINE = new RegExp(
  [
    "(`+)([^`][\\s\\S]*?)\\1", // 1, 2: code
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*", // 3: bold
    "__(?=\\S)([\\s\\S]*?\\S)__", // 4: bold
    "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*", // 5: italic
    "(?<![A-Za-z0-9])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![A-Za-z0-9])", // 6: italic
    "\\[([^\\]\\n]*)\\]\\(([^()\\s]*(?:\\([^()\\s]*\\)[^()\\s]*)*)\\)", // 7, 8: link
    "(https?://[^\\s<>\"'`]*[^\\s<>\"'`.,;:!?)\\]])", // 9: bare URL
  ].join("|"),
  "g",
);

/** Inline Markdown of `text` as nodes appended to `parent`. */
export function inline(parent, text, depth = 0) {
  let last = 0;
  // matchAll iterates over a copy of the expression: the nested calls cannot move its position.
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    last = m.index + m[0].length;
    const nested = (tag, inner) => {
      const el = h(tag);
      if (depth < 4) inline(el, inner, depth + 1);
      else el.textContent = inner;
      parent.append(el);
    };
    if (m[2] !== undefined) parent.append(h("code", {}, m[2].trim() || m[2]));
    else if (m[3] !== undefined) nested("strong", m[3]);
    else if (m[4] !== undefined) nested("strong", m[4]);
    else if (m[5] !== undefined) nested("em", m[5]);
    else if (m[6] !== undefined) nested("em", m[6]);
    else if (m[7] !== undefined) parent.append(link(m[7], m[8]));
    else if (m[9] !== undefined) parent.append(link(m[9], m[9]));
  }
  if (last < text.length) parent.append(text.slice(last));
  return parent;
}

const FENCE = /^ {0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const BULLET = /^(\s*)([-*+])\s+(.*)$/;
const NUMBERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;

const lines = (source) => source.replace(/\r\n?/g, "\n").split("\n");

/** The Markdown `source` rendered into a new <div class="md">. */
export function render(source) {
  const root = h("div.md");
  blocks(root, lines(source), 0);
  return root;
}

/**
 * The Markdown of a text that grows at its end (a message as it streams), kept rendered in
 * `root`: each render parses again only from the last blank line between top-level blocks, and
 * keeps the nodes drawn for what precedes it. A blank line there leaves the parser with nothing
 * open, so what follows parses the same whether or not the text before it is parsed again: the
 * result is always exactly `render(source)`, at a cost that follows the new text, not all of it.
 */
export class GrowingMarkdown {
  constructor() {
    this.root = h("div.md");
    this.source = null;
    this.restart = { line: 0, children: 0 }; // where the next render may begin parsing
  }

  render(source) {
    if (source === this.source) return this.root;
    const all = lines(source);
    let from = this.restart;
    // Only an extension of the text already drawn keeps anything of it.
    if (this.source === null || !source.startsWith(this.source)) from = { line: 0, children: 0 };
    while (this.root.childNodes.length > from.children) this.root.lastChild.remove();
    let restart = from;
    blocks(this.root, all, 0, from.line, (blank, children) => {
      // The last line may still grow (into more than a blank): never restart after it.
      if (blank < all.length - 1) restart = { line: blank + 1, children };
    });
    this.source = source;
    this.restart = restart;
    return this.root;
  }
}

// `onBlank(index, children)`: at a top-level blank line, once everything before it is drawn.
function blocks(parent, lines, depth, start = 0, onBlank = null) {
  let i = start;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) {
      const p = h("p");
      paragraph.forEach((line, n) => {
        if (n) p.append(h("br"));
        inline(p, line);
      });
      parent.append(p);
      paragraph = [];
    }
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = FENCE.exec(line))) {
      flush();
      const close = m[1];
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(close); i++) body.push(lines[i]);
      i++;
      const code = h("code", {}, body.join("\n"));
      if (m[2]) code.dataset.language = m[2];
      parent.append(h("pre", {}, code));
      continue;
    }
    if (!line.trim()) {
      flush();
      onBlank?.(i, parent.childNodes.length);
      i++;
      continue;
    }
    if ((m = HEADING.exec(line))) {
      flush();
      parent.append(inline(h(`h${Math.min(m[1].length + 2, 6)}`), m[2]));
      i++;
      continue;
    }
    if (RULE.test(line)) {
      flush();
      parent.append(h("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line) && depth < 4) {
      flush();
      const quoted = [];
      for (; i < lines.length && (m = QUOTE.exec(lines[i])); i++) quoted.push(m[1]);
      const quote = h("blockquote");
      blocks(quote, quoted, depth + 1);
      parent.append(quote);
      continue;
    }
    const bullet = BULLET.exec(line), numbered = NUMBERED.exec(line);
    if ((bullet || numbered) && depth < 4) {
      flush();
      const ordered = !bullet;
      const list = h(ordered ? "ol" : "ul");
      if (ordered && numbered[2] !== "1") list.start = Number(numbered[2]);
      const pattern = ordered ? NUMBERED : BULLET;
      const indent = (bullet || numbered)[1].length;
      let item = null;
      for (; i < lines.length; i++) {
        const current = lines[i];
        const start = pattern.exec(current);
        if (start && start[1].length <= indent + 1) {
          item = [start[3]];
          list.append(h("li"));
          list.lastChild._lines = item;
        } else if (item && current.trim() && /^\s/.test(current)) {
          item.push(current.replace(/^\s{1,4}/, ""));
        } else break;
      }
      for (const li of list.children) {
        blocks(li, li._lines, depth + 1);
        delete li._lines;
        // A one-paragraph item shows its text without the paragraph's margins.
        if (li.childNodes.length === 1 && li.firstChild.tagName === "P") li.replaceChildren(...li.firstChild.childNodes);
      }
      parent.append(list);
      continue;
    }
    paragraph.push(line);
    i++;
  }
  flush();
}
