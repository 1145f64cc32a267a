// The console: a runs list with an overview, a run page, and a form to start a run. Views are
// chosen by the URL's fragment (#/, #/runs/<id>, #/new), so the server serves one page.

import { ApiError, api, checkKey, clearKey, events, hasKey, onAuthRequired, setKey } from "./api.js";
import { TERMINAL, badge, formatDuration, formatTime, h, replace, show } from "./dom.js";
import { OutputView, fold, outputText } from "./output.js";
import { Timeline } from "./timeline.js";

const main = document.getElementById("main");
const keyBar = document.getElementById("key-state");
let view = null;

const STATUSES = ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"];
const WINDOWS = { "": "any time", 900: "last 15 min", 3600: "last hour", 86400: "last 24 h" };
const LIST_REFRESH_MS = 2000;
const META_REFRESH_MS = 2000;
// No byte for this long (the server sends a keep-alive every 15 s): the connection is dead.
const STALL_MS = 40000;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    // Back online: try again at once rather than at the end of the back-off.
    window.addEventListener("online", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

function errorBox(error) {
  return h("div.error", { role: "alert" }, error instanceof ApiError ? `${error.status}: ${error.message}` : String(error));
}

// -- the key ---------------------------------------------------------------------------------

function renderKeyState() {
  replace(
    keyBar,
    hasKey()
      ? h("button.link", { type: "button", onclick: () => { clearKey(); showKeyPrompt(); } }, "Forget key")
      : "",
  );
}

function showKeyPrompt(message) {
  view?.stop();
  view = null;
  const input = h("input#api-key", { type: "password", autocomplete: "off", required: true, placeholder: "API key", spellcheck: false });
  const note = h("p.error#key-error", { role: "alert", hidden: !message }, message || "");
  const form = h(
    "form.card.key-form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const key = input.value.trim();
        // The key leaves the DOM at once: it lives in sessionStorage only.
        input.value = "";
        if (!key) return;
        setKey(key);
        try {
          await checkKey();
        } catch (error) {
          // A refused key has already brought the prompt back, saying so (onAuthRequired).
          clearKey();
          if (!(error instanceof ApiError && error.status === 401)) {
            note.textContent = String(error);
            note.hidden = false;
          }
          return;
        }
        renderKeyState();
        route();
      },
    },
    h("h2", {}, "API key"),
    h("p", {}, "This server needs an API key. It is kept in this tab's session storage only."),
    input,
    h("button", { type: "submit" }, "Use key"),
    note,
  );
  replace(main, form);
  input.focus();
}

let prompting = false;
onAuthRequired(() => {
  if (prompting) return;
  prompting = true;
  const refused = hasKey();
  clearKey();
  renderKeyState();
  showKeyPrompt(refused ? "That key was refused." : undefined);
  prompting = false;
});

// -- the runs list and overview --------------------------------------------------------------

const listState = { status: "", window: "", cursors: [] };

function inputPreview(meta) {
  return meta?.input_preview ?? "";
}

function overviewPanel(overview) {
  const counts = overview.counts || {};
  const tiles = STATUSES.map((status) =>
    h(
      "button.tile",
      {
        type: "button",
        dataset: { status },
        title: `Show ${status.replace("_", " ")} runs`,
        onclick: () => { listState.status = listState.status === status ? "" : status; listState.cursors = []; route(); },
      },
      h("span.tile-count", {}, String(counts[status] || 0)),
      badge(status),
    ),
  );
  const ended = overview.throughput.ended;
  const peak = Math.max(1, ...ended);
  const bars = ended.map((n, i) => {
    const bar = h("span.bar", { title: `${n} ended in minute ${i - ended.length + 1}` });
    bar.style.height = `${Math.round((n / peak) * 100)}%`;
    return bar;
  });
  const recent = ended.slice(-5).reduce((a, b) => a + b, 0) / 5;
  const server = overview.server;
  return h(
    "section.overview",
    {},
    h("div.tiles", {}, tiles),
    h(
      "div.throughput",
      {},
      h("div.bars", { title: "runs ended per minute, last 15 minutes" }, bars),
      h("div.muted", {}, `${recent.toFixed(1)} runs/min ended (last 5 min)`),
    ),
    h(
      "div.muted.server-load",
      {},
      `This server: ${server.running} running of ${server.max_running}, ${server.queued} queued`,
      server.worker ? ` · replica ${server.worker}` : "",
      server.accepting ? "" : " · draining",
    ),
  );
}

function listView() {
  const stop = new AbortController();
  const overviewSlot = h("div");
  const tableSlot = h("div");
  const status = h(
    "select#status-filter",
    { onchange: () => { listState.status = status.value; listState.cursors = []; refresh(); } },
    h("option", { value: "" }, "every status"),
    STATUSES.map((s) => h("option", { value: s }, s.replace("_", " "))),
  );
  status.value = listState.status;
  const windowSelect = h(
    "select#time-filter",
    { onchange: () => { listState.window = windowSelect.value; listState.cursors = []; refresh(); } },
    Object.entries(WINDOWS).map(([value, label]) => h("option", { value }, label)),
  );
  windowSelect.value = listState.window;
  const newer = h("button", { type: "button", onclick: () => { listState.cursors.pop(); refresh(); } }, "← Newer");
  const older = h("button", { type: "button", onclick: () => { listState.cursors.push(older.dataset.after); refresh(); } }, "Older →");
  replace(
    main,
    overviewSlot,
    h("div.toolbar", {}, h("h2", {}, "Runs"), status, windowSelect, h("span.spacer"), newer, older),
    tableSlot,
  );

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const after = listState.cursors.at(-1);
      const query = new URLSearchParams({ limit: "20", order: "desc" });
      if (listState.status) query.set("status", listState.status);
      if (after) query.set("after", after);
      const [overview, page] = await Promise.all([
        api("/v1/console/overview", { signal: stop.signal }),
        api(`/v1/responses?${query}`, { signal: stop.signal }),
      ]);
      const since = listState.window ? Date.now() / 1000 - Number(listState.window) : 0;
      const rows = page.data.filter((r) => r.created_at >= since);
      const meta = {};
      if (rows.length) {
        const ids = rows.map((r) => r.id).join(",");
        for (const m of (await api(`/v1/console/runs?ids=${ids}`, { signal: stop.signal })).data) meta[m.id] = m;
      }
      if (stop.signal.aborted) return;
      // Morphed, not replaced: a click on a tile or a run must not be lost to a refresh.
      show(overviewSlot, overviewPanel(overview));
      show(tableSlot, runsTable(rows, meta));
      newer.disabled = listState.cursors.length === 0;
      older.disabled = !page.has_more || rows.length < page.data.length;
      older.dataset.after = page.last_id || "";
    } catch (error) {
      if (stop.signal.aborted || (error instanceof ApiError && error.status === 401)) return;
      replace(tableSlot, errorBox(error));
    }
    if (!stop.signal.aborted) timer = setTimeout(refresh, LIST_REFRESH_MS);
  }
  refresh();
  return { stop: () => { stop.abort(); clearTimeout(timer); } };
}

function runsTable(rows, meta) {
  if (!rows.length) return h("p.muted.empty", {}, "No runs here yet. ", h("a", { href: "#/new" }, "Start one"), ".");
  const replicas = rows.some((r) => meta[r.id]?.worker);
  const now = Date.now() / 1000;
  return h(
    "table.runs",
    {},
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, "status"), h("th", {}, "run"), h("th", {}, "model"), h("th", {}, "started"),
        h("th", {}, "duration"), h("th.num", {}, "events"), replicas ? h("th", {}, "replica") : null, h("th", {}, "input")),
    ),
    h(
      "tbody",
      {},
      rows.map((r) => {
        const m = meta[r.id] || {};
        const end = m.ended_at ?? (TERMINAL.has(r.status) ? r.completed_at : null) ?? now;
        return h(
          "tr",
          { dataset: { id: r.id, status: r.status } },
          h("td", {}, badge(r.status)),
          h("td", {}, h("a.run-link", { href: `#/runs/${r.id}` }, r.id)),
          h("td", {}, r.model || ""),
          h("td", {}, formatTime(r.created_at)),
          h("td", {}, formatDuration(end - r.created_at)),
          h("td.num", {}, m.events ?? ""),
          replicas ? h("td.replica", {}, m.worker || "") : null,
          h("td.input", {}, inputPreview(m)),
        );
      }),
    ),
  );
}

// -- a run -----------------------------------------------------------------------------------

function runView(id) {
  const stop = new AbortController();
  const output = [];
  const outputView = new OutputView();
  let response = null;
  let meta = null;
  let last = -1;
  let reconnects = 0;
  let ended = false;
  let streamedOutput = false;
  const jsonPane = h("pre.json.event-json#event-json", {}, "Select an event to see its JSON.");
  const timeline = new Timeline((event) => { jsonPane.textContent = JSON.stringify(event, null, 2); });
  const header = h("div.run-header");
  const info = h("dl.info");
  const errorSlot = h("div"); // what went wrong with the page's own requests
  const runErrorSlot = h("div"); // the run's error, once it failed
  const inputSlot = h("div.input-items");
  const questionSlot = h("div");
  const successorSlot = h("div");
  let steersSent = 0;
  const steerInput = h("textarea#steer-input", { rows: 2, required: true, placeholder: "more input for the run, e.g. “also cover the costs”" });
  const steerNote = h("div.muted#steer-note");
  const steerSubmit = h("button#steer-submit", { type: "submit" }, "Steer");
  const steerForm = h(
    "form.card.steer#steer",
    {
      hidden: true,
      onsubmit: async (e) => {
        e.preventDefault();
        const text = steerInput.value;
        if (!text.trim()) return;
        steerSubmit.disabled = true;
        try {
          const accepted = await api(`/v1/console/runs/${encodeURIComponent(id)}/steer`, { method: "POST", body: { input: text } });
          steersSent += 1;
          steerInput.value = "";
          replace(steerNote, `Accepted (${accepted.id}): at its next output boundary this run ends and a new response continues it with your input; this page then opens it.`);
        } catch (error) {
          replace(steerNote, errorBox(error));
        } finally {
          steerSubmit.disabled = meta?.steerable === false;
        }
      },
    },
    h("h3", {}, "Steer this run"),
    h("label", {}, "More input while it runs", steerInput),
    h("div", {}, steerSubmit),
    steerNote,
  );
  const plain = h("pre.plain#output-text", { hidden: true });
  const connection = h("span.connection#connection", {}, "");
  const eventCount = h("span#event-count", {}, "0");
  const snippets = h("div.snippets");
  const plainToggle = h("input#plain-toggle", {
    type: "checkbox",
    onchange: () => { plain.hidden = !plainToggle.checked; outputView.element.hidden = plainToggle.checked; },
  });

  replace(
    main,
    header,
    runErrorSlot,
    errorSlot,
    successorSlot,
    questionSlot,
    steerForm,
    h("section.card", {}, h("h3", {}, "Details"), info),
    h("section.card", {}, h("h3", {}, "Input"), inputSlot),
    h(
      "section.card",
      {},
      h("div.section-title", {}, h("h3", {}, "Output"), h("label.toggle", {}, plainToggle, " output_text")),
      outputView.element,
      plain,
    ),
    h(
      "section.card.events-card",
      {},
      h("div.section-title", {}, h("h3", {}, "Events"), h("span.muted", {}, eventCount, " events · ", connection)),
      h("div.events", {}, timeline.element, jsonPane),
    ),
    h("section.card", {}, h("h3", {}, "Follow it elsewhere"), snippets),
  );

  function token() { return `${id}:${last}`; }

  async function act(label, fn) {
    try {
      await fn();
    } catch (error) {
      replace(errorSlot, errorBox(error));
    }
  }

  // The header, the details and the snippets are drawn again only when what they show changed:
  // a node replaced at every frame of a busy run would lose a person's click (a click needs
  // the press and the release on one element) and any text they were selecting.
  let headerShown = "";
  function renderHeader() {
    if (!response) return;
    const live = !TERMINAL.has(response.status);
    const shown = `${response.status} ${response.background}`;
    if (shown === headerShown) return;
    headerShown = shown;
    const copied = h("span.muted.copied", {}, "");
    replace(
      header,
      h("a", { href: "#/" }, "← Runs"),
      h("h2", {}, response.id),
      h("span#run-status", {}, badge(response.status)),
      h("span.spacer"),
      response.background && live
        ? h("button#cancel", {
            type: "button",
            onclick: () => act("cancel", async () => {
              if (!confirm("Cancel this run?")) return;
              response = await api(`/v1/responses/${id}/cancel`, { method: "POST" });
              renderHeader();
              renderInfo();
            }),
          }, "Cancel")
        : null,
      h("button#delete", {
        type: "button",
        onclick: () => act("delete", async () => {
          if (!confirm("Delete this run and its events?")) return;
          await api(`/v1/responses/${id}`, { method: "DELETE" });
          location.hash = "#/";
        }),
      }, "Delete"),
      response.background
        ? h("button#copy-token", {
            type: "button",
            title: "id:N — resume after the last event shown here",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(token());
                copied.textContent = "copied";
              } catch {
                copied.textContent = token();
              }
            },
          }, "Copy continuation token")
        : null,
      copied,
    );
  }

  // A run that ended waiting for input (an agent's request.ask, or any function call it left to
  // the client): its pending calls can be answered here; the answer continues the run in a new
  // response chained to this one, which the page then opens.
  let questionsShown = "";
  function renderQuestions() {
    const pending = response?.status === "completed" ? pendingCalls(response.output || []) : [];
    const shown = pending.map((call) => call.call_id).join(" ");
    if (shown === questionsShown) return;
    questionsShown = shown;
    replace(questionSlot, pending.map((call) => questionCard(call)));
  }

  function questionCard(call) {
    const answer = h("textarea#answer", { rows: 3, required: true, placeholder: "your answer" });
    const note = h("div");
    const submit = h("button#answer-submit", { type: "submit" }, "Answer and continue");
    return h(
      "form.card.question",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          submit.disabled = true;
          const body = {
            model: response.model,
            previous_response_id: id,
            input: [{ type: "function_call_output", call_id: call.call_id, output: answer.value }],
            background: true,
          };
          try {
            const created = await api("/v1/responses", { method: "POST", body });
            location.hash = `#/runs/${created.id}`;
          } catch (error) {
            replace(note, errorBox(error));
            submit.disabled = false;
          }
        },
      },
      h("h3", {}, "Waiting for an answer: ", h("code", {}, String(call.name ?? ""))),
      h("pre.json", {}, prettyArguments(call.arguments)),
      h("label", {}, "Answer", answer),
      h("div", {}, submit),
      note,
    );
  }

  // A steered run (here or over a WebSocket) ends and a successor response carries the input
  // on: once it exists, link to it, and open it when the input was sent from this page.
  let successorSearch = false;
  function renderSteering() {
    const live = !TERMINAL.has(response.status);
    steerForm.hidden = !live;
    if (live && meta?.steerable === false) {
      // Only the replica executing a run takes its steering input.
      steerSubmit.disabled = steerInput.disabled = true;
      const note = `This run executes on another replica${meta.worker ? ` (${meta.worker})` : ""}, which alone can take steering input for it.`;
      if (steerNote.textContent !== note) replace(steerNote, note);
    } else if (live && steerInput.disabled) {
      steerSubmit.disabled = steerInput.disabled = false;
      replace(steerNote);
    }
    if (live || successorSearch) return;
    const steered = response.incomplete_details?.reason === "steered";
    if (!steered && !steersSent) return;
    successorSearch = true;
    if (response.status === "failed" || response.status === "cancelled") {
      replace(successorSlot, h("div.error", { role: "alert" }, `This run ended ${response.status}: its steering input was not applied.`));
      return;
    }
    if (!steered && pendingCalls(response.output || []).length) {
      // Ended waiting for input: the steering input goes first in the answer's response.
      replace(successorSlot, h("p.card.muted", {}, "Your steering input waits for the answer below: it goes first in the response that continues this one."));
      return;
    }
    findSuccessor();
  }

  async function findSuccessor() {
    replace(successorSlot, h("p.card.muted", {}, "Steered: waiting for the response that continues it…"));
    for (let tries = 0; tries < 60 && !stop.signal.aborted; tries++) {
      try {
        const page = await api("/v1/responses?limit=100&order=desc", { signal: stop.signal });
        const next = page.data.find((r) => r.previous_response_id === id && r.created_at >= response.created_at);
        if (next) {
          if (steersSent) {
            location.hash = `#/runs/${next.id}`;
            return;
          }
          replace(successorSlot, h("p.card.successor", {}, "Steered: continued in ", h("a#successor", { href: `#/runs/${next.id}` }, next.id)));
          return;
        }
      } catch (error) {
        if (stop.signal.aborted) return;
      }
      await sleep(500, stop.signal);
    }
    if (!stop.signal.aborted) replace(successorSlot, h("p.card.muted", {}, "Steered: the response that continues it is not among your 100 newest."));
  }

  let infoShown = "", runErrorShown = "", snippetsShown = null;
  function renderInfo() {
    if (!response) return;
    renderQuestions();
    renderSteering();
    const endAt = meta?.ended_at ?? response.completed_at ?? null;
    const rows = [
      ["model", response.model],
      ["status", response.status],
      ["created", formatTime(response.created_at)],
      ["ended", endAt ? formatTime(endAt) : "—"],
      ["duration", formatDuration((endAt ?? Date.now() / 1000) - response.created_at)],
      ["background", response.background ? "yes" : "no"],
      ["attempt", meta?.attempt ?? ""],
      ["replica", meta?.worker ?? "—"],
      // The run's own resumes (after a crash or a deploy, from its journal), and the page's
      // reconnections of its stream: two different things.
      ["resumes", String(response.metadata?.outlast_resumes ?? "0")],
      ["reconnects", String(reconnects)],
      ["previous", response.previous_response_id ?? "—"],
    ];
    const infoKey = JSON.stringify(rows);
    if (infoKey !== infoShown) {
      infoShown = infoKey;
      const previous = response.previous_response_id;
      replace(info, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", { dataset: { field: k } },
        k === "previous" && previous ? h("a", { href: `#/runs/${previous}` }, previous) : String(v ?? "")))));
    }
    const error = response.error ? `${response.error.code || "error"}: ${response.error.message || ""}` : "";
    if (error !== runErrorShown) {
      runErrorShown = error;
      replace(runErrorSlot, error ? h("div.error.run-error", { role: "alert" }, error) : "");
    }
    if (last === snippetsShown) return;
    snippetsShown = last;
    const origin = location.origin;
    replace(
      snippets,
      h("pre.snippet", {}, `outlast tail ${id} --from ${last + 1} --url ${origin}`),
      h("pre.snippet", {}, [
        "from outlast.client import OutlastClient",
        "",
        `client = OutlastClient(base_url="${origin}/v1", api_key="…")`,
        `for event in client.resume("${token()}"):`,
        "    print(event.type)",
      ].join("\n")),
    );
  }

  let frame = false;
  const pendingEvents = [];
  // A message drawn again as it grows costs what the part of it after its last blank line
  // costs (GrowingMarkdown), which one long paragraph can make large: the output is then drawn
  // less often, skipping frames after each render in proportion to its cost, so that drawing it
  // takes at most about a fifth of the page's time, however long the text. (Frames, not clock
  // time: a clock that stands still must not stop the drawing.)
  const FRAME_MS = 16, MAX_SKIPPED_FRAMES = 30;
  let framesToSkip = 0, outputStale = false;
  function schedule() {
    if (frame) return;
    frame = true;
    // Rendering is batched per animation frame: a run at 1,000 events/s costs 60 renders/s.
    requestAnimationFrame(() => {
      frame = false;
      timeline.push(pendingEvents.splice(0));
      eventCount.textContent = String(timeline.events.length);
      if (streamedOutput && (outputStale || outputView.dirty.size || outputView.all)) {
        if (framesToSkip === 0) {
          const started = performance.now();
          // Follow the newest output while the reader is at the bottom of it.
          const box = outputView.element;
          const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
          outputView.render(output);
          if (atEnd) box.scrollTop = box.scrollHeight;
          plain.textContent = outputText(output);
          const cost = performance.now() - started;
          framesToSkip = Math.min(MAX_SKIPPED_FRAMES, Math.floor((cost * 4) / FRAME_MS));
          outputStale = false;
        } else {
          framesToSkip -= 1;
          outputStale = true;
          schedule(); // drawn on a later frame, even if no event comes meanwhile
        }
      }
      renderHeader();
      renderInfo();
    });
  }

  function apply(event) {
    pendingEvents.push(event);
    if (event.response && streamedOutput) {
      const { output: _ignored, ...fields } = event.response;
      response = { ...response, ...fields, output: event.response.output ?? response?.output ?? [] };
    }
    if (event.response && TERMINAL.has(event.response.status)) ended = true;
    if (streamedOutput) outputView.changed(fold(output, event));
    schedule();
  }

  // While a run is live, its details beyond the events (the replica that claimed it, its
  // attempt after a crash, whether this replica can steer it) are read again now and then.
  async function refreshMeta() {
    try {
      meta = (await api(`/v1/console/runs?ids=${id}`, { signal: stop.signal })).data[0] ?? meta;
      schedule();
    } catch { /* the next refresh, or the run's end, tries again */ }
  }

  async function follow() {
    const metaTimer = setInterval(() => { if (!ended) refreshMeta(); }, META_REFRESH_MS);
    stop.signal.addEventListener("abort", () => clearInterval(metaTimer), { once: true });
    try {
      await followEvents();
    } finally {
      clearInterval(metaTimer);
    }
  }

  async function followEvents() {
    let backoff = 500;
    while (!stop.signal.aborted && !ended) {
      const attempt = new AbortController();
      const abort = () => attempt.abort();
      let lastByte = Date.now();
      // Back from sleep (a laptop lid): a stream silent for a while is likely dead; do not
      // wait for the watchdog to find out.
      const woke = () => {
        if (document.visibilityState === "visible" && Date.now() - lastByte > STALL_MS / 2) abort();
      };
      stop.signal.addEventListener("abort", abort, { once: true });
      document.addEventListener("visibilitychange", woke);
      let watchdog = setTimeout(abort, STALL_MS);
      try {
        connection.textContent = reconnects ? `live (reconnected ${reconnects}×)` : "live";
        const alive = () => {
          lastByte = Date.now();
          clearTimeout(watchdog);
          watchdog = setTimeout(abort, STALL_MS);
        };
        for await (const event of events(id, last, attempt.signal, alive)) {
          // Each event exactly once, across any number of reconnections.
          if (event.sequence_number <= last) continue;
          last = event.sequence_number;
          apply(event);
          backoff = 500;
        }
      } catch (error) {
        if (stop.signal.aborted) return;
        if (error instanceof ApiError && error.status !== 503 && error.status !== 502) {
          connection.textContent = "stopped";
          if (error.status !== 401) replace(errorSlot, errorBox(error));
          return;
        }
      } finally {
        clearTimeout(watchdog);
        stop.signal.removeEventListener("abort", abort);
        document.removeEventListener("visibilitychange", woke);
      }
      if (ended || stop.signal.aborted) break;
      reconnects += 1;
      connection.textContent = `reconnecting… (after event ${last})`;
      await sleep(backoff, stop.signal);
      backoff = Math.min(backoff * 2, 8000);
    }
    if (!stop.signal.aborted) {
      connection.textContent = "ended";
      try {
        meta = (await api(`/v1/console/runs?ids=${id}`)).data[0] ?? meta;
      } catch { /* the page shows what it has */ }
      schedule();
    }
  }

  async function poll() {
    // A foreground response cannot be streamed by another client: show its state until it ends.
    while (!stop.signal.aborted) {
      try {
        response = await api(`/v1/responses/${id}`, { signal: stop.signal });
        meta = (await api(`/v1/console/runs?ids=${id}`, { signal: stop.signal })).data[0] ?? meta;
        output.length = 0;
        output.push(...(response.output || []));
        outputView.changed("all");
        outputView.render(output);
        plain.textContent = outputText(output);
        eventCount.textContent = String(meta?.events ?? "");
        connection.textContent = TERMINAL.has(response.status) ? "ended" : "polling (not a background run)";
        renderHeader();
        renderInfo();
        if (TERMINAL.has(response.status)) return;
      } catch (error) {
        if (stop.signal.aborted) return;
        replace(errorSlot, errorBox(error));
      }
      await sleep(1000, stop.signal);
    }
  }

  (async () => {
    try {
      const [r, m, items] = await Promise.all([
        api(`/v1/responses/${id}`, { signal: stop.signal }),
        api(`/v1/console/runs?ids=${id}`, { signal: stop.signal }),
        api(`/v1/responses/${id}/input_items?order=asc&limit=100`, { signal: stop.signal }),
      ]);
      response = r;
      meta = m.data[0] ?? null;
      renderInputs(inputSlot, items.data, r.instructions);
      if (TERMINAL.has(r.status)) {
        // A finished run: its stored output is complete, shown at once; the events only fill the
        // timeline (however many there are, without re-rendering the output).
        output.push(...(r.output || []));
        outputView.changed("all");
        outputView.render(output);
        plain.textContent = outputText(output);
      } else {
        streamedOutput = true;
      }
      renderHeader();
      renderInfo();
      if (r.background) await follow();
      else await poll();
    } catch (error) {
      if (stop.signal.aborted || (error instanceof ApiError && error.status === 401)) return;
      replace(main, h("a", { href: "#/" }, "← Runs"), errorBox(error));
    }
  })();
  return { stop: () => stop.abort() };
}

/** The function calls of an output that no function_call_output in it answers. */
function pendingCalls(output) {
  const answered = new Set(output.filter((item) => item.type === "function_call_output").map((item) => item.call_id));
  return output.filter((item) => item.type === "function_call" && !answered.has(item.call_id));
}

function prettyArguments(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text ?? "");
  }
}

function renderInputs(slot, items, instructions) {
  const nodes = [];
  if (instructions) nodes.push(h("div.instructions", {}, h("div.item-title", {}, "Instructions"), h("div.text", {}, String(instructions))));
  for (const item of items) {
    if (item.type === "message" || item.role) {
      const content = typeof item.content === "string"
        ? item.content
        : (item.content || []).map((part) => part.text ?? JSON.stringify(part)).join("\n");
      nodes.push(h("div.input-item", {}, h("div.item-title", {}, item.role || "input"), h("div.text", {}, content)));
    } else {
      nodes.push(h("div.input-item", {}, h("div.item-title", {}, item.type || "item"), h("pre.json", {}, JSON.stringify(item, null, 2))));
    }
  }
  replace(slot, nodes.length ? nodes : h("p.muted", {}, "No input."));
}

// -- starting a run --------------------------------------------------------------------------

function newView() {
  const model = h("input#new-model", { value: localStorage.getItem("outlast.model") || "demo", required: true });
  const input = h("textarea#new-input", { rows: 5, required: true, placeholder: "steps=5 delay=1 the history of SSE" });
  const instructions = h("textarea#new-instructions", { rows: 2, placeholder: "optional" });
  const background = h("input#new-background", { type: "checkbox", checked: true });
  const note = h("div");
  const submit = h("button#new-submit", { type: "submit" }, "Start");
  replace(
    main,
    h(
      "form.card.new-run",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          submit.disabled = true;
          localStorage.setItem("outlast.model", model.value);
          const body = { model: model.value, input: input.value, background: background.checked };
          if (instructions.value.trim()) body.instructions = instructions.value;
          if (!background.checked) replace(note, h("p.muted", {}, "A foreground run answers when it has finished…"));
          try {
            const created = await api("/v1/responses", { method: "POST", body });
            location.hash = `#/runs/${created.id}`;
          } catch (error) {
            replace(note, errorBox(error));
            submit.disabled = false;
          }
        },
      },
      h("h2", {}, "Start a run"),
      h("label", {}, "Model", model),
      h("label", {}, "Input", input),
      h("label", {}, "Instructions", instructions),
      h("label.toggle", {}, background, " background (runs on after this page closes; can be streamed, resumed and cancelled)"),
      h("div", {}, submit),
      note,
    ),
  );
  input.focus();
}

// -- routing ---------------------------------------------------------------------------------

function route() {
  view?.stop();
  view = null;
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.getAttribute("href") === hash);
  const run = /^#\/runs\/([A-Za-z0-9_.-]{1,200})$/.exec(hash);
  if (run) view = runView(run[1]);
  else if (hash === "#/new") newView();
  else view = listView();
}

window.addEventListener("hashchange", route);

(async () => {
  renderKeyState();
  try {
    await checkKey();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // the prompt is showing
    replace(main, errorBox(error));
    return;
  }
  route();
})();
