// Streams runs on rxagent serve with @langchain/langgraph-sdk and joins them again with
// Last-Event-ID (client.runs.joinStream(thread, run, {lastEventId})), as the Python SDK tests
// in tests/server/ do:
// - "streamed": a whole run, then "joins": the same run joined after each of the ids in
//   "after" (once it has ended);
// - "cut": another run left after "cutAfter" events (the client goes away, the run goes on),
//   then "rejoined" from the last id it had, then "replayed" whole (Last-Event-ID -1).
//
// Input (argv[2], JSON): {"url", "assistantId", "input", "streamMode", "after", "cutAfter"}
// Output (stdout, JSON): {"streamed", "joins": {"<id>": [...]}, "cut", "rejoined",
//                         "replayed"}, each a list of {id, event, data}.
import { Client } from "@langchain/langgraph-sdk";

const spec = JSON.parse(process.argv[2]);
const client = new Client({ apiUrl: spec.url });
const options = { input: spec.input, streamMode: spec.streamMode, streamResumable: true };

async function collect(stream, limit = Infinity) {
  const out = [];
  for await (const { id, event, data } of stream) {
    out.push({ id: id ?? null, event, data });
    if (out.length >= limit) break; // leaving the loop closes the connection
  }
  return out;
}

const runIdOf = (parts) => parts.find((part) => part.event === "metadata").data.run_id;
const join = (threadId, runId, lastEventId) =>
  collect(client.runs.joinStream(threadId, runId, { lastEventId, streamMode: spec.streamMode }));

const whole = await client.threads.create();
const streamed = await collect(client.runs.stream(whole.thread_id, spec.assistantId, options));
const joins = {};
for (const after of spec.after) {
  joins[after] = await join(whole.thread_id, runIdOf(streamed), String(after));
}

const broken = await client.threads.create();
const cut = await collect(
  client.runs.stream(broken.thread_id, spec.assistantId, options), spec.cutAfter);
const rejoined = await join(broken.thread_id, runIdOf(cut), cut.at(-1).id);
const replayed = await join(broken.thread_id, runIdOf(cut), "-1");

process.stdout.write(JSON.stringify({ streamed, joins, cut, rejoined, replayed }));
