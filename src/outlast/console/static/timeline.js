// The run's events as a windowed list: however many events the run has, only the rows in view
// (and a few either side) exist in the DOM, so a 20,000-event run costs as much as a short one.

import { h } from "./dom.js";

const ROW = 24; // px; every row has this height (app.css .timeline-row)
const OVERSCAN = 10;

function summary(event) {
  if (event.delta !== undefined) return JSON.stringify(event.delta);
  if (event.item) return `${event.item.type}${event.item.name ? ` ${event.item.name}` : ""}`;
  if (event.response) return event.response.status;
  if (event.part) return event.part.type;
  return "";
}

export class Timeline {
  /** onSelect(event) is called with the clicked event. */
  constructor(onSelect) {
    this.events = [];
    this.selected = -1;
    this.onSelect = onSelect;
    this.spacer = h("div.timeline-spacer");
    this.viewport = h("div.timeline", { tabIndex: 0, onscroll: () => this.scrolled() }, this.spacer);
    this.viewport.setAttribute("role", "list");
    this.viewport.addEventListener("click", (e) => {
      const row = e.target.closest(".timeline-row");
      if (row) this.select(Number(row.dataset.index));
    });
    this.viewport.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = Math.max(0, Math.min(this.events.length - 1, this.selected + (e.key === "ArrowDown" ? 1 : -1)));
        this.select(next);
        this.reveal(next);
      }
    });
    this.follow = true; // keep the newest event in view until the user scrolls up
    this.pending = false;
    this.rendered = new Map();
  }

  get element() { return this.viewport; }

  scrolled() {
    const v = this.viewport;
    this.follow = v.scrollTop + v.clientHeight >= v.scrollHeight - ROW * 2;
    this.schedule();
  }

  push(events) {
    for (const event of events) this.events.push(event);
    this.schedule();
  }

  select(index) {
    this.selected = index;
    for (const [i, row] of this.rendered) row.classList.toggle("selected", i === index);
    this.onSelect(this.events[index]);
  }

  reveal(index) {
    const v = this.viewport, top = index * ROW;
    if (top < v.scrollTop) v.scrollTop = top;
    else if (top + ROW > v.scrollTop + v.clientHeight) v.scrollTop = top + ROW - v.clientHeight;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const v = this.viewport, n = this.events.length;
    this.spacer.style.height = `${n * ROW}px`;
    if (this.follow) v.scrollTop = v.scrollHeight;
    const first = Math.max(0, Math.floor(v.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(n, Math.ceil((v.scrollTop + (v.clientHeight || 400)) / ROW) + OVERSCAN);
    for (const [i, row] of this.rendered) {
      if (i < first || i >= last) {
        row.remove();
        this.rendered.delete(i);
      }
    }
    for (let i = first; i < last; i++) {
      if (this.rendered.has(i)) continue;
      const event = this.events[i];
      const row = h(
        "div.timeline-row",
        { dataset: { index: String(i) } },
        h("span.seq", {}, String(event.sequence_number)),
        h("span.type", {}, event.type),
        h("span.summary", {}, summary(event)),
      );
      row.setAttribute("role", "listitem");
      if (i === this.selected) row.classList.add("selected");
      row.style.transform = `translateY(${i * ROW}px)`;
      this.spacer.append(row);
      this.rendered.set(i, row);
    }
  }
}
