// The server's API, as the page's user: the key they typed, kept in sessionStorage (this tab
// only, never a URL or a cookie), sent as "Authorization: Bearer". Without keys configured on
// the server, requests go without one and no one is asked.

const KEY = "outlast.apiKey";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const listeners = new Set();
/** Called with no argument whenever the server refuses the key (or asks for one). */
export function onAuthRequired(fn) { listeners.add(fn); }

export function hasKey() { return sessionStorage.getItem(KEY) !== null; }
export function setKey(key) { sessionStorage.setItem(KEY, key); }
export function clearKey() { sessionStorage.removeItem(KEY); }

function headers(extra) {
  const result = { ...extra };
  const key = sessionStorage.getItem(KEY);
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

async function failure(response) {
  let body = null, message = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch { /* not JSON */ }
  if (response.status === 401) for (const fn of listeners) fn();
  return new ApiError(response.status, message, body);
}

/** A JSON request; throws ApiError for any answer but 2xx. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** The key works (or none is needed): one cheap keyed request. */
export async function checkKey() {
  await api("/v1/responses?limit=1");
}

/**
 * The events of a background response after `after` (-1: from the first), as parsed objects,
 * read with fetch (EventSource cannot send an Authorization header). Ends when the server ends
 * the stream; throws on any network error, so the caller resumes from the last one it saw.
 * `onBytes` is called for every chunk received, keep-alive comments included.
 */
export async function* events(id, after, signal, onBytes = () => {}) {
  const query = after >= 0 ? `&starting_after=${after}` : "";
  const response = await fetch(`/v1/responses/${encodeURIComponent(id)}?stream=true${query}`, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onBytes(); // keep-alives count: the connection is alive even when the run is quiet
    buffer += decoder.decode(value, { stream: true });
    let end;
    // Frames end with a blank line; a partial frame stays in the buffer for the next chunk.
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("data:")) data += line.slice(line[5] === " " ? 6 : 5);
      }
      if (data && data !== "[DONE]") yield JSON.parse(data); // [DONE]: the end, not an event
    }
  }
}
