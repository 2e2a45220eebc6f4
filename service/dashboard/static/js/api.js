// The dashboard's only way to data: the public REST API with the operator's bearer token.
// The token lives in sessionStorage (this tab only, gone when it closes) and travels in the
// Authorization header, never in a URL.

const TOKEN_KEY = "edgeprune.token";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function loginUrl() {
  const here = location.pathname + location.search;
  return "/login?next=" + encodeURIComponent(here);
}

/** Send the browser to the login page unless a token is stored; true when one is. */
export function requireLogin() {
  if (getToken()) return true;
  location.replace(loginUrl());
  return false;
}

/** Only same-site paths are followed after login (an open redirect would leak nothing, but
 * it would let a link send an operator to a look-alike page). */
export function safeNext(value) {
  if (typeof value === "string" && value.startsWith("/") && !value.startsWith("//")) {
    return value;
  }
  return "/";
}

export function wireLogout() {
  const button = document.getElementById("logout");
  if (!button) return;
  button.addEventListener("click", () => {
    clearToken();
    location.assign("/login");
  });
}

/** An RFC 9457 problem (or a network failure) from the API. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /** Validation errors as [{loc: "body.target.reduction", msg}]. */
  get fieldErrors() {
    const errors = Array.isArray(this.problem.errors) ? this.problem.errors : [];
    return errors.map((e) => ({
      loc: Array.isArray(e.loc) ? e.loc.join(".") : String(e.loc ?? ""),
      msg: String(e.msg ?? ""),
    }));
  }
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return headers;
}

function onUnauthorized() {
  clearToken();
  location.replace(loginUrl());
}

async function problemOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    // Not JSON (a proxy's error page): fall through to a plain problem.
  }
  return { title: response.statusText || "Request failed", status: response.status };
}

/**
 * Call the API. Returns {status, data, headers}; throws ApiError for non-2xx answers.
 * `json` is sent as a JSON body, `form` as multipart/form-data.
 */
export async function request(path, { method = "GET", json, form, signal, redirectOn401 = true } = {}) {
  const headers = authHeaders({ Accept: "application/json, application/problem+json" });
  let body;
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal, cache: "no-store" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, { title: "The server is unreachable", detail: "The server is unreachable; retrying." });
  }
  if (response.status === 401 && redirectOn401) {
    onUnauthorized();
    throw new ApiError(401, await problemOf(response));
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const type = response.headers.get("Content-Type") || "";
  const data = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.text();
  return { status: response.status, data, headers: response.headers };
}

export async function getJson(path, options) {
  return (await request(path, options)).data;
}

/** Download an authenticated artifact: fetch with the bearer header, then save the blob. */
export async function download(path, filename) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401) {
    onUnauthorized();
    return;
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Parse Server-Sent Events from text chunks (the WHATWG event-stream format, without the
 * `retry` field). Returns {push(chunk) -> events[]}. Line ends may be \n, \r\n or \r, and a
 * chunk may end anywhere, even between \r and \n.
 */
export function sseParser() {
  let buffer = "";
  let data = [];
  let event = "";
  let id = null;
  return {
    push(chunk) {
      buffer += chunk;
      const events = [];
      // A trailing \r may be the first half of \r\n: keep it for the next chunk.
      let end = buffer.length;
      if (buffer.endsWith("\r")) end -= 1;
      const text = buffer.slice(0, end);
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(end); // the unfinished last line
      for (const line of lines) {
        if (line === "") {
          if (data.length > 0) events.push({ id, event: event || "message", data: data.join("\n") });
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue; // comment (keep-alive ping)
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id" && !value.includes("\0")) id = value;
      }
      return events;
    },
  };
}

/**
 * Follow an SSE endpoint with the bearer header (EventSource cannot send one). Reconnects
 * with Last-Event-ID after network errors (backing off up to 15 s); a stream the server ends
 * cleanly is over (the job events stream ends after the terminal state). `close()` stops it.
 */
export function followEvents(path, { onEvent, onStatus = () => {}, lastEventId = null }) {
  let last = lastEventId;
  let closed = false;
  let controller = null;

  async function once() {
    controller = new AbortController();
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (last !== null) headers.set("Last-Event-ID", String(last));
    const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) {
      onUnauthorized();
      closed = true;
      return;
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    onStatus("live");
    const parser = sseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const message of parser.push(value)) {
        if (message.id !== null) last = message.id;
        let payload;
        try {
          payload = JSON.parse(message.data);
        } catch {
          payload = { raw: message.data };
        }
        onEvent(message.event, payload, message.id);
        if (closed) return;
      }
    }
  }

  (async () => {
    let delay = 1000;
    while (!closed) {
      try {
        await once();
        if (!closed) onStatus("ended");
        return;
      } catch (err) {
        if (closed || (err && err.name === "AbortError")) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          onStatus("error", err);
          return;
        }
        onStatus("reconnecting", err);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 15_000);
      }
    }
  })();

  return {
    close() {
      closed = true;
      if (controller) controller.abort();
    },
  };
}
