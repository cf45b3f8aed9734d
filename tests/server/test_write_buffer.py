"""``rxagent serve``'s connections hold at most one batch of frames in asyncio's write buffer,
not its 64 KiB default: what a stream whose client stops reading keeps in the server once the
socket's own buffers are full."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.server import ServerState

from rxagent.server._serve import WRITE_BUFFER_HIGH, http_protocol


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError


def test_a_connection_write_buffer_is_one_batch() -> None:
    async def main() -> tuple[int, int]:
        config = uvicorn.Config(_app, ws="none", lifespan="off")
        config.load()
        protocol_class = http_protocol()
        made: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            protocol = protocol_class(  # type: ignore[call-arg]
                config=config, server_state=ServerState(), app_state={})
            made.append(protocol)
            return protocol

        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if made and getattr(made[0], "transport", None) is not None:
                break
            await asyncio.sleep(0.01)
        limits = made[0].transport.get_write_buffer_limits()  # type: ignore[attr-defined]
        writer.close()
        server.close()
        await server.wait_closed()
        return limits  # type: ignore[no-any-return]

    low, high = asyncio.run(main())
    assert high == WRITE_BUFFER_HIGH == 2048
    assert low < high
