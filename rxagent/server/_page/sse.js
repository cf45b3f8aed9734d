// Server-sent events over fetch, and a run's stream that survives dropped connections.
//
// EventSource cannot POST a run, nor send Last-Event-ID on its first request, so the page reads
// the response body itself. A run is streamed resumable: its events carry the ids 1, 2, 3...,
// and after a drop the page joins the run again with the id of the last event it *dispatched*
// (an event whose frame was cut before its blank line was never dispatched, so it comes again,
// and nothing dispatched comes twice).

/** Splits a stream of text into server-sent events, as the HTML standard parses them. */
export class SSEDecoder {
  constructor() {
    this.rest = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  /** Feeds ``text``; returns the events it completed, each {event, data, id}. */
  push(text) {
    let buffer = this.rest + text;
    // A lone CR at the end may be the first half of CRLF: keep it for the next piece.
    let held = "";
    if (buffer.endsWith("\r")) {
      held = "\r";
      buffer = buffer.slice(0, -1);
    }
    const lines = buffer.split(/\r\n|\r|\n/);
    this.rest = lines.pop() + held;
    const events = [];
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) {
          events.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        }
        this.reset();
        continue;
      }
      if (line.charCodeAt(0) === 58) continue; // ":" starts a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
    return events;
  }
}

/** A request the server refused: its status and its JSON ``detail``. */
export class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export async function refusal(response) {
  let detail = "";
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = response.statusText;
  }
  return new HttpError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
}

const FINAL = new Set(["success", "error", "interrupted", "timeout"]);
const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

/**
 * One run's events, from the request that starts it (or a join of a run already going) to the
 * run's end, across dropped connections.
 *
 * ``onEvent(event, data, id)`` gets each event once, in order; ``onState(text)`` hears of
 * reconnects. ``done`` resolves with how it ended: "ended" (the body ended and the run is over),
 * "detached" (``detach()``: the page stopped reading; the run goes on) or "lost".
 */
export class RunStream {
  constructor({ base, threadId, onEvent, onState }) {
    this.base = base;
    this.threadId = threadId;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.runId = null;
    this.lastId = null;
    this.controller = new AbortController();
    this.stopping = false;
    this.reconnects = 0;
    this.delivered = 0;
    this.state = "";
    this.interrupts = []; // what the run stopped to ask: the page shows it once the run ends
  }

  tell(state) {
    if (state !== this.state) this.onState((this.state = state));
  }

  url(path) {
    return new URL(path, this.base);
  }

  /** POSTs ``body`` to the thread's runs/stream and follows the run it starts. */
  start(body) {
    const request = () => fetch(this.url(`threads/${encodeURIComponent(this.threadId)}/runs/stream`), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: this.controller.signal,
    });
    this.done = this.follow(request);
    return this.done;
  }

  /** Follows a run that is going already, from its first event (``Last-Event-ID: -1``). */
  join(runId) {
    this.runId = runId;
    this.done = this.follow(() => this.rejoin());
    return this.done;
  }

  rejoin() {
    const path = `threads/${encodeURIComponent(this.threadId)}/runs/${encodeURIComponent(this.runId)}/stream`;
    return fetch(this.url(path), {
      headers: { Accept: "text/event-stream", "Last-Event-ID": this.lastId ?? "-1" },
      signal: this.controller.signal,
    });
  }

  /** Asks the server to cancel the run; its stream then ends as the run does. */
  async cancel() {
    this.stopping = true;
    if (this.runId == null) return; // cancelled as soon as the run is known
    const path = `threads/${encodeURIComponent(this.threadId)}/runs/${encodeURIComponent(this.runId)}/cancel`;
    const response = await fetch(this.url(path), { method: "POST" });
    if (!response.ok && response.status !== 409) throw await refusal(response); // 409: ended
  }

  /** Stops reading; the run goes on, on the server. */
  detach() {
    this.controller.abort();
  }

  learn(runId) {
    if (this.runId != null || !runId) return;
    this.runId = runId;
    if (this.stopping) this.cancel().catch(() => {});
  }

  async follow(first) {
    let open = first;
    let failures = 0;
    for (;;) {
      let cut = false;
      const before = this.delivered;
      try {
        const response = await open();
        if (!response.ok) throw await refusal(response);
        const location = response.headers.get("Content-Location") || "";
        this.learn(location.match(/\/runs\/([^/]+)$/)?.[1]);
        await this.read(response.body);
      } catch (error) {
        if (this.controller.signal.aborted) return "detached";
        // A refusal of the first request (a busy thread, a bad body) is the caller's to show;
        // a run that is gone (404 on a join) cannot be followed further.
        if (error instanceof HttpError && (this.runId == null || error.status === 404)) throw error;
        cut = true;
      }
      if (this.delivered > before) failures = 0;
      if (this.runId == null) this.learn(await this.activeRun());
      if (this.runId == null) throw new Error("the connection dropped before the run started");
      if (!cut) {
        // The body ended: the run is over, unless a proxy closed it cleanly mid-run.
        const status = await this.status();
        if (status == null || FINAL.has(status)) return "ended";
      }
      failures += 1;
      if (failures > 30) return "lost";
      this.reconnects += 1;
      this.tell("reconnecting");
      await sleep(Math.min(250 * 2 ** (failures - 1), 4000), this.controller.signal);
      if (this.controller.signal.aborted) return "detached";
      open = () => this.rejoin();
    }
  }

  /** The run going on the thread, if one is: the request that dropped before its answer may
   * have made it, and a thread runs one at a time (the page does not ask for more). */
  async activeRun() {
    try {
      const response = await fetch(this.url(`threads/${encodeURIComponent(this.threadId)}/runs`));
      const runs = response.ok ? await response.json() : [];
      return runs.find((run) => run.status === "pending" || run.status === "running")?.run_id;
    } catch {
      return undefined;
    }
  }

  async status() {
    const path = `threads/${encodeURIComponent(this.threadId)}/runs/${encodeURIComponent(this.runId)}`;
    try {
      const response = await fetch(this.url(path), { signal: this.controller.signal });
      return response.ok ? (await response.json()).status : null;
    } catch {
      return "unknown"; // the network is down: try the stream again
    }
  }

  /** Reads one response body, handing on each event not seen before. */
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const decoder = new SSEDecoder();
    let slice = performance.now();
    try {
      for (;;) {
        // A body that arrives faster than the page reads it resolves every read at once: give
        // the page its frames and its input every few milliseconds.
        if (performance.now() - slice > 25) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          slice = performance.now();
        }
        const { value, done } = await reader.read();
        if (done) return;
        for (const { event, data, id } of decoder.push(value)) {
          if (id != null) {
            // A replay from an older id than ours would repeat events: skip what we have.
            if (this.lastId != null && Number(id) <= Number(this.lastId)) continue;
            this.lastId = id;
          }
          this.delivered += 1;
          let parsed;
          try {
            parsed = JSON.parse(data);
          } catch {
            parsed = data;
          }
          if (event === "metadata") this.learn(parsed?.run_id);
          this.tell("streaming");
          this.onEvent(event, parsed, id);
        }
      }
    } finally {
      reader.releaseLock();
    }
  }
}
