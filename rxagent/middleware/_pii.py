"""``PIIMiddleware``: find personal data in messages and block, redact, mask or hash it.

One middleware per kind of data (``"email"``, ``"credit_card"``, ``"ip"``, ``"mac_address"``,
``"url"``, or a kind of your own with a detector). It looks at the last user message before
each model step (``apply_to_input``), the tool results since the last AI message
(``apply_to_tool_results``), and the model's reply after each model step
(``apply_to_output``), and rewrites the message in the state: the model, the checkpoint and
``values`` see the rewritten text. Its steps are named ``"PIIMiddleware[<kind>].<hook>"``.

What streams token by token in ``messages`` mode is the model's reply as it came, before the
``after_model`` step rewrites it, as in LangChain's ``stream()``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, TypedDict
from urllib.parse import urlparse

from .._exceptions import PIIDetectionError, UsageError
from .._messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from ..runtime import Runtime
from ._types import AgentMiddleware, hook_config

__all__ = [
    "PIIDetectionError",
    "PIIMatch",
    "PIIMiddleware",
    "detect_credit_card",
    "detect_email",
    "detect_ip",
    "detect_mac_address",
    "detect_url",
]

Strategy: TypeAlias = Literal["block", "redact", "mask", "hash"]
_STRATEGIES = ("block", "redact", "mask", "hash")


class PIIMatch(TypedDict):
    """One piece of personal data found in a text: its kind, the text, where it is."""

    type: str
    value: str
    start: int
    end: int


Detector: TypeAlias = Callable[[str], list[PIIMatch]]

_EMAIL = re.compile(r"\b[\w.%+-]+@[A-Za-z0-9.-]+\.[A-Za-z|]{2,}\b", re.ASCII)
_CARD = re.compile(r"\b(?:\d{4}[\s-]?){3}\d{4}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", re.ASCII)
_MAC = re.compile(r"\b(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}\b")
_URL_WITH_SCHEME = re.compile(r"https?://[^\s<>\"{}|\\^`\[\]]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BARE_URL = re.compile(rf"\b(?:www\.)?{_LABEL}(?:\.{_LABEL})+(?:/\S*)?")


def _found(kind: str, pattern: re.Pattern[str], text: str,
           keep: Callable[[str], bool] = lambda value: True) -> list[PIIMatch]:
    return [PIIMatch(type=kind, value=m.group(), start=m.start(), end=m.end())
            for m in pattern.finditer(text) if keep(m.group())]


def detect_email(content: str) -> list[PIIMatch]:
    """Email addresses in ``content``."""
    return _found("email", _EMAIL, content)


def detect_credit_card(content: str) -> list[PIIMatch]:
    """Card numbers in ``content``: 16 digits in groups of four (spaces or dashes between
    them allowed) that pass the Luhn check."""
    return _found("credit_card", _CARD, content, _luhn)


def detect_ip(content: str) -> list[PIIMatch]:
    """IPv4 addresses in ``content`` (each octet checked)."""
    return _found("ip", _IPV4, content, _is_ip)


def detect_mac_address(content: str) -> list[PIIMatch]:
    """MAC addresses (six hex pairs, ``:`` or ``-`` between them) in ``content``."""
    return _found("mac_address", _MAC, content)


def detect_url(content: str) -> list[PIIMatch]:
    """URLs in ``content``: ``http(s)://...``, and bare ones that start with ``www.`` or have
    a path (``example.com/page``)."""
    found = _found("url", _URL_WITH_SCHEME, content,
                   lambda url: bool(urlparse(url).netloc))
    for match in _BARE_URL.finditer(content):
        start, end = match.start(), match.end()
        if any(m["start"] <= start < m["end"] or m["start"] < end <= m["end"] for m in found):
            continue
        url = match.group()
        if ("/" in url or url.startswith("www.")) and "." in urlparse(f"http://{url}").netloc:
            found.append(PIIMatch(type="url", value=url, start=start, end=end))
    return found


BUILTIN_DETECTORS: dict[str, Detector] = {
    "email": detect_email, "credit_card": detect_credit_card, "ip": detect_ip,
    "mac_address": detect_mac_address, "url": detect_url,
}


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _replacement(match: PIIMatch, strategy: Strategy) -> str:
    kind, value = match["type"], match["value"]
    if strategy == "redact":
        return f"[REDACTED_{kind.upper()}]"
    if strategy == "hash":
        return f"<{kind}_hash:{hashlib.sha256(value.encode()).hexdigest()[:8]}>"
    return _masked(kind, value)


def _masked(kind: str, value: str) -> str:
    if kind == "email":
        local, at, domain = value.partition("@")
        if not at or "@" in domain:
            return "****"
        return f"{local}@****.{domain.rsplit('.', 1)[1]}" if "." in domain else f"{local}@****"
    if kind == "credit_card":
        last = "".join(c for c in value if c.isdigit())[-4:]
        separator = "-" if "-" in value else " " if " " in value else ""
        return separator.join(["****"] * 3 + [last]) if separator else "*" * 12 + last
    if kind == "ip":
        octets = value.split(".")
        return f"*.*.*.{octets[-1]}" if len(octets) == 4 else "****"
    if kind == "mac_address":
        separator = ":" if ":" in value else "-"
        return separator.join(["**"] * 5 + [value[-2:]])
    if kind == "url":
        return "[MASKED_URL]"
    return f"****{value[-4:]}" if len(value) > 4 else "****"


def _apply(text: str, matches: list[PIIMatch], strategy: Strategy) -> str:
    if strategy == "block":
        raise PIIDetectionError(matches[0]["type"], matches)
    # From the end, so each match's offsets still hold when it is replaced.
    for match in sorted(matches, key=lambda m: m["start"], reverse=True):
        text = text[:match["start"]] + _replacement(match, strategy) + text[match["end"]:]
    return text


def _resolved(kind: str, detector: Detector | str | re.Pattern[str] | None) -> Detector:
    if detector is None:
        if kind not in BUILTIN_DETECTORS:
            raise UsageError(f"unknown PII type {kind!r}: one of {list(BUILTIN_DETECTORS)}, or "
                             "give a detector (a function or a regex)")
        return BUILTIN_DETECTORS[kind]
    if isinstance(detector, str):
        try:
            pattern = re.compile(detector)
        except re.error as error:
            raise UsageError(f"detector {detector!r} is not a regular expression: {error}") \
                from error
        return lambda text: _found(kind, pattern, text)
    if isinstance(detector, re.Pattern):
        compiled = detector
        return lambda text: _found(kind, compiled, text)
    if not callable(detector):
        raise UsageError("detector is a function, a regex (str or compiled) or None, got "
                         f"{detector!r}")
    custom = detector

    def normalised(text: str) -> list[PIIMatch]:
        return [PIIMatch(type=m.get("type", kind), value=m.get("value", m.get("text", "")),
                         start=m["start"], end=m["end"]) for m in custom(text)]

    return normalised


class PIIMiddleware(AgentMiddleware[Any, Any]):
    """Find one kind of personal data in messages and deal with it.

    Strategies: ``"block"`` raises :class:`~rxagent.middleware.PIIDetectionError` (the run fails);
    ``"redact"`` writes ``[REDACTED_EMAIL]``; ``"mask"`` keeps a little
    (``****-****-****-1234``, ``ann@****.com``, ``*.*.*.42``); ``"hash"`` writes
    ``<email_hash:1a2b3c4d>`` (the same value, the same hash).

    Args:
        pii_type: ``"email"``, ``"credit_card"``, ``"ip"``, ``"mac_address"``, ``"url"``,
            or a name of your own (then give ``detector``).
        strategy: what to do with what is found.
        detector: finds the data instead of the built-in detector: a regex (a string or a
            compiled pattern), or a function from a text to a list of :class:`PIIMatch`.
        apply_to_input: check the last user message before each model step.
        apply_to_output: check the model's reply after each model step.
        apply_to_tool_results: check the tool results since the last AI message, before
            each model step.

    Raises:
        UsageError: an unknown ``pii_type`` without a detector, an unknown strategy, or a
            detector that is not a regex or a function.
    """

    def __init__(
        self,
        pii_type: str,
        *,
        strategy: Strategy = "redact",
        detector: Detector | str | re.Pattern[str] | None = None,
        apply_to_input: bool = True,
        apply_to_output: bool = False,
        apply_to_tool_results: bool = False,
    ) -> None:
        if strategy not in _STRATEGIES:
            raise UsageError(f"strategy is one of {list(_STRATEGIES)}, got {strategy!r}")
        self.pii_type = pii_type
        self.strategy: Strategy = strategy
        self.detector = _resolved(pii_type, detector)
        self.apply_to_input = apply_to_input
        self.apply_to_output = apply_to_output
        self.apply_to_tool_results = apply_to_tool_results

    @property
    def name(self) -> str:
        """``"PIIMiddleware[<pii_type>]"``, so that several can be used together."""
        return f"{type(self).__name__}[{self.pii_type}]"

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Rewrite the last user message and the latest tool results."""
        messages: list[BaseMessage] = state["messages"]
        changed: dict[int, BaseMessage] = {}
        if self.apply_to_input:
            last = _last(messages, HumanMessage)
            if last is not None:
                self._rewrite(messages, last, changed)
        if self.apply_to_tool_results:
            reply = _last(messages, AIMessage)
            if reply is not None:
                for position in range(reply + 1, len(messages)):
                    if isinstance(messages[position], ToolMessage):
                        self._rewrite(messages, position, changed)
        return _update(messages, changed)

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`before_model`."""
        return self.before_model(state, runtime)

    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Rewrite the model's reply."""
        if not self.apply_to_output:
            return None
        messages: list[BaseMessage] = state["messages"]
        changed: dict[int, BaseMessage] = {}
        reply = _last(messages, AIMessage)
        if reply is not None:
            self._rewrite(messages, reply, changed)
        return _update(messages, changed)

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`after_model`."""
        return self.after_model(state, runtime)

    def _rewrite(self, messages: list[BaseMessage], position: int,
                 changed: dict[int, BaseMessage]) -> None:
        message = messages[position]
        if not message.content:
            return
        content = self._cleaned(message.content)
        if content is None:
            return
        if message.id is None:
            # TODO(core): a run off a thread leaves its input and tool messages without ids
            # (LangGraph's add_messages gives every message one), and a hook's message without
            # an id is appended, not put in place. Give the state's message an id here, as
            # LangChain's SummarizationMiddleware does, so the rewrite replaces it.
            message.id = str(uuid.uuid4())
        changed[position] = message.model_copy(update={"content": content})

    def _cleaned(self, content: Any) -> Any:
        """``content`` with what the detector finds dealt with, or ``None`` when it finds
        nothing. Only text is looked at: a str, and the text of text blocks."""
        if isinstance(content, str):
            matches = self.detector(content)
            return _apply(content, matches, self.strategy) if matches else None
        blocks: list[Any] = []
        found = False
        for block in content:
            text = block if isinstance(block, str) else (
                block.get("text") if isinstance(block, Mapping) else None)
            matches = self.detector(text) if isinstance(text, str) else []
            if matches and isinstance(text, str):
                found = True
                text = _apply(text, matches, self.strategy)
                block = text if isinstance(block, str) else {**block, "text": text}
            blocks.append(block)
        return blocks if found else None

    def __repr__(self) -> str:
        return f"PIIMiddleware({self.pii_type!r}, strategy={self.strategy!r})"


def _last(messages: list[BaseMessage], kind: type[BaseMessage]) -> int | None:
    return next((i for i in range(len(messages) - 1, -1, -1)
                 if isinstance(messages[i], kind)), None)


def _update(messages: list[BaseMessage], changed: dict[int, BaseMessage]
            ) -> dict[str, Any] | None:
    if not changed:
        return None
    return {"messages": [changed.get(i, m) for i, m in enumerate(messages)]}
