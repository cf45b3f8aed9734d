"""docs/providers.md runs as written: its provider, built on the public API alone, streams from a
real server on loopback the way the built-in providers do.

The page's Python blocks run in order in one namespace. The provider (Ollama's native
``/api/chat``, JSON lines rather than server-sent events) then gets what the built-in providers
get: replies cut at every byte, inside UTF-8 characters too; a held demand that stops the socket
reads and a disposal that frees the connection; retries before the first token and none after;
the partial reply on every failure after it; an agent run through a tool call.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import reactivex.operators as ops
from hypothesis import given
from hypothesis import strategies as st

from rxagent import (
    APIConnectionError,
    ModelCallIdleTimeoutError,
    StreamProtocolError,
    create_agent,
    to_async_iterator,
)
from rxagent.chat_models import HTTPChatModel, RetryPolicy, Timeouts
from rxagent.messages import AIMessageChunk

from .loopback import HANGUP, STALL, Reply, serve
from .transcripts import merge
from .wires import CountingTransport

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
NDJSON = "application/x-ndjson"
MODEL = "llama3.2"
HI = [{"role": "user", "content": "How is the weather?"}]
# Non-ASCII on purpose: cut into 1-byte pieces, these characters arrive split across reads.
TOKENS = ["Sunny", " in", " Orléans", " ☀️", ", 28", " °C", "."]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def run_doc() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "providers_doc"}
    for index, block in enumerate(python_blocks()):
        exec(compile(block, f"docs/providers.md[{index}]", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return run_doc()


def model(doc: dict[str, Any], url: str, **kwargs: Any) -> HTTPChatModel:
    made = doc["ChatOllamaNative"](MODEL, base_url=url, **kwargs)
    assert isinstance(made, HTTPChatModel)
    return made


def line(**fields: Any) -> str:
    return json.dumps({"model": MODEL, "created_at": "2025-01-01T00:00:00Z", **fields},
                      ensure_ascii=False) + "\n"


def token(text: str) -> str:
    return line(message={"role": "assistant", "content": text}, done=False)


def done(reason: str = "stop") -> str:
    return line(message={"role": "assistant", "content": ""}, done=True, done_reason=reason,
                prompt_eval_count=26, eval_count=7)


def reply(tokens: list[str]) -> str:
    return "".join(token(t) for t in tokens) + done()


def tool_call_reply(name: str, arguments: dict[str, Any]) -> str:
    call = {"function": {"name": name, "arguments": arguments}}
    return line(message={"role": "assistant", "content": "", "tool_calls": [call]},
                done=False) + done()


async def collect(made: HTTPChatModel, max_buffer: int = 1000) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        return [c async for c in to_async_iterator(made.stream(HI), max_buffer=max_buffer)]


async def collect_until_error(made: HTTPChatModel) -> tuple[list[AIMessageChunk], Exception]:
    chunks: list[AIMessageChunk] = []
    with anyio.fail_after(10):
        try:
            async for chunk in to_async_iterator(made.stream(HI)):
                chunks.append(chunk)
        except Exception as error:
            return chunks, error
    raise AssertionError("the stream did not fail")


# -- the page itself ---------------------------------------------------------------------------


def test_the_page_has_the_examples_these_tests_expect(doc: dict[str, Any]) -> None:
    assert len(python_blocks()) == 3
    for name in ("EchoModel", "JSONLines", "OllamaParser", "ChatOllamaNative", "main"):
        assert name in doc


def test_the_examples_import_only_public_names() -> None:
    imported: list[str] = []
    for block in python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("rxagent") for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rxagent"):
                assert node.module is not None and node.level == 0
                assert not any(part.startswith("_") for part in node.module.split("."))
                public = importlib.import_module(node.module).__all__
                for alias in node.names:
                    assert alias.name in public, f"{alias.name} is not in {node.module}.__all__"
                    imported.append(alias.name)
    assert {"HTTPChatModel", "StreamRequest", "make_chunk", "BaseChatModel"} <= set(imported)


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_the_doc_s_decoder_gives_the_same_lines_however_the_body_is_cut(
    cuts: list[int],
) -> None:
    decoder_class = run_doc()["JSONLines"]
    body = (reply(TOKENS) + "\n" + token("no newline at the end")).encode()
    whole = decoder_class()
    expected = [*whole.feed(body), *whole.flush()]
    assert len(expected) == len(TOKENS) + 2
    decoder = decoder_class()
    events: list[bytes] = []
    start = 0
    for cut in sorted({min(c, len(body)) for c in cuts}):
        events += decoder.feed(body[start:cut])
        start = cut
    events += decoder.feed(body[start:])
    events += decoder.flush()
    assert events == expected


# -- streaming over loopback ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("piece", [1, 2, 7, None], ids=["1-byte", "2-bytes", "7-bytes", "whole"])
async def test_the_provider_streams_a_reply_cut_anywhere(
    doc: dict[str, Any], piece: int | None
) -> None:
    async with serve(Reply([reply(TOKENS)], piece=piece, content_type=NDJSON)) as server:
        chunks = await collect(model(doc, server.url, temperature=0))
    assert [c.content for c in chunks] == [*TOKENS, ""]
    assert len({c.id for c in chunks}) == 1
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.response_metadata == {"finish_reason": "stop", "model_provider": "ollama",
                                      "model_name": MODEL}
    assert last.usage_metadata == {"input_tokens": 26, "output_tokens": 7, "total_tokens": 33}
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.json == {"model": MODEL, "messages": [{"role": "user",
                                                          "content": "How is the weather?"}],
                            "stream": True, "temperature": 0}


@pytest.mark.anyio
async def test_the_page_s_usage_example_runs(doc: dict[str, Any]) -> None:
    async with serve(Reply([reply(TOKENS)], piece=3, content_type=NDJSON)) as server:
        with anyio.fail_after(10):
            text = await doc["main"](server.url)
    assert text == "".join(TOKENS)
    assert server.requests[0].json["messages"][0]["content"] == "Why is the sky blue?"


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It's always sunny in {city}!"


@pytest.mark.anyio
async def test_an_agent_runs_a_tool_through_the_provider(doc: dict[str, Any]) -> None:
    replies = [Reply([tool_call_reply("get_weather", {"city": "Orléans"})], piece=5,
                     content_type=NDJSON),
               Reply([reply(TOKENS)], piece=5, content_type=NDJSON)]
    async with serve(*replies) as server:
        agent = create_agent(model(doc, server.url), tools=[get_weather])
        with anyio.fail_after(10):
            states = [s async for s in agent.astream({"messages": HI}, stream_mode="values")]
    messages = states[-1]["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1].tool_calls == [{"name": "get_weather", "args": {"city": "Orléans"},
                                       "id": "call_1", "type": "tool_call"}]
    assert messages[1].response_metadata["finish_reason"] == "tool_calls"
    assert messages[2].content == "It's always sunny in Orléans!"
    assert messages[3].text == "".join(TOKENS)
    first, second = (request.json for request in server.requests)
    assert first["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather for a city.",
        "parameters": first["tools"][0]["function"]["parameters"]}}]
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert second["messages"][1:] == [
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Orléans"}}}]},
        {"role": "tool", "content": "It's always sunny in Orléans!"},
    ]


# -- failures: retried before the first token, kept as partial after it ----------------------------


@pytest.mark.anyio
async def test_an_overloaded_server_is_retried_after_its_delay(doc: dict[str, Any]) -> None:
    busy = Reply([json.dumps({"error": "server busy"})], status=503,
                 headers={"retry-after-ms": "10"}, content_type="application/json")
    async with serve(busy, Reply([reply(TOKENS)], content_type=NDJSON)) as server:
        made = model(doc, server.url)
        # Our own backoff would wait a minute: only the server's delay lets this finish.
        made.retry_policy = RetryPolicy(initial=60.0, maximum=60.0, jitter=0.0)
        chunks = await collect(made)
    assert merge(chunks).text == "".join(TOKENS)
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_a_missing_model_is_an_http_error_with_ollama_s_message(
    doc: dict[str, Any],
) -> None:
    missing = Reply([json.dumps({"error": "model 'llama9' not found"})], status=404,
                    content_type="application/json")
    async with serve(missing) as server:
        chunks, error = await collect_until_error(model(doc, server.url))
    assert chunks == []
    assert "HTTP 404" in str(error) and "model 'llama9' not found" in str(error)
    assert len(server.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["error-line", "hangup"])
async def test_a_failure_after_tokens_is_not_retried_and_keeps_the_partial(
    doc: dict[str, Any], failure: str
) -> None:
    opening = "".join(token(t) for t in TOKENS[:3])
    body = [opening + json.dumps({"error": "out of memory"}) + "\n"] if failure == "error-line" \
        else [opening, HANGUP]
    async with serve(Reply(body, content_type=NDJSON), Reply([reply(TOKENS)])) as server:
        chunks, error = await collect_until_error(model(doc, server.url))
    kind = StreamProtocolError if failure == "error-line" else APIConnectionError
    assert type(error) is kind
    assert [c.content for c in chunks] == TOKENS[:3]
    assert error.partial is not None and error.partial.text == "".join(TOKENS[:3])
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_json_lines_served_as_application_json_stream_too(doc: dict[str, Any]) -> None:
    # Only a server-sent-events stream served as JSON means the server ignored "stream".
    async with serve(Reply([reply(TOKENS)], content_type="application/json")) as server:
        chunks = await collect(model(doc, server.url))
    assert "".join(str(c.content) for c in chunks) == "".join(TOKENS)


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["on_event", "last_chunk", "decoder", "new parser"])
async def test_a_third_party_parser_s_own_exception_fails_the_call_inside_the_tree(
    doc: dict[str, Any], where: str
) -> None:
    base = doc["ChatOllamaNative"]

    class BuggyParser:
        def __init__(self, parser: Any) -> None:
            self.parser = parser
            self.seen = 0

        finished = property(lambda self: self.parser.finished)
        transient_error = property(lambda self: self.parser.transient_error)

        def on_event(self, event: Any) -> Any:
            self.seen += 1
            if where == "on_event" and self.seen == 4:
                raise KeyError("message")
            return self.parser.on_event(event)

        def last_chunk(self) -> Any:
            if where == "last_chunk":
                raise AttributeError("'NoneType' object has no attribute 'get'")
            return self.parser.last_chunk()

    class BuggyModel(base):  # type: ignore[misc, valid-type]
        def _parser(self, message_id: str) -> Any:
            if where == "new parser":
                raise TypeError("__init__() missing 1 required positional argument: 'model'")
            return BuggyParser(super()._parser(message_id))

        def _decoder(self) -> Any:
            decoder = super()._decoder()
            if where != "decoder":
                return decoder

            class Buggy:
                lines = 0

                def feed(self, data: bytes) -> Any:
                    events = decoder.feed(data)
                    self.lines += len(events)
                    if self.lines > 3:
                        raise ValueError("a line too odd")
                    return events

                def flush(self) -> Any:
                    return decoder.flush()

            return Buggy()

    piece = 1 if where == "decoder" else None
    async with serve(Reply([reply(TOKENS)], content_type=NDJSON, piece=piece)) as server:
        chunks, error = await collect_until_error(BuggyModel(MODEL, base_url=server.url))
    assert type(error) is StreamProtocolError
    assert "failed with" in str(error)
    delivered = "".join(str(c.content) for c in chunks)
    if where == "new parser":
        assert not chunks and error.partial is None
    else:
        assert error.partial is not None and error.partial.text == delivered
    if where == "last_chunk":
        assert delivered == "".join(TOKENS)


@pytest.mark.anyio
async def test_an_idle_timeout_keeps_the_partial_and_the_server_sees_the_client_go(
    doc: dict[str, Any],
) -> None:
    body = ["".join(token(t) for t in TOKENS[:2]), STALL]
    async with serve(Reply(body, content_type=NDJSON)) as server:
        made = model(doc, server.url, timeout=Timeouts(first_token=5, idle=0.2))
        chunks, error = await collect_until_error(made)
        await server.wait_disconnects(1)
    assert [c.content for c in chunks] == TOKENS[:2]
    assert isinstance(error, ModelCallIdleTimeoutError)
    assert error.partial is not None and error.partial.text == "".join(TOKENS[:2])


# -- backpressure and cancellation reach the socket ------------------------------------------------

BIG_TOKEN = "x" * 65536
BIG_COUNT = 1024  # 64 MiB of lines: more than the kernel buffers of both ends can hold


def big_body() -> Iterator[str]:
    for _ in range(BIG_COUNT):
        yield token(BIG_TOKEN)
    yield done()


@pytest.mark.anyio
async def test_a_held_demand_stops_the_socket_reads_and_disposing_frees_the_connection(
    doc: dict[str, Any],
) -> None:
    transport = CountingTransport(limits=httpx.Limits(max_connections=1))
    replies = [Reply(big_body(), content_type=NDJSON), Reply([reply(TOKENS)],
                                                             content_type=NDJSON)]
    async with serve(*replies) as server, httpx.AsyncClient(transport=transport) as client:
        made = model(doc, server.url, http_client=client)
        iterator = to_async_iterator(made.stream(HI), max_buffer=2)
        with anyio.fail_after(10):
            first = await iterator.__anext__()
            # The consumer stops asking. Were the socket still read, the client would be
            # through many megabytes by now.
            await anyio.sleep(0.3)
            assert transport.bytes_read < 2 * 1024 * 1024
            assert server.bodies_completed == 0
            # Disposing while the read loop waits on the demand closes the response...
            await iterator.aclose()
            await server.wait_disconnects(1)
            # ...and gives the pool's only connection back: this call could not start else.
            assert (await made.ainvoke(HI)).text == "".join(TOKENS)
    assert first.content == BIG_TOKEN
    assert server.connections == 2


@pytest.mark.anyio
async def test_the_echo_model_waits_for_the_consumer(doc: dict[str, Any]) -> None:
    words = [f"w{n}" for n in range(200)]
    produced = 0

    def count(_: AIMessageChunk) -> None:
        nonlocal produced
        produced += 1

    stream = doc["EchoModel"]().stream(" ".join(words)).pipe(ops.do_action(on_next=count))
    iterator = to_async_iterator(stream, max_buffer=4)
    with anyio.fail_after(10):
        received = [await iterator.__anext__()]
        await anyio.sleep(0.1)
        held_at = produced
        received += [chunk async for chunk in iterator]
    assert held_at <= 16  # the model stopped at about the buffer's size
    assert merge(received).text == " ".join(words)
    assert received[-1].chunk_position == "last"
    assert received[-1].response_metadata["finish_reason"] == "stop"
