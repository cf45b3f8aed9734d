// Runs an agent through rxagent serve's AG-UI endpoint with @ag-ui/client's HttpAgent, turn
// after turn on one thread, as a front end would. Its event verification (verifyEvents) runs
// on every stream: a stream it refuses fails the turn.
//
// Input (argv[2], JSON): {"url", "threadId", "turns": [{"runId", "say"?: text, "resume"?}]}
//   "resume": "pending" answers every interrupt the last run ended with "yes".
// Output (stdout, JSON): per turn {"events", "error", "outcome": {"outcome", "interrupts"}}
// as the client saw them, then the agent's final "messages" and "state".
import { HttpAgent } from "@ag-ui/client";

const spec = JSON.parse(process.argv[2]);
const agent = new HttpAgent({ url: spec.url, threadId: spec.threadId, initialState: {} });
const turns = [];
for (const [position, turn] of spec.turns.entries()) {
  if (turn.say !== undefined) {
    agent.addMessage({ id: `user-${position}`, role: "user", content: turn.say });
  }
  const parameters = { runId: turn.runId };
  if (turn.resume === "pending") {
    parameters.resume = agent.pendingInterrupts.map((interrupt) => ({
      interruptId: interrupt.id, status: "resolved", payload: "yes",
    }));
  }
  const events = [];
  let error = null;
  let outcome = null;
  try {
    await agent.runAgent(parameters, {
      onEvent({ event }) {
        events.push(event);
      },
      onRunFinishedEvent({ outcome: kind, interrupts }) {
        outcome = { outcome: kind, interrupts: interrupts ?? [] };
      },
      onRunFailed({ error: failure }) {
        error = String(failure?.message ?? failure);
      },
    });
  } catch (failure) {
    error = error ?? String(failure?.message ?? failure);
  }
  turns.push({ events, error, outcome });
}
process.stdout.write(JSON.stringify({ turns, messages: agent.messages, state: agent.state }));
