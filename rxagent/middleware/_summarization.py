"""``SummarizationMiddleware``: replace the older part of a long conversation with a summary.

Before each model step, when a ``trigger`` is met (so many tokens, so many messages, a
fraction of the model's input window), the messages before a cut point are summarised by a
model call and the state's messages become: one ``HumanMessage`` holding the summary, then the
kept messages. The cut never separates a tool result from the AI message that called it.

The summary call is made outside the run's ``messages`` mode, as LangChain tags it
``nostream``: its tokens are not part of the agent's reply.
"""

from __future__ import annotations

import inspect
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from html import escape
from json import dumps
from typing import Any, Literal, TypeAlias
from xml.sax.saxutils import quoteattr

from .._exceptions import APIStatusError, ScriptExhaustedError, UsageError
from .._message_utils import count_tokens_approximately, trim_messages
from .._messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from .._removal import REMOVE_ALL_MESSAGES, RemoveMessage
from .._threads import run_sync
from ..chat_models._base import BaseChatModel
from ..chat_models._init import init_chat_model
from ..chat_models._retry import status_is_retryable
from ..runtime import Runtime
from ._types import AgentMiddleware, unreported_reply

__all__ = ["DEFAULT_SUMMARY_PROMPT", "ContextSize", "SummarizationMiddleware"]

TokenCounter: TypeAlias = Callable[[Iterable[BaseMessage]], int]
ContextSize: TypeAlias = tuple[Literal["fraction", "tokens", "messages"], float]
"""``("tokens", 3000)``, ``("messages", 50)`` or ``("fraction", 0.8)`` of the model's
``max_input_tokens``."""
Summarizer: TypeAlias = (
    "str | BaseChatModel | Callable[[list[BaseMessage]], str | Awaitable[str]]"
)

DEFAULT_SUMMARY_PROMPT = """You are condensing a conversation so that work on it can go on \
within a limited context window. What you write will replace the messages below.

Write down, under these headings (write "None" under a heading with nothing to say):

## SESSION INTENT
What the user wants overall.

## SUMMARY
The facts, decisions and conclusions reached so far, with their reasons, and options ruled out.

## ARTIFACTS
Files and other resources created, changed or read, and how.

## NEXT STEPS
What is left to do.

Reply with the summary only.

<messages>
Messages to summarize:
{messages}
</messages>"""
"""The summary prompt: ``{messages}`` is replaced by the messages to summarise, as XML."""

_KEEP_DEFAULT = 20
_TRIM_DEFAULT = 4000
_FALLBACK_KEPT = 15
_ATTEMPTS = 3
_KINDS = ("tokens", "messages", "fraction")
SUMMARY_PREFIX = "Here is a summary of the conversation to date:\n\n"


class SummarizationMiddleware(AgentMiddleware[Any, Any]):
    """Summarise the older messages when the conversation grows past a trigger.

    Args:
        model: the model whose context is managed (and which writes the summaries unless
            ``summarizer`` is given): a chat model or a model string.
        trigger: when to summarise: a :data:`ContextSize` tuple, a dict of thresholds that must
            all be met (``{"tokens": 4000, "messages": 10}``), or a list of either (any one
            met). ``None`` never summarises.
        keep: how much of the end of the conversation to keep as it is (a :data:`ContextSize`).
        token_counter: counts the tokens of a list of messages.
        summary_prompt: the prompt for the summary call, with a ``{messages}`` field.
        trim_tokens_to_summarize: at most this many tokens of the older messages are shown to
            the summariser (its last ones); ``None`` shows them all.
        summarizer: writes the summary instead of ``model``: another chat model (or model
            string), prompted with ``summary_prompt``; or a function (sync or async) given the
            messages and returning the summary text.
        max_tokens_before_summary: deprecated (as in LangChain): ``trigger=("tokens", n)``
            when no trigger is given.
        messages_to_keep: deprecated (as in LangChain): ``keep=("messages", n)`` when keep is
            the default.

    Raises:
        UsageError: a trigger or keep that is not one of the forms above, a threshold that is
            not positive, a fraction outside (0, 1], or a fraction when the model has no
            ``profile["max_input_tokens"]``.
    """

    def __init__(
        self,
        model: str | BaseChatModel,
        *,
        trigger: ContextSize | Mapping[str, float] | Sequence[Any] | None = None,
        keep: ContextSize = ("messages", _KEEP_DEFAULT),
        token_counter: TokenCounter = count_tokens_approximately,
        summary_prompt: str = DEFAULT_SUMMARY_PROMPT,
        trim_tokens_to_summarize: int | None = _TRIM_DEFAULT,
        summarizer: Summarizer | None = None,
        max_tokens_before_summary: int | None = None,
        messages_to_keep: int | None = None,
    ) -> None:
        # LangChain's deprecated spellings, still used by its context engineering page;
        # accepted with LangChain's warnings and meanings.
        if max_tokens_before_summary is not None:
            warnings.warn("max_tokens_before_summary is deprecated. Use trigger=('tokens', "
                          "value) instead.", DeprecationWarning, stacklevel=2)
            if trigger is None:
                trigger = ("tokens", max_tokens_before_summary)
        if messages_to_keep is not None:
            warnings.warn("messages_to_keep is deprecated. Use keep=('messages', value) "
                          "instead.", DeprecationWarning, stacklevel=2)
            if keep == ("messages", _KEEP_DEFAULT):
                keep = ("messages", messages_to_keep)
        self.model = init_chat_model(model) if isinstance(model, str) else model
        self.clauses = _clauses(trigger)
        self.keep = _checked_size(keep, "keep")
        self.token_counter = token_counter
        self.summary_prompt = summary_prompt
        self.trim_tokens_to_summarize = trim_tokens_to_summarize
        if isinstance(summarizer, str):
            summarizer = init_chat_model(summarizer)
        self.summary_model = summarizer if isinstance(summarizer, BaseChatModel) else self.model
        self.summarizer: Callable[[list[BaseMessage]], Any] | None = (
            None if summarizer is None or isinstance(summarizer, BaseChatModel) else summarizer
        )
        wants_window = self.keep[0] == "fraction" or any("fraction" in c for c in self.clauses)
        if wants_window and _max_input_tokens(self.model) is None:
            raise UsageError(
                "a ('fraction', ...) trigger or keep needs the model's max_input_tokens, and "
                f"{self.model!r} has no profile giving it: use ('tokens', n) instead, or set "
                "model.profile = {'max_input_tokens': n}"
            )

    def before_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Summarise the older messages when the trigger is met."""
        plan = self._plan(state["messages"])
        if plan is None:
            return None
        older, kept = plan
        return _update(self._summary(older), kept)

    async def abefore_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Summarise the older messages when the trigger is met (async form)."""
        plan = self._plan(state["messages"])
        if plan is None:
            return None
        older, kept = plan
        return _update(await self._asummary(older), kept)

    # -- deciding ------------------------------------------------------------------------------

    def _plan(
        self, messages: list[BaseMessage]
    ) -> tuple[list[BaseMessage], list[BaseMessage]] | None:
        """The messages to summarise and the ones to keep, or ``None`` to leave them."""
        # The update replaces every message; those without an id must get one to be kept.
        for message in messages:
            if message.id is None:
                message.id = str(uuid.uuid4())
        if not self._triggered(messages, self.token_counter(messages)):
            return None
        cut = self._cut(messages)
        if cut <= 0:
            return None
        return messages[:cut], messages[cut:]

    def _triggered(self, messages: list[BaseMessage], tokens: int) -> bool:
        return any(all(self._met(kind, value, messages, tokens) for kind, value in c.items())
                   for c in self.clauses)

    def _met(self, kind: str, value: float, messages: list[BaseMessage], tokens: int) -> bool:
        if kind == "messages":
            return len(messages) >= value
        if kind == "fraction":
            window = _max_input_tokens(self.model)
            if window is None:
                return False
            value = max(1, int(window * value))
        return tokens >= value or self._reported_over(messages, value)

    def _reported_over(self, messages: list[BaseMessage], threshold: float) -> bool:
        """Whether the last reply's provider-reported usage is over ``threshold`` (trusted
        only when that reply came from this middleware's model's provider)."""
        reply = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if reply is None or not reply.usage_metadata:
            return False
        total = reply.usage_metadata.get("total_tokens", -1)
        provider = reply.response_metadata.get("model_provider")
        return bool(total >= threshold and provider and provider == self.model.provider)

    def _cut(self, messages: list[BaseMessage]) -> int:
        kind, value = self.keep
        if kind == "messages":
            if len(messages) <= value:
                return 0
            return _safe_cut(messages, len(messages) - int(value))
        budget = int(value) if kind == "tokens" else int((_max_input_tokens(self.model) or 0)
                                                         * value)
        budget = max(budget, 1)
        if self.token_counter(messages) <= budget:
            return 0
        # The earliest start whose suffix fits the budget, found by halves.
        low, high = 0, len(messages)
        while low < high:
            middle = (low + high) // 2
            if self.token_counter(messages[middle:]) <= budget:
                high = middle
            else:
                low = middle + 1
        if low >= len(messages):
            if len(messages) == 1:
                return 0
            low = len(messages) - 1
        return _safe_cut(messages, low)

    # -- summarising ---------------------------------------------------------------------------

    def _shown(self, older: list[BaseMessage]) -> list[BaseMessage]:
        if self.trim_tokens_to_summarize is None:
            return older
        try:
            return trim_messages(older, max_tokens=self.trim_tokens_to_summarize,
                                 token_counter=self.token_counter, start_on="human",
                                 strategy="last", include_system=True)
        except Exception:  # a counter that fails: show the last few rather than fail the run
            return older[-_FALLBACK_KEPT:]

    def _summary(self, older: list[BaseMessage]) -> str:
        shown, fixed = self._shown_or_fixed(older)
        if fixed is not None:
            return fixed
        if self.summarizer is not None:
            result = self.summarizer(shown)
            if inspect.isawaitable(result):
                result = run_sync(lambda: result)
            return _checked_summary(result)
        prompt = self._prompt(shown)
        return run_sync(lambda: _call(self.summary_model, prompt))

    async def _asummary(self, older: list[BaseMessage]) -> str:
        shown, fixed = self._shown_or_fixed(older)
        if fixed is not None:
            return fixed
        if self.summarizer is not None:
            result = self.summarizer(shown)
            if inspect.isawaitable(result):
                result = await result
            return _checked_summary(result)
        return await _call(self.summary_model, self._prompt(shown))

    def _shown_or_fixed(self, older: list[BaseMessage]) -> tuple[list[BaseMessage], str | None]:
        if not older:
            return [], "No previous conversation history."
        shown = self._shown(older)
        if not shown:
            return [], "Previous conversation was too long to summarize."
        return shown, None

    def _prompt(self, messages: list[BaseMessage]) -> str:
        return self.summary_prompt.format(messages=as_xml(messages)).rstrip()

    def __repr__(self) -> str:
        return f"SummarizationMiddleware(model={self.model!r}, keep={self.keep!r})"


async def _call(model: BaseChatModel, prompt: str) -> str:
    """The summary: one call, tried up to three times while its failure may be transient
    (HTTP models also retry inside each attempt), kept out of ``messages`` mode."""
    for attempt in range(_ATTEMPTS):
        try:
            reply = await unreported_reply(model, [HumanMessage(content=prompt)])
        except Exception as error:
            if attempt == _ATTEMPTS - 1 or not _worth_retrying(error):
                raise
            continue
        return reply.text.strip()
    raise AssertionError("unreachable")  # pragma: no cover


def _worth_retrying(error: Exception) -> bool:
    """Not a misuse, nor an HTTP status another attempt cannot cure (a 400, a 401...)."""
    if isinstance(error, (UsageError, ScriptExhaustedError)):
        return False
    if isinstance(error, APIStatusError):
        return status_is_retryable(error.status_code, {})
    return True


def _update(summary: str, kept: list[BaseMessage]) -> dict[str, Any]:
    note = HumanMessage(content=SUMMARY_PREFIX + summary,
                        additional_kwargs={"lc_source": "summarization"})
    return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), note, *kept]}


def _checked_summary(summary: object) -> str:
    if not isinstance(summary, str):
        raise UsageError(f"a summarizer returns a str, got {type(summary).__name__}")
    return summary.strip()


def _safe_cut(messages: list[BaseMessage], cut: int) -> int:
    """``cut``, moved back to the AI message whose calls the tool results at ``cut`` answer
    (or, failing that, forward past those results), so a call and its result stay together."""
    if cut >= len(messages) or not isinstance(messages[cut], ToolMessage):
        return cut
    ids: set[str] = set()
    end = cut
    while end < len(messages) and isinstance(messages[end], ToolMessage):
        message = messages[end]
        assert isinstance(message, ToolMessage)
        if message.tool_call_id:
            ids.add(message.tool_call_id)
        end += 1
    for position in range(cut - 1, -1, -1):
        message = messages[position]
        if isinstance(message, AIMessage) and ids & {c["id"] for c in message.tool_calls
                                                     if c["id"]}:
            return position
    return end


def _max_input_tokens(model: BaseChatModel) -> int | None:
    profile = getattr(model, "profile", None)
    window = profile.get("max_input_tokens") if isinstance(profile, Mapping) else None
    return window if isinstance(window, int) else None


def _checked_size(size: Any, what: str) -> ContextSize:
    if not (isinstance(size, tuple) and len(size) == 2):
        raise UsageError(f"{what} is a (kind, value) tuple such as ('messages', 20), "
                         f"got {size!r}")
    kind, value = size
    _check(kind, value, what)
    return (kind, value)


def _check(kind: Any, value: Any, what: str) -> None:
    if kind not in _KINDS:
        raise UsageError(f"{what}: the kind is one of {list(_KINDS)}, got {kind!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{what}: a {kind} value is a number, got {value!r}")
    if kind == "fraction" and not 0 < value <= 1:
        raise UsageError(f"{what}: a fraction is in (0, 1], got {value!r}")
    if kind != "fraction" and (not isinstance(value, int) or value <= 0):
        raise UsageError(f"{what}: a {kind} threshold is a positive int, got {value!r}")


def _clauses(trigger: Any) -> list[dict[str, float]]:
    """The trigger as a list of clauses: any clause met triggers, when all of its are."""
    if trigger is None:
        return []
    items = trigger if isinstance(trigger, list) else [trigger]
    clauses: list[dict[str, float]] = []
    for item in items:
        if isinstance(item, tuple):
            kind, value = _checked_size(item, "trigger")
            clauses.append({kind: value})
        elif isinstance(item, Mapping) and item:
            for kind, value in item.items():
                _check(kind, value, "trigger")
            clauses.append(dict(item))
        else:
            raise UsageError(
                "trigger is a ('tokens', n) / ('messages', n) / ('fraction', f) tuple, a "
                "non-empty dict of such thresholds, or a list of either; got "
                f"{item!r}"
            )
    return clauses


def as_xml(messages: Sequence[BaseMessage]) -> str:
    """``messages`` as ``<message type="...">`` elements, one per line, as LangChain's
    ``get_buffer_string(format="xml")`` shows text and tool calls."""
    lines: list[str] = []
    for message in messages:
        kind = quoteattr(message.type)
        text = " ".join(_text_parts(message))
        calls = message.tool_calls if isinstance(message, AIMessage) else []
        if not calls:
            lines.append(f"<message type={kind}>{text}</message>")
            continue
        parts = [f"<message type={kind}>"]
        if text:
            parts.append(f"  <content>{text}</content>")
        for call in calls:
            parts.append(f"  <tool_call id={quoteattr(call['id'] or '')} "
                         f"name={quoteattr(call['name'])}>"
                         f"{escape(dumps(call['args'], ensure_ascii=False), quote=False)}"
                         "</tool_call>")
        parts.append("</message>")
        lines.append("\n".join(parts))
    return "\n".join(lines)


def _text_parts(message: BaseMessage) -> list[str]:
    content = message.content
    if isinstance(content, str):
        return [escape(content, quote=False)] if content else []
    parts = []
    for block in content:
        text = block if isinstance(block, str) else (
            block.get("text", "") if block.get("type") == "text" else "")
        if text:
            parts.append(escape(text, quote=False))
    return parts
