"""``POST /agui/{assistant_id}``: an agent over AG-UI, for CopilotKit and ``@ag-ui/client``.

The body is AG-UI's ``RunAgentInput``; the answer streams the run's AG-UI events
(``rxagent.agui.events``) as SSE, encoded by ``ag_ui.encoder.EventEncoder``. The thread
(``threadId``) keeps its conversation in the server's checkpointer, so only the messages it does
not hold yet are added (``rxagent.agui.agent_input``); it is the same thread the LangGraph API
shows (``GET /threads/{threadId}/state``). The run belongs to the request: a client that leaves
cancels it, as AG-UI's clients expect when they abort.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .._bridges import to_async_iterator
from .._exceptions import InvalidMessageError, RxAgentError
from ._routes import ApiError, Server, json_response
from ._threads import ThreadStatus

__all__ = ["agui_route"]

logger = logging.getLogger("rxagent.server")

# As the LangGraph API's streams: the agent's stream buffers little in front of the socket,
# so a slow client holds the run back through the demand signal.
_BRIDGE_BUFFER = 16


def _public_message(error: BaseException) -> str:
    # As the LangGraph API's error frames: rxagent's errors are written to be shown; any
    # other exception's text may hold internals, so it stays in the log.
    if isinstance(error, RxAgentError):
        return str(error)
    logger.error("an AG-UI run failed", exc_info=error)
    return "the run failed; the server's log has the details"


def agui_route(server: Server) -> Route:
    """The route serving ``server``'s agents over AG-UI."""

    async def endpoint(request: Request) -> Response:
        try:
            return await _run(server, request)
        except ApiError as error:
            return json_response({"detail": error.detail}, error.status)

    return Route("/agui/{assistant_id}", endpoint, methods=["POST"])


async def _run(server: Server, request: Request) -> Response:
    try:
        from ag_ui.core import (
            RunAgentInput,
            RunErrorEvent,
            RunFinishedEvent,
            RunFinishedInterruptOutcome,
        )
        from ag_ui.encoder import EventEncoder

        from .. import agui
    except (ImportError, RxAgentError):
        raise ApiError(501, "AG-UI needs the ag-ui-protocol package on the server: "
                            "pip install 'rxagent[agui]'") from None
    graph_id = server._graph_of(request.path_params["assistant_id"])
    try:
        run_input = RunAgentInput.model_validate_json(await request.body())
    except ValidationError as error:
        raise ApiError(422, f"the body is not AG-UI's RunAgentInput: {error}") from None
    agent = server.graphs[graph_id]
    thread_id = run_input.thread_id
    assistant_id = server.assistant_ids[graph_id]
    config: dict[str, Any] = {"configurable": {
        "thread_id": thread_id, "assistant_id": assistant_id, "graph_id": graph_id,
        # For tools and middleware that read them (runtime config): what the client offers.
        "agui": {
            "tools": [tool.model_dump(by_alias=True) for tool in run_input.tools or ()],
            "context": [item.model_dump(by_alias=True) for item in run_input.context or ()],
            "forwarded_props": run_input.forwarded_props,
        },
    }}
    state = await agent.aget_state(config)
    try:
        agent_input = agui.agent_input(run_input, (state.values or {}).get("messages") or ())
    except InvalidMessageError as error:
        raise ApiError(422, str(error)) from None
    if await server._find_thread(thread_id) is None:
        await server.threads.create(thread_id, {})
    await server.threads.touch(thread_id, status="busy", metadata={
        "graph_id": graph_id, "assistant_id": assistant_id})
    encoder = EventEncoder(accept=request.headers.get("accept") or "")
    events = agent.observe(agent_input, config, extra_modes=agui.EXTRA_MODES).pipe(agui.events(
        thread_id, run_input.run_id, run_input=run_input, error_message=_public_message))

    async def body() -> AsyncIterator[str]:
        # The thread's status as the LangGraph API shows it: idle once the run ends (or its
        # client leaves), interrupted, or error; a run refused because another one is going
        # leaves it to that one.
        status: ThreadStatus | None = "idle"
        try:
            async with to_async_iterator(events, max_buffer=_BRIDGE_BUFFER) as items:
                async for event in items:
                    if isinstance(event, RunFinishedEvent) and isinstance(
                            event.outcome, RunFinishedInterruptOutcome):
                        status = "interrupted"
                    elif isinstance(event, RunErrorEvent):
                        status = None if event.code == "ThreadBusyError" else "error"
                    yield encoder.encode(event)
        finally:
            if status is not None:
                with anyio.CancelScope(shield=True):
                    await server.threads.touch(thread_id, status=status)

    return StreamingResponse(body(), media_type=encoder.get_content_type(), headers={
        "cache-control": "no-store", "x-accel-buffering": "no"})
