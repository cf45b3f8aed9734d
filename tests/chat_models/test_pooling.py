"""Connection reuse: a model given no http_client keeps one pooled client per event loop.

The loopback server counts the TCP connections it accepted and those the client closed, so
each test sees on the wire whether a connection was reused, and when it was let go.
"""

from __future__ import annotations

import gc
import threading

import anyio
import httpx
import pytest

from rxagent import APIConnectionError, UsageError, to_iterator
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, Timeouts

from .loopback import STALL, Reply, serve, serve_in_thread
from .transcripts import (
    ANTHROPIC_TOOL_USE,
    OPENAI_TEXT,
    OPENAI_TEXT_ANSWER,
    openai_chunk,
    sse,
)

HI = [{"role": "user", "content": "What is the weather in SF?"}]


def openai(url: str, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI("m", api_key="k", base_url=url + "/v1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_two_calls_share_one_connection_until_the_model_is_closed() -> None:
    async with serve(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as server:
        model = openai(server.url)
        for _ in range(2):
            assert (await model.ainvoke(HI)).text == OPENAI_TEXT_ANSWER
        assert server.connections == 1 and server.disconnects == 0
        await model.aclose()
        await server.wait_disconnects(1)
        with pytest.raises(UsageError, match="closed"):
            await model.ainvoke(HI)


@pytest.mark.anyio
async def test_anthropic_reuses_its_connection_too_and_async_with_closes_it() -> None:
    async with serve(Reply([ANTHROPIC_TOOL_USE]), Reply([ANTHROPIC_TOOL_USE])) as server:
        async with ChatAnthropic("m", api_key="k", base_url=server.url) as model:
            await model.ainvoke(HI)
            await model.ainvoke(HI)
        assert server.connections == 1
        await server.wait_disconnects(1)


@pytest.mark.anyio
async def test_a_model_garbage_collected_closes_its_connection() -> None:
    async with serve(Reply([OPENAI_TEXT])) as server:
        model = openai(server.url)
        await model.ainvoke(HI)
        del model
        gc.collect()
        await server.wait_disconnects(1)


def test_sync_invokes_on_one_thread_share_a_connection_and_close_it_with_the_model() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, portal):
        model = openai(server.url)
        assert model.invoke(HI).text == OPENAI_TEXT_ANSWER
        assert model.invoke(HI).text == OPENAI_TEXT_ANSWER
        assert server.connections == 1
        model.close()
        portal.call(server.wait_disconnects, 1)


def test_a_thread_that_ends_closes_its_loop_s_client() -> None:
    # Worker threads come and go (a thread pool's, rxagent's own for sync tools): the loop a
    # thread drove for sync calls ends with it, and takes the socket along.
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, portal):
        model = openai(server.url)
        answers: list[str] = []

        def call() -> None:
            answers.append(model.invoke(HI).text)
            answers.append("".join(str(c.content) for c in to_iterator(model.stream(HI))))

        worker = threading.Thread(target=call)
        worker.start()
        worker.join(timeout=10)
        assert answers == [OPENAI_TEXT_ANSWER, OPENAI_TEXT_ANSWER]
        assert server.connections == 1
        portal.call(server.wait_disconnects, 1)


def test_sync_streams_share_their_thread_loop_s_connection() -> None:
    # Sync iterators drive a loop of the thread's own between runs; closing the model on that
    # thread closes the client there and then.
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, portal):
        with openai(server.url) as model:
            for _ in range(2):
                assert "".join(str(c.content) for c in to_iterator(model.stream(HI)))
            assert server.connections == 1
        portal.call(server.wait_disconnects, 1)


def test_the_end_of_a_trio_run_closes_its_client() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, portal):
        model = openai(server.url)
        for _ in range(2):
            assert anyio.run(model.ainvoke, HI, backend="trio").text == OPENAI_TEXT_ANSWER
        portal.call(server.wait_disconnects, 2)


@pytest.mark.anyio
async def test_waiting_for_a_pooled_connection_fails_after_the_connect_timeout() -> None:
    # A client whose pool is full: the second call waits for a connection no longer than it
    # would wait to connect, and says why it failed.
    stalled = Reply([sse(openai_chunk({"content": "Hi"}), done=False), STALL])
    async with serve(stalled) as server, httpx.AsyncClient(
        limits=httpx.Limits(max_connections=1)
    ) as client:
        model = openai(server.url, http_client=client,
                       timeout=Timeouts(connect=0.2, first_token=30, idle=30))
        async with anyio.create_task_group() as group:
            group.start_soon(model.ainvoke, HI)
            with anyio.fail_after(5):
                while not server.requests:
                    await anyio.sleep(0.01)
                with pytest.raises(APIConnectionError, match="free connection in the HTTP"):
                    await openai(server.url, http_client=client, max_retries=0,
                                 timeout=Timeouts(connect=0.2, first_token=30, idle=30)
                                 ).ainvoke(HI)
            group.cancel_scope.cancel()
