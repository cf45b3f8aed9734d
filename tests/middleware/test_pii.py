"""PIIMiddleware: its detectors and strategies against LangChain's, the agent's streams against
LangChain's, and a block ending the run."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents.middleware import PIIMiddleware as LcPII

import rxagent
import rxagent.middleware as rx_middleware
from rxagent.messages import AIMessage, HumanMessage
from rxagent.testing import ScriptedChatModel

from .test_parity import LIBS, Ids, model, prompts, stream

TEXTS = [
    "Mail ann.lee+work@example.co.uk or bob@test.org, not me@localhost or a@b.c.",
    "Card 4111 1111 1111 1111, also 4111-1111-1111-1111 and 4111111111111111; "
    "not 4111 1111 1111 1112 nor 1234567812345678.",
    "Hosts 192.168.0.1 and 10.0.0.255, not 999.1.1.1 or 1.2.3.",
    "MACs 00:1A:2b:3C:4d:5E and 00-1a-2b-3c-4d-5e, not 00:1A:2B:3C:4D.",
    "See https://example.com/a?b=c, http://x.io, www.site.org, docs.python.org/3/ and "
    "plain example.com or ftp://host.net/file.",
    "Nothing here at all.",
    "Ünïcödé ann@exämple.com and "
    + " ".join(["\u0664\u0661\u0661\u0661"] + ["\u0661" * 4] * 3) + " digits",
]
KINDS = ["email", "credit_card", "ip", "mac_address", "url"]


@pytest.mark.parametrize("strategy", ["redact", "mask", "hash"])
@pytest.mark.parametrize("kind", KINDS)
def test_detectors_and_strategies_as_in_langchain(kind: str, strategy: str) -> None:
    ours = rx_middleware.PIIMiddleware(kind, strategy=strategy)  # type: ignore[arg-type]
    theirs = LcPII(kind, strategy=strategy)  # type: ignore[arg-type]
    for text in TEXTS:
        assert ours.detector(text) == theirs.detector(text), text
        assert ours._cleaned(text) == (theirs._process_content(text)[0]
                                       if theirs.detector(text) else None), text
    blocks = [{"type": "text", "text": TEXTS[0]}, {"type": "image", "url": "u"}, TEXTS[2]]
    assert ours._cleaned(blocks) == (theirs._process_content(blocks)[0]  # type: ignore[arg-type]
                                     if ours._cleaned(blocks) is not None else None)


def test_a_custom_regex_and_function_detector_as_in_langchain() -> None:
    text = "key sk-abc123 and sk-zzz"
    for detector in [r"sk-[a-z0-9]+",
                     lambda s: [{"text": "sk-zzz", "start": s.index("sk-zzz"),
                                 "end": len(s)}]]:
        ours = rx_middleware.PIIMiddleware("api_key", detector=detector, strategy="mask")
        theirs = LcPII("api_key", detector=detector, strategy="mask")
        assert ours.detector(text) == theirs.detector(text)
        assert ours._cleaned(text) == theirs._process_content(text)[0]


USER = {"messages": [{"role": "user",
                      "content": "I am ann@example.com, look up 192.168.0.1 for me."}]}
REPLIES = [[{"name": "lookup", "args": {"host": "192.168.0.1"}, "id": "l1"}],
           "Your card 4111 1111 1111 1111 is on file at www.bank.com."]


def lookup(host: str) -> str:
    """Look up a host."""
    return f"{host} belongs to bob@corp.com at 10.0.0.7"


def guarded(name: str) -> tuple[Any, Any]:
    lib = LIBS[name]
    fake = model(name, REPLIES)
    agent = lib.agents.create_agent(fake, tools=[lib.base.tool(lookup)], middleware=[
        lib.mw.PIIMiddleware("email", strategy="redact", apply_to_tool_results=True),
        lib.mw.PIIMiddleware("ip", strategy="hash", apply_to_input=False,
                             apply_to_tool_results=True),
        lib.mw.PIIMiddleware("credit_card", strategy="mask", apply_to_output=True),
        lib.mw.PIIMiddleware("url", strategy="redact", apply_to_input=False,
                             apply_to_output=True),
    ])
    return agent, fake


@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
def test_pii_middleware_streams_as_in_langchain(modes: list[str]) -> None:
    results = {}
    for name in LIBS:
        agent, fake = guarded(name)
        number = Ids()
        results[name] = (stream(agent, USER, modes, number), prompts(fake.seen, number))
    assert results["rxagent"] == results["langchain"]
    steps = [next(iter(e[1])) for e in results["rxagent"][0] if e[0] == "updates"]
    assert "PIIMiddleware[email].before_model" in steps


def test_block_fails_the_run_before_the_model_sees_anything() -> None:
    scripted = ScriptedChatModel(["never"])
    agent = rxagent.create_agent(scripted, middleware=[
        rx_middleware.PIIMiddleware("email", strategy="block")])
    with pytest.raises(rx_middleware.PIIDetectionError, match="1 instance") as caught:
        agent.invoke({"messages": [HumanMessage(content="mail ann@example.com")]})
    assert caught.value.pii_type == "email"
    assert caught.value.matches[0]["value"] == "ann@example.com"
    assert scripted.calls == []
    assert issubclass(rx_middleware.PIIDetectionError, rxagent.RunError)


@pytest.mark.parametrize("kwargs, match", [
    ({"pii_type": "passport"}, "unknown PII type"),
    ({"pii_type": "email", "strategy": "shred"}, "strategy"),
    ({"pii_type": "key", "detector": "("}, "regular expression"),
    ({"pii_type": "key", "detector": 42}, "detector"),
])
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        rx_middleware.PIIMiddleware(**kwargs)


@pytest.mark.anyio
async def test_async_runs_redact_input_and_output() -> None:
    scripted = ScriptedChatModel(["Write to bob@corp.com"])
    agent = rxagent.create_agent(scripted, middleware=[
        rx_middleware.PIIMiddleware("email", apply_to_output=True)])
    final = [v async for v in agent.astream(
        {"messages": [HumanMessage(content="I am ann@example.com")]}, stream_mode="values")][-1]
    assert [m.content for m in final["messages"]] == [
        "I am [REDACTED_EMAIL]", "Write to [REDACTED_EMAIL]"]
    assert scripted.calls[0].messages[0].content == "I am [REDACTED_EMAIL]"
    assert isinstance(final["messages"][1], AIMessage)
