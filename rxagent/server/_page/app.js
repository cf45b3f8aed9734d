// The chat page: picks an agent, keeps threads, and streams runs from the server's own
// LangGraph routes. Tokens are queued as they arrive and written to the DOM once per animation
// frame, so a 100,000-token answer costs a few thousand DOM updates, not 100,000.

import { HttpError, RunStream, refusal } from "./sse.js";

const BASE = new URL(".", location.href); // the app may be mounted under a prefix
const MODES = ["messages-tuple", "updates", "custom"];
const ACTIVE = new Set(["pending", "running"]);
const DECISIONS = ["approve", "edit", "reject", "respond"];
const LABELS = { approve: "Approve", edit: "Edit", reject: "Reject", respond: "Respond" };

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

async function api(method, path, body) {
  const response = await fetch(new URL(path, BASE), {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await refusal(response);
  return response.status === 204 ? null : response.json();
}

const thread = (id) => `threads/${encodeURIComponent(id)}`;

/** A message's text: a string, or the text blocks of a list of content blocks. */
function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((block) => (typeof block === "string" ? block
    : block && block.type === "text" ? block.text || "" : "")).join("");
}

/** A message's reasoning, as providers stream it: Anthropic's ``thinking`` blocks, LangChain's
 * ``reasoning`` blocks (text or summary parts), or ``reasoning_content`` beside the content. */
function reasoningOf(message) {
  let text = message.additional_kwargs?.reasoning_content || "";
  if (typeof text !== "string") text = "";
  if (!Array.isArray(message.content)) return text;
  for (const block of message.content) {
    if (!block || typeof block !== "object") continue;
    if (block.type === "thinking") text += block.thinking || "";
    else if (block.type === "reasoning") {
      text += typeof block.reasoning === "string" ? block.reasoning
        : (block.summary || []).map((part) => part?.text || "").join("");
    }
  }
  return text;
}

/** The tool call id a namespace segment names (``tools:<id>``), or null. */
function callOf(ns) {
  if (!ns) return null;
  const last = ns.split("|").pop();
  return last.startsWith("tools:") ? last.slice(6) : null;
}

// -- the transcript ---------------------------------------------------------------------------

// A long answer is laid out in blocks of about this many characters, each a box of its own:
// appending to the last block then lays out that block only, not the whole answer again.
const BLOCK = 4096;

/** A text that grows: appended to in memory at once, in the DOM at the next frame. */
class Growing {
  constructor(transcript, node, blocks = false) {
    this.transcript = transcript;
    this.node = node;
    this.blocks = blocks;
    this.pending = "";
    this.length = 0;
    this.text = this.open();
  }

  open() {
    const text = document.createTextNode("");
    this.node.append(this.blocks ? el("span", { class: "block" }, text) : text);
    return text;
  }

  append(text) {
    if (!text) return;
    if (!this.pending) this.transcript.dirty.add(this);
    this.pending += text;
    this.length += text.length;
    this.transcript.schedule();
  }

  set(text) {
    this.pending = "";
    this.transcript.dirty.delete(this);
    this.node.replaceChildren();
    this.text = this.open();
    this.length = 0;
    this.pending = text;
    this.flush();
    this.length = text.length;
  }

  flush() {
    // appendData costs the new text only: nothing already shown is rebuilt.
    let text = this.pending;
    this.pending = "";
    while (this.blocks && this.text.length + text.length > BLOCK) {
      // The block is full: the next starts after a line's end, or after a space when no line
      // ends soon, where a line may end anyway.
      const from = Math.max(0, BLOCK - this.text.length);
      const line = text.indexOf("\n", from);
      const space = text.indexOf(" ", from);
      const cut = (line >= 0 && line - from < 2 * BLOCK ? line : space) + 1;
      if (!cut) break;
      this.text.appendData(text.slice(0, cut));
      text = text.slice(cut);
      if (!text) break;
      this.text = this.open();
    }
    if (text) this.text.appendData(text);
  }
}

class ToolCallView {
  constructor(transcript, { id, name }) {
    this.id = id;
    this.name = el("span", { class: "name", text: name || "tool" });
    this.argsNode = el("code", { class: "args" });
    this.args = new Growing(transcript, this.argsNode);
    this.progress = el("ol", { class: "progress", "aria-label": "Progress" });
    this.result = el("div", { class: "result" });
    this.nested = el("div", { class: "nested" });
    this.node = el("li", { class: "call running", "data-call": id || "" },
      el("div", { class: "head" }, el("span", { class: "badge", text: "tool" }), this.name,
        el("span", { class: "paren", text: "(" }), this.argsNode, el("span", { class: "paren", text: ")" })),
      this.progress, this.nested, this.result);
    this.done = false;
  }

  setResult(message) {
    this.done = true;
    this.node.classList.remove("running");
    this.node.classList.toggle("failed", message.status === "error");
    this.result.replaceChildren(el("span", { class: "badge", text: "result" }),
      el("span", { class: "text", text: textOf(message.content) }));
  }
}

class MessageView {
  constructor(transcript, message, label) {
    this.transcript = transcript;
    this.id = message.id;
    this.final = false;
    const kind = message.type === "human" ? "human" : message.type === "system" ? "system" : "ai";
    this.body = el("div", { class: "text" });
    this.calls = el("ul", { class: "calls" });
    this.node = el("article", { class: `msg ${kind}`, "data-id": message.id || "" },
      el("h2", { class: "who", text: label || (kind === "human" ? "You" : kind === "system" ? "System" : "Agent") }),
      this.body, this.calls);
    this.text = new Growing(transcript, this.body, true);
    this.byIndex = new Map();
    this.thinking = null;
  }

  /** Reasoning goes in a folded box before the text, made when the first of it arrives. */
  think(text) {
    if (!text) return;
    if (!this.thinking) {
      const body = el("div", { class: "thought" });
      this.node.insertBefore(el("details", { class: "thinking" }, el("summary", { text: "Thinking" }), body), this.body);
      this.thinking = new Growing(this.transcript, body, true);
    }
    this.thinking.append(text);
  }

  /** A streamed chunk: its text and its tool calls' fragments. */
  chunk(message, ns) {
    this.think(reasoningOf(message));
    this.text.append(textOf(message.content));
    for (const fragment of message.tool_call_chunks || []) {
      const key = fragment.index ?? fragment.id;
      let call = this.byIndex.get(key);
      if (!call) {
        call = this.transcript.addCall(this, fragment, ns);
        this.byIndex.set(key, call);
      } else if (fragment.name) {
        call.name.textContent = fragment.name;
      }
      call.args.append(fragment.args || "");
    }
  }

  /** The whole message: fills in what did not stream (the text the tokens made stays). */
  complete(message, ns) {
    if (!this.text.length) this.text.set(textOf(message.content));
    if (!this.thinking) this.think(reasoningOf(message));
    (message.tool_calls || []).forEach((toolCall, position) => {
      let call = this.transcript.calls.get(toolCall.id) || this.byIndex.get(position);
      if (!call) {
        call = this.transcript.addCall(this, toolCall, ns);
        this.byIndex.set(position, call);
      }
      if (!call.args.length) call.args.set(JSON.stringify(toolCall.args));
    });
    this.final = true;
  }
}

/** The conversation on screen: messages by id, tool calls by id, and the DOM writes queued. */
class Transcript {
  constructor(node, onInterrupt) {
    this.node = node;
    this.onInterrupt = onInterrupt;
    this.dirty = new Set();
    this.frame = 0;
    this.clear();
  }

  clear() {
    this.messages = new Map();
    this.calls = new Map();
    this.names = new Map(); // namespace → the sub-agent's name, from its messages' metadata
    this.dirty.clear();
    this.node.replaceChildren();
    this.run = null;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const log = this.node;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    for (const growing of this.dirty) growing.flush();
    this.dirty.clear();
    if (atEnd) log.scrollTop = log.scrollHeight; // follow the answer unless the reader scrolled up
  }

  /** Where a namespace's messages go: inside the tool call that runs that sub-agent. */
  container(ns) {
    const call = this.calls.get(callOf(ns));
    if (call) return call.nested;
    return this.run ? this.run.items : this.node;
  }

  addCall(message, { id, name }, ns) {
    const call = new ToolCallView(this, { id, name });
    call.ns = ns || "";
    if (id) this.calls.set(id, call);
    message.calls.append(call.node);
    return call;
  }

  message(message, ns = "", metadata = {}) {
    let view = message.id != null ? this.messages.get(message.id) : null;
    if (view) return view;
    const label = ns ? `${metadata.lc_agent_name || this.names.get(ns) || "sub-agent"} · ${ns}` : null;
    view = new MessageView(this, message, label);
    if (ns) view.node.classList.add("sub");
    if (message.id != null) this.messages.set(message.id, view);
    this.container(ns).append(view.node);
    return view;
  }

  /** A whole message, from the thread's state or a step's update. */
  whole(message, ns = "", metadata = {}) {
    if (message.type === "tool") {
      const call = this.calls.get(message.tool_call_id);
      if (call) {
        if (!call.done) call.setResult(message);
        return;
      }
    }
    if (message.type === "remove") return;
    const view = this.message(message, ns, metadata);
    if (!view.final) view.complete(message, ns);
  }

  history(messages) {
    for (const message of messages) this.whole(message);
    this.flush();
    this.node.scrollTop = this.node.scrollHeight;
  }

  // -- a run's events

  startRun() {
    const items = el("div", { class: "items" });
    const steps = el("ol", { class: "steps", "aria-label": "Steps finished" });
    const status = el("p", { class: "run-status" });
    const progress = el("ol", { class: "progress" });
    const node = el("section", { class: "run", "aria-label": "Run" }, items, progress, steps, status);
    this.node.append(node);
    this.run = { node, items, steps, status, progress };
    return this.run;
  }

  event(name, data) {
    const bar = name.indexOf("|");
    const mode = bar < 0 ? name : name.slice(0, bar);
    const ns = bar < 0 ? "" : name.slice(bar + 1);
    if (mode === "messages") this.onMessage(data[0], ns, data[1] || {});
    else if (mode === "updates") this.onUpdate(data, ns);
    else if (mode === "custom") this.onCustom(data, ns);
    else if (mode === "error") this.onError(data);
  }

  onMessage(message, ns, metadata) {
    if (ns && metadata.lc_agent_name) this.names.set(ns, metadata.lc_agent_name);
    if (message.type === "AIMessageChunk") {
      const view = this.message(message, ns, metadata);
      if (!view.final) view.chunk(message, ns);
    } else {
      this.whole(message, ns, metadata);
    }
  }

  onUpdate(update, ns) {
    for (const [node, values] of Object.entries(update || {})) {
      if (node === "__interrupt__") {
        this.onInterrupt(values);
        continue;
      }
      const messages = values && values.messages;
      for (const message of Array.isArray(messages) ? messages : messages ? [messages] : []) {
        this.whole(message, ns);
      }
      const where = ns ? `${this.names.get(ns) || ns} › ` : "";
      this.run?.steps.append(el("li", { text: `${where}${node}` }));
    }
  }

  /** A tool's progress goes under the call running in that namespace, if one is. */
  onCustom(data, ns) {
    const text = typeof data === "string" ? data : JSON.stringify(data);
    let target = null;
    for (const call of this.calls.values()) {
      if (!call.done && call.ns === ns) target = call;
    }
    target = target || this.calls.get(callOf(ns));
    (target ? target.progress : this.run?.progress)?.append(el("li", { text }));
  }

  onError(data) {
    const text = `${data?.error || "Error"}: ${data?.message || ""}`;
    this.run?.status.replaceChildren(el("span", { class: "error", role: "alert", text }));
  }
}

// -- interrupts -------------------------------------------------------------------------------

/** The form for one pending interrupt: ``answer()`` is what it resumes with; ``byId`` when
 * that answer must go in a map by interrupt id (a per-call review), as several answers do. */
function reviewForm(interrupt, index) {
  const value = interrupt.value;
  if (value && Array.isArray(value.action_requests)) return { ...hitlForm(value, index), id: interrupt.id };
  if (value && value.type === "tool_approval") {
    const form = actionFieldset(value, allowedBySchema(interrupt.response_schema), `${index}-0`);
    return { node: form.node, answer: form.decision, summary: form.summary, id: interrupt.id, byId: true };
  }
  const id = `answer-${index}`;
  const input = el("input", { id, type: "text" });
  const node = el("div", { class: "ask" },
    el("pre", { text: typeof value === "string" ? value : JSON.stringify(value, null, 2) }),
    el("label", { for: id, text: "Your answer" }), input);
  return { node, answer: () => input.value, summary: () => `Answered: ${input.value}`, id: interrupt.id, byId: false };
}

function allowedBySchema(schema) {
  const found = new Set();
  JSON.stringify(schema || {}, (key, item) => {
    if (key === "const" && DECISIONS.includes(item)) found.add(item);
    if (key === "enum" && Array.isArray(item)) item.filter((v) => DECISIONS.includes(v)).forEach((v) => found.add(v));
    return item;
  });
  return found.size ? DECISIONS.filter((kind) => found.has(kind)) : DECISIONS;
}

function hitlForm(value, index) {
  const sets = value.action_requests.map((action, position) => {
    const config = (value.review_configs || []).find((c) => c.action_name === action.name)
      || value.review_configs?.[position] || { allowed_decisions: DECISIONS };
    return actionFieldset(action, config.allowed_decisions, `${index}-${position}`);
  });
  return {
    node: el("div", {}, ...sets.map((set) => set.node)),
    answer: () => ({ decisions: sets.map((set) => set.decision()) }),
    summary: () => sets.map((set) => set.summary()).join("; "),
    byId: false,
  };
}

/** One tool call under review: its arguments (editable) and the decisions it allows. */
function actionFieldset(action, allowed, key) {
  const argsId = `args-${key}`;
  const messageId = `message-${key}`;
  const args = el("textarea", { id: argsId, spellcheck: "false" });
  args.value = JSON.stringify(action.args ?? {}, null, 2);
  args.rows = Math.min(12, Math.max(3, args.value.split("\n").length));
  const message = el("input", { id: messageId, type: "text" });
  const choices = el("div", { class: "choices", role: "radiogroup", "aria-label": `Decision for ${action.name}` });
  allowed.forEach((kind, position) => {
    const id = `decision-${key}-${kind}`;
    choices.append(el("span", { class: "choice" },
      el("input", { type: "radio", id, name: `decision-${key}`, value: kind, checked: position === 0 }),
      el("label", { for: id, text: LABELS[kind] || kind })));
  });
  args.addEventListener("input", () => {
    const edit = choices.querySelector('input[value="edit"]');
    if (edit) edit.checked = true;
  });
  const node = el("fieldset", { class: "action" },
    el("legend", { text: `Tool call: ${action.name}` }),
    action.description ? el("p", { class: "description", text: action.description }) : null,
    el("label", { for: argsId, text: "Arguments (JSON)" }), args, choices,
    el("label", { for: messageId, text: "Message to the agent (with Reject or Respond)" }), message);
  const decision = () => {
    const kind = choices.querySelector("input:checked")?.value || "approve";
    if (kind === "edit") {
      let edited;
      try {
        edited = JSON.parse(args.value);
      } catch (error) {
        args.focus();
        throw new Error(`The arguments of ${action.name} are not JSON: ${error.message}`);
      }
      return { type: "edit", edited_action: { name: action.name, args: edited } };
    }
    if (kind === "reject") return message.value ? { type: "reject", message: message.value } : { type: "reject" };
    if (kind === "respond") return { type: "respond", message: message.value };
    return { type: kind };
  };
  const summary = () => {
    const chosen = decision();
    const said = chosen.message ? ` (${chosen.message})` : "";
    const edited = chosen.type === "edit" ? ` with ${JSON.stringify(chosen.edited_action.args)}` : "";
    return `${LABELS[chosen.type] || chosen.type}: ${action.name}${edited}${said}`;
  };
  return { node, decision, summary };
}

// -- the page ---------------------------------------------------------------------------------

class Page {
  constructor() {
    this.agent = null;
    this.threadId = null;
    this.stream = null;
    this.review = null;
    this.transcript = new Transcript($("log"), (interrupts) => this.interrupted(interrupts));
  }

  status(text, kind = "") {
    const node = $("status");
    node.textContent = text;
    node.className = kind;
  }

  busy(on) {
    $("send").disabled = on;
    $("stop").disabled = !on;
    $("log").setAttribute("aria-busy", on ? "true" : "false");
  }

  async init() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send().catch((error) => this.status(error.message, "error"));
    });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("stop").addEventListener("click", () => this.stop());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.stream) this.stop();
    });
    $("new-thread").addEventListener("click", () => this.newThread());
    $("agent").addEventListener("change", () => {
      this.pickAgent($("agent").value).catch((error) => this.status(error.message, "error"));
    });
    $("threads-toggle").addEventListener("click", () => {
      this.fold($("threads-toggle").getAttribute("aria-expanded") !== "true");
    });
    window.addEventListener("hashchange", () => this.fromHash());
    const assistants = await api("POST", "assistants/search", { limit: 100 });
    const select = $("agent");
    select.replaceChildren(...assistants.map((a) => el("option", { value: a.graph_id, text: a.name || a.graph_id })));
    select.disabled = false;
    this.busy(false);
    const wanted = new URLSearchParams(location.hash.slice(1));
    const agent = assistants.some((a) => a.graph_id === wanted.get("agent")) ? wanted.get("agent")
      : assistants[0]?.graph_id;
    if (agent) await this.pickAgent(agent, wanted.get("thread"));
  }

  /** Follows an address edited by hand or a link: ``#agent=ID&thread=ID``. */
  fromHash() {
    const wanted = new URLSearchParams(location.hash.slice(1));
    const agent = wanted.get("agent") || this.agent;
    const threadId = wanted.get("thread");
    if (agent !== this.agent || (threadId && threadId !== this.threadId)) {
      this.pickAgent(agent, threadId).catch((error) => this.status(error.message, "error"));
    }
  }

  /** Unfolds or folds the thread list (a phone's narrow layout folds it behind a button). */
  fold(open) {
    $("threads-toggle").setAttribute("aria-expanded", String(open));
    $("threads").classList.toggle("open", open);
  }

  remember() {
    const hash = new URLSearchParams({ agent: this.agent });
    if (this.threadId) hash.set("thread", this.threadId);
    history.replaceState(null, "", `#${hash}`);
  }

  async pickAgent(agent, threadId = null) {
    if (![...$("agent").options].some((option) => option.value === agent)) return;
    this.agent = agent;
    $("agent").value = agent;
    const threads = await this.listThreads();
    const chosen = threadId || threads[0]?.thread_id || null;
    if (chosen) await this.open(chosen);
    else this.newThread();
  }

  async listThreads() {
    const found = await api("POST", "threads/search", { metadata: { graph_id: this.agent }, limit: 100 });
    found.sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
    const list = $("thread-list");
    list.replaceChildren(...found.map((record) => {
      const first = (record.values?.messages || []).find((m) => m.type === "human");
      const title = record.metadata?.title || (first && textOf(first.content)) || "New thread";
      const button = el("button", { type: "button", "data-thread": record.thread_id, title,
        "aria-current": record.thread_id === this.threadId ? "true" : false,
        onclick: () => {
          this.fold(false);
          this.open(record.thread_id).catch((error) => this.status(error.message, "error"));
        } },
      el("span", { class: "title", text: title.slice(0, 80) }),
      record.status !== "idle" ? el("span", { class: `thread-status ${record.status}`, text: record.status }) : null);
      return el("li", {}, button);
    }));
    return found;
  }

  markCurrent() {
    for (const button of $("thread-list").querySelectorAll("button")) {
      if (button.dataset.thread === this.threadId) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  leave() {
    if (this.stream) this.stream.detach(); // the run goes on; coming back joins it again
    this.stream = null;
    this.review?.remove();
    this.review = null;
    this.transcript.clear();
    this.busy(false);
    this.status("");
  }

  newThread() {
    this.leave();
    this.threadId = null;
    this.markCurrent();
    this.remember();
    $("prompt").focus();
  }

  /** Shows a thread: its state, a pending review, and the run going on it, if one is. */
  async open(threadId) {
    this.leave();
    this.threadId = threadId;
    this.remember();
    this.markCurrent();
    const [state, runs] = await Promise.all([
      api("GET", `${thread(threadId)}/state`),
      api("GET", `${thread(threadId)}/runs`).catch(() => []),
    ]);
    if (this.threadId !== threadId) return;
    this.transcript.history(state.values?.messages || []);
    const active = runs.find((run) => ACTIVE.has(run.status));
    if (active) {
      await this.follow((stream) => stream.join(active.run_id));
    } else if (state.interrupts?.length) {
      this.interrupted(state.interrupts);
    }
  }

  async send() {
    const prompt = $("prompt");
    const text = prompt.value.trim();
    if (!text || this.stream || $("send").disabled) return;
    if (this.threadId == null) {
      $("send").disabled = true; // a second Enter must not make a second thread
      try {
        const created = await api("POST", "threads", { metadata: { graph_id: this.agent, title: text.slice(0, 80) } });
        this.threadId = created.thread_id;
      } finally {
        $("send").disabled = false;
      }
      this.remember();
    }
    prompt.value = "";
    this.review?.remove();
    this.review = null;
    const input = { messages: [{ role: "user", content: text }] };
    await this.follow((stream) => stream.start(this.runBody({ input })), text);
  }

  runBody(fields) {
    return { assistant_id: this.agent, stream_mode: MODES, stream_subgraphs: true, stream_resumable: true, ...fields };
  }

  /** Runs ``begin(stream)`` and shows the run's events until it ends, after what the person
   * said to start it (a question, or the decisions of a review). */
  async follow(begin, question = null) {
    const threadId = this.threadId;
    const run = this.transcript.startRun();
    if (question != null) {
      const asked = new MessageView(this.transcript, { type: "human" });
      asked.text.set(question);
      run.items.append(asked.node);
    }
    const stream = new RunStream({
      base: BASE,
      threadId,
      onEvent: (event, data) => this.transcript.event(event, data),
      onState: (state) => {
        if (state === "reconnecting") this.status("Connection lost: reconnecting…", "warn");
        else if (state === "streaming") this.status("Streaming…");
      },
    });
    this.stream = stream;
    this.busy(true);
    this.status("Starting…");
    this.refreshThreads();
    let outcome;
    try {
      outcome = await begin(stream);
    } catch (error) {
      outcome = "failed";
      run.status.replaceChildren(el("span", { class: "error", role: "alert", text: error.message }));
    }
    if (this.stream !== stream) return; // the page went to another thread meanwhile
    const final = stream.runId ? await stream.status() : null;
    if (this.stream !== stream) return;
    this.transcript.flush();
    this.stream = null;
    this.busy(false);
    if (outcome === "lost") {
      run.status.replaceChildren(el("span", { class: "error", role: "alert", text: "The connection was lost." }));
    }
    const said = { success: "Done.", interrupted: "Stopped.", error: "The run failed." };
    const waiting = stream.interrupts.length > 0;
    this.status(waiting ? "Waiting for your review." : said[final] || (outcome === "failed" ? "Not started." : ""),
      final === "error" ? "error" : "");
    run.node.dataset.status = final || outcome;
    if (stream.stopping && final === "interrupted") {
      run.status.append(el("span", { class: "stopped", text: "Stopped." }));
    }
    if (waiting) this.showReview(stream.interrupts);
    this.refreshThreads();
    if (!this.review) $("prompt").focus();
  }

  refreshThreads() {
    this.listThreads().catch(() => {});
  }

  stop() {
    if (!this.stream) return;
    this.status("Stopping…");
    this.stream.cancel().catch((error) => this.status(error.message, "error"));
  }

  /** An interrupt arrived: shown for review once its run has ended. */
  interrupted(interrupts) {
    if (this.stream) this.stream.interrupts.push(...interrupts); // shown once its run ends
    else this.showReview(interrupts);
  }

  showReview(interrupts) {
    this.review?.remove();
    const forms = interrupts.map((interrupt, index) => reviewForm(interrupt, index));
    const submit = el("button", { type: "submit", text: "Send decision" });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "review", "aria-label": "Review" },
      el("h2", { text: "The agent is waiting for you" }), ...forms.map((f) => f.node), error, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let resume;
      let summary;
      try {
        summary = forms.map((f) => f.summary()).join("; ");
        // One interrupt takes its answer as the resume value (LangChain's batched review, its
        // decisions); a per-call review, or several interrupts, a map by interrupt id.
        resume = forms.length === 1 && !forms[0].byId ? forms[0].answer()
          : Object.fromEntries(forms.map((f) => [f.id, f.answer()]));
      } catch (problem) {
        error.textContent = problem.message;
        return;
      }
      form.remove();
      this.review = null;
      this.follow((stream) => stream.start(this.runBody({ command: { resume } })), summary)
        .catch((problem) => this.status(problem.message, "error"));
    });
    this.review = form;
    this.transcript.node.append(form);
    (form.querySelector("input[type=radio]:checked") || form.querySelector("input, textarea, button"))
      ?.focus({ preventScroll: true });
    form.scrollIntoView({ block: "start" }); // the review's heading and the call, not its end
  }
}

const page = new Page();
page.init().catch((error) => page.status(error instanceof HttpError ? error.message : String(error), "error"));
