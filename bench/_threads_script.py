"""The conversation both libraries hold in ``bench/threads.py``, and its checks.

Turn ``k`` (from 0): the user asks question ``k``; the model calls ``lookup(n=k)``; the tool
answers ``item k``; the model answers with ``tokens`` text tokens. Four messages a turn, three
steps (model, tools, model), so the history the model is given grows by four messages a turn.

Each library's fake model calls :meth:`Memory.saw` with the messages it was given; the run
then checks that every call saw the whole history (its length, the first question, and the
previous turn's full answer): a saver that lost or cut a message fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from _common import DeliveryError, make_tokens

TOOL = "lookup"
STEPS_PER_TURN = 3  # model (tool call), tools, model (answer)
MESSAGES_PER_TURN = 4  # user, AI tool call, tool result, AI answer


def question(turn: int) -> str:
    return f"Question {turn}: what is on the list?"


def tool_result(n: int) -> str:
    return f"item {n}"


def answer_tokens(count: int) -> list[str]:
    """The answer's text tokens (five characters each, a space and four digits)."""
    return [" " + token for token in make_tokens(count)]


@dataclass
class Memory:
    """What the model was shown, call by call: ``(messages, first text, previous text)``."""

    answer_chars: int
    calls: list[tuple[int, str, int]] = field(default_factory=list)

    def saw(self, texts: list[str]) -> None:
        """The model was called with messages whose contents are ``texts``."""
        previous = len(texts[-2]) if len(texts) >= 5 and len(texts) % 4 == 1 else -1
        self.calls.append((len(texts), texts[0], previous))

    def check(self, library: str, turns: int) -> None:
        """Two calls a turn, each shown the whole history so far."""
        expected = []
        for turn in range(turns):
            base = MESSAGES_PER_TURN * turn
            expected.append((base + 1, question(0), self.answer_chars if turn else -1))
            expected.append((base + 3, question(0), -1))
        if len(self.calls) != len(expected):
            raise DeliveryError(
                f"{library}: {len(self.calls)} model calls in {turns} turns; expected "
                f"{len(expected)}"
            )
        for call, (got, want) in enumerate(zip(self.calls, expected, strict=True)):
            if got != want:
                raise DeliveryError(
                    f"{library}: model call {call} was given (messages, first text, previous "
                    f"answer's length) {got[0], got[1][:30], got[2]}; expected "
                    f"{want[0], want[1][:30], want[2]}"
                )


def check_messages(library: str, count: int, turns: int) -> None:
    """The thread's state after ``turns`` turns holds four messages a turn."""
    if count != MESSAGES_PER_TURN * turns:
        raise DeliveryError(
            f"{library}: the thread holds {count} messages after {turns} turns; expected "
            f"{MESSAGES_PER_TURN * turns}"
        )
