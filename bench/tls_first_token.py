"""Time to first token of a model's second call, over TLS on loopback: pooled against fresh.

A model given no ``http_client`` keeps one pooled client per event loop, so its second call
reuses the first call's TLS connection. ``fresh`` is what each call paid before: a new
client, so a new TCP connection and TLS handshake (here a new model per call, which makes its
own pool). The server is an HTTPS server in this process that streams a short OpenAI reply
at once, so the time to the first token is the client's own cost plus one round trip on
loopback, which is what reuse saves. A self-signed certificate is made with ``openssl`` for
the run, and trusted through ``SSL_CERT_FILE``. Both variants run in turn, ``--calls`` pairs
of calls each, best and median reported; the figure that matters is the ratio.

    python bench/tls_first_token.py               # 200 pairs of calls
    python bench/tls_first_token.py --calls 5     # a smoke pass
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from rxagent.chat_models import ChatOpenAI

_REPLY = b"".join(
    b"data: " + json.dumps(chunk).encode() + b"\n\n"
    for chunk in (
        {"id": "c", "object": "chat.completion.chunk", "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        {"id": "c", "object": "chat.completion.chunk", "model": "m",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    )
) + b"data: [DONE]\n\n"

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"content-length: " + str(len(_REPLY)).encode() + b"\r\n\r\n"
)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on a kept-alive connection with the same short reply."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            writer.write(_HEAD + _REPLY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def first_token(model: ChatOpenAI) -> float:
    """Seconds from the call to its first chunk; the call is then read to its end."""
    start = time.perf_counter()
    elapsed = None
    async for _ in model.astream([{"role": "user", "content": "Hello"}]):
        if elapsed is None:
            elapsed = time.perf_counter() - start
    assert elapsed is not None
    return elapsed


async def measure(url: str, calls: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {"pooled": [], "fresh": []}
    pooled = ChatOpenAI("m", api_key="sk-bench", base_url=url)
    await first_token(pooled)  # the pooled model's first call, which connects
    for _ in range(calls):
        seconds["pooled"].append(await first_token(pooled))
        async with ChatOpenAI("m", api_key="sk-bench", base_url=url) as fresh:
            seconds["fresh"].append(await first_token(fresh))
    await pooled.aclose()
    return seconds


async def main_async(calls: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        cert, key = make_certificate(Path(folder))
        # Read by the first client the models make (httpx's trust_env).
        os.environ["SSL_CERT_FILE"] = str(cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = await asyncio.start_server(serve_connection, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await measure(f"https://127.0.0.1:{port}/v1", calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="one JSON object, for tests")
    args = parser.parse_args()
    seconds = asyncio.run(main_async(args.calls))
    row = {
        variant: {"best_ms": min(values) * 1e3, "median_ms": statistics.median(values) * 1e3}
        for variant, values in seconds.items()
    }
    ratio = row["fresh"]["median_ms"] / row["pooled"]["median_ms"]
    if args.json:
        print(json.dumps({**row, "calls": args.calls, "fresh_over_pooled": ratio}))
        return
    print(f"second call's time to first token over TLS on loopback, {args.calls} calls each")
    for variant, figures in row.items():
        print(f"  {variant:7} best {figures['best_ms']:7.2f} ms   "
              f"median {figures['median_ms']:7.2f} ms")
    print(f"  fresh / pooled (medians): {ratio:.1f}x")


if __name__ == "__main__":
    main()
