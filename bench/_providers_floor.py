"""The floor: httpx streaming, a split on blank lines and ``json.loads`` per event.

What any Python client must pay at least to get each token off the wire: read the body with
httpx, cut it into events at ``\\n\\n``, parse each event's JSON, pick the delta out. Written
as tightly as is fair (locals bound once, one function call per read rather than per event)
but still doing what a client must: no event skipped unparsed, every piece kept. It knows the
server's framing (``\\n\\n``, one ``data:`` line per event), which a real client cannot assume;
that makes it a floor, not a competitor.
"""

from __future__ import annotations

import json

import _providers_wire as wire
import httpx
from _providers_rows import API_KEY, QUESTION, Delivered, Row, sync_and_async

_loads = json.loads


def _openai_events(events: list[bytes], out: Delivered) -> None:
    text, args = out.text.append, out.args.append
    for event in events:
        payload = event[6:]  # after "data: "
        if payload == b"[DONE]":
            continue
        choices = _loads(payload)["choices"]
        if choices:
            delta = choices[0]["delta"]
            content = delta.get("content")
            if content:
                text(content)
            calls = delta.get("tool_calls")
            if calls:
                piece = calls[0]["function"].get("arguments")
                if piece:
                    args(piece)


def _anthropic_events(events: list[bytes], out: Delivered) -> None:
    text, args = out.text.append, out.args.append
    for event in events:
        data = _loads(event[event.index(b"data: ") + 6:])
        if data["type"] == "content_block_delta":
            delta = data["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                text(delta["text"])
            elif kind == "input_json_delta":
                args(delta["partial_json"])


def _request(port: int, wire_name: str, kind: str, count: int) -> tuple[str, dict, dict]:
    url = wire.base_url(port, wire_name, kind, count)
    if wire_name == wire.OPENAI:
        return (url + "/chat/completions",
                {"authorization": f"Bearer {API_KEY}"},
                {"model": wire.OPENAI_MODEL, "stream": True,
                 "messages": [{"role": "user", "content": QUESTION}]})
    return (url + "/v1/messages",
            {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
            {"model": wire.ANTHROPIC_MODEL, "max_tokens": 64_000, "stream": True,
             "messages": [{"role": "user", "content": QUESTION}]})


def rows(port: int, wire_name: str, kind: str, count: int) -> list[Row]:
    url, headers, body = _request(port, wire_name, kind, count)
    parse = _openai_events if wire_name == wire.OPENAI else _anthropic_events
    client = httpx.Client(timeout=60)
    aclient = httpx.AsyncClient(timeout=60)

    def sync() -> Delivered:
        out = Delivered()
        rest = b""
        with client.stream("POST", url, headers=headers, json=body) as response:
            response.raise_for_status()
            for data in response.iter_bytes():
                events = (rest + data).split(b"\n\n")
                rest = events.pop()
                parse(events, out)
        return out

    async def run_async() -> Delivered:
        out = Delivered()
        rest = b""
        async with aclient.stream("POST", url, headers=headers, json=body) as response:
            response.raise_for_status()
            async for data in response.aiter_bytes():
                events = (rest + data).split(b"\n\n")
                rest = events.pop()
                parse(events, out)
        return out

    return sync_and_async(wire_name, kind, "model", "floor",
                          ("httpx + split + json.loads", "httpx async + split + json.loads"),
                          sync, run_async)
