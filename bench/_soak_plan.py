"""What each soak run does, drawn from the seed: its wire format, its consumer, its faults.

A run is one consumer making one model call (``via="model"``) or one agent run of two model
calls (``via="agent"``: a tool call, then a text reply). Each model call is a list of
attempts, as the server will play them to the consecutive requests of that call: zero or more
*retryable* faults that fail before the first token (a reset, a 429, a 5xx...), then one
*final* attempt that sends the reply with or without a fault in it. The same seed always
draws the same plans; nothing here does I/O.

A run is *survivable* when every fault in it is one the library must ride through: retryable
faults no more than ``max_retries`` in a row, and final faults that only slow the reply down
(pauses shorter than the timeouts, a 1-byte trickle, a long reply, a 10 MB line, invalid
UTF-8 in a field nobody reads). A survivable run whose consumer reads to the end must complete.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from _soak_wire import WIRES

MAX_RETRIES = 2

# Faults before the first token, which the library retries.
RETRYABLE = (
    "reset_before",        # RST right after the request is read
    "cut_before",          # HTTP 200 and the head, then the body ends short
    "status_429_ra",       # 429 with retry-after (seconds)
    "status_429_ra_ms",    # 429 with retry-after-ms
    "status_5xx",          # 500, 502 or 503
    "status_529",          # Anthropic's overloaded status
    "overloaded_event",    # HTTP 200, then an overloaded/server_error event before any token
)

# Faults of the final attempt that the library must survive: the reply completes.
SURVIVABLE_FINAL = (
    "clean",
    "pause_short",         # pauses far shorter than the idle timeout
    "trickle",             # the whole reply one byte per write
    "huge_line",           # one token event padded to 10 MB
    "invalid_utf8",        # invalid UTF-8 in a field nobody reads
    "long_reply",          # 100,000 tokens
)

# Faults of the final attempt that end the call with an error.
FATAL_FINAL = (
    "reset_during",        # RST after some tokens
    "cut_during",          # the body ends after some tokens, without the end marker
    "stall_before",        # nothing after the request, longer than the first-token timeout
    "stall_during",        # nothing after some tokens, longer than the idle timeout
    "not_json",            # a chunk that is not JSON, after some tokens
    "wrong_shape",         # valid JSON of the wrong shape, after some tokens
    "error_event_during",  # an overloaded event after some tokens: too late to retry
    "status_400",          # an HTTP error that is not worth a retry
)

# The tool-call reply of an agent run may also scramble its indices; what the agent makes of
# that (an invalid tool call answered with an error, or an error) is not judged beyond the
# run-wide invariants.
TOOL_FAULTS = ("tool_scrambled",)

# Consumers reading a model call directly, and an agent run.
MODEL_CONSUMERS = (
    "fast", "slow", "break", "async_with", "cancel_scope", "task_cancel", "sync_thread",
    "sync_break", "observe_loop", "observe_thread", "trio",
)
AGENT_CONSUMERS = (
    "agent_messages", "agent_break", "agent_task_cancel", "agent_updates_sync",
    "agent_observe_thread", "agent_trio",
)
CONSUMERS = MODEL_CONSUMERS + AGENT_CONSUMERS

# Consumers that read to the end (unless the call fails): they complete survivable runs.
READS_TO_THE_END = ("fast", "slow", "sync_thread", "trio", "agent_messages",
                    "agent_updates_sync", "agent_trio")


@dataclass(frozen=True)
class Attempt:
    """What the server does with one request."""

    fault: str
    tokens: int = 0          # tokens in the reply (text replies)
    at: int = 0              # the token a mid-reply fault comes after
    tool: bool = False       # the reply is a tool call, not text
    chunked: bool = True     # chunked transfer encoding, else close-delimited
    seed: int = 0            # for the fault's own choices (which 5xx, where to pause)


@dataclass(frozen=True)
class CallPlan:
    """One model call: its attempts, in order."""

    attempts: tuple[Attempt, ...]

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def retries(self) -> int:
        return len(self.attempts) - 1


@dataclass(frozen=True)
class RunPlan:
    """One soak run."""

    index: int
    wire: str
    consumer: str
    calls: tuple[CallPlan, ...]
    leave_after: int  # tokens after which a leaving consumer leaves
    slow_every: int = 0  # for "slow": sleep after every n-th chunk
    faults: tuple[str, ...] = ()  # every attempt's fault, in order (for the reports)

    @property
    def text_call(self) -> CallPlan:
        """The call whose reply is numbered text (the last one)."""
        return self.calls[-1]

    @property
    def survivable(self) -> bool:
        """Every fault is one the library must ride through (see the module doc)."""
        return all(call.retries <= MAX_RETRIES and call.final.fault in SURVIVABLE_FINAL
                   for call in self.calls)

    @property
    def must_complete(self) -> bool:
        """Survivable, and read by a consumer that reads to the end."""
        # The trio consumer breaks out on odd runs (see bench._soak_consumers).
        leaves = self.consumer == "trio" and self.index % 2 == 1
        return self.survivable and self.consumer in READS_TO_THE_END and not leaves


def _final_fault(rng: random.Random, long_ok: bool) -> str:
    roll = rng.random()
    if roll < 0.45:
        return "clean"
    if roll < 0.70:
        choices = ["pause_short", "trickle", "invalid_utf8", "huge_line"]
        weights = [8, 4, 4, 1]
        if long_ok:
            choices.append("long_reply")
            weights.append(1)
        return rng.choices(choices, weights)[0]
    return rng.choice(FATAL_FINAL)


def _attempts(rng: random.Random, *, tool: bool, long_ok: bool, base: int) -> CallPlan:
    # How many retryable faults come first: mostly none, sometimes more than max_retries.
    pre = rng.choices([0, 1, 2, 3], [60, 25, 10, 5])[0]
    attempts = [Attempt(rng.choice(RETRYABLE), seed=base + i) for i in range(pre)]
    if tool:
        fault = "tool_scrambled" if rng.random() < 0.2 else rng.choice(
            ("clean", "clean", "clean", "reset_during", "stall_before", "not_json"))
        attempts.append(Attempt(fault, tool=True, at=1, chunked=rng.random() < 0.8,
                                seed=base + 9))
        return CallPlan(tuple(attempts))
    fault = _final_fault(rng, long_ok)
    count = {"long_reply": 100_000, "trickle": rng.randint(3, 12)}.get(
        fault, rng.randint(4, 60))
    at = rng.randint(1, max(1, min(count - 1, 40)))
    attempts.append(Attempt(fault, tokens=count, at=at, chunked=rng.random() < 0.8,
                            seed=base + 9))
    return CallPlan(tuple(attempts))


def make_plans(seed: int, runs: int) -> list[RunPlan]:
    """The plans of ``runs`` runs drawn from ``seed``."""
    rng = random.Random(seed)
    plans = []
    # At most a few 100,000-token replies per soak: they take seconds each.
    long_budget = max(1, runs // 250)
    for index in range(runs):
        consumer = rng.choice(CONSUMERS)
        wire = rng.choice(WIRES)
        long_ok = long_budget > 0 and consumer in ("fast", "sync_thread", "trio")
        calls = []
        if consumer.startswith("agent_"):
            calls.append(_attempts(rng, tool=True, long_ok=False, base=index * 100))
        calls.append(_attempts(rng, tool=False, long_ok=long_ok, base=index * 100 + 50))
        if any(c.final.fault == "long_reply" for c in calls):
            long_budget -= 1
        faults = tuple(a.fault for c in calls for a in c.attempts)
        plans.append(RunPlan(index, wire, consumer, tuple(calls),
                             leave_after=rng.randint(0, 30), slow_every=rng.randint(1, 8),
                             faults=faults))
    return plans


def warm_up_plans(first_index: int) -> list[RunPlan]:
    """One clean run per consumer, numbered from ``first_index``: the soak runs them before
    the counted runs, so that what lives for the whole process by design (rxagent's
    background loop, imports, trio's first run) is there before the leak check's baseline."""
    plans = []
    for offset, consumer in enumerate(CONSUMERS):
        calls = [CallPlan((Attempt("clean", tool=True),))] if consumer.startswith("agent") else []
        calls.append(CallPlan((Attempt("clean", tokens=5),)))
        plans.append(RunPlan(first_index + offset, WIRES[offset % 2], consumer, tuple(calls),
                             leave_after=2, slow_every=2, faults=("clean",)))
    return plans
