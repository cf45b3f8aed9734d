"""The HTTP API: LangGraph Server's routes for assistants, threads and runs.

Each handler checks its request before anything starts, and answers a bad one with JSON
``{"detail": ...}``: 404 for an unknown assistant, thread or run, 409 for a busy thread or a
thread that exists already, 422 for a body that is not what the route takes. Once a stream has
begun, a failure is an ``error`` frame instead (``_runs.execute``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._agent import Agent, AgentInput
from .._interrupts import Command
from .._thread_state import Durability
from ..checkpoint import BaseCheckpointSaver
from ..checkpoint._base import delete_runs
from ._events import LogReader
from ._modes import check_stream_modes, event_filter
from ._response import EventStreamResponse, WaitResponse
from ._runs import Run, RunRegistry, RunRequest, ThreadBusy, run_context
from ._sse import dumps
from ._threads import ThreadRecord, ThreadStore, now, state_json

__all__ = ["ApiError", "Server"]

_MULTITASK = ("reject", "enqueue", "interrupt", "rollback")
_DURABILITY = ("sync", "async", "exit")
# Body fields a run request may carry that this server does not act on yet: refused rather than
# silently ignored, so that a client does not believe they took effect.
_UNSUPPORTED = ("webhook", "after_seconds", "interrupt_before", "interrupt_after", "feedback_keys")


class ApiError(Exception):
    """A request refused before anything started: its status and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dumps(value), status, dict(headers or {}), media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError(422, f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body is a JSON object")
    return body


def _field(body: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    # JSON's true is not a number, though Python's bool is an int.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ApiError(422, f"{name} has the wrong type: {value!r}")
    return value


# A run config's keys the server passes on, and the type each must have (the others are
# passed on as they are).
_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "configurable": dict, "tags": list, "metadata": dict, "recursion_limit": int,
    "max_concurrency": int, "run_name": str, "run_id": str,
}


def _run_config(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's ``config``, its known keys checked here so that a bad one is a 422 rather
    than a run that fails once streaming."""
    config = dict(_field(body, "config", dict, {}))
    for key, kinds in _CONFIG_TYPES.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ApiError(422, f"config[{key!r}] has the wrong type: {value!r}")
    if any(not isinstance(tag, str) for tag in config.get("tags") or ()):
        raise ApiError(422, f"config['tags'] is a list of strings, got {config['tags']!r}")
    if config.get("recursion_limit") is not None and config["recursion_limit"] < 1:
        raise ApiError(422, "config['recursion_limit'] is a positive integer")
    return config


def _choice(body: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        raise ApiError(422, f"{name} is one of {', '.join(choices)}; got {value!r}")
    return str(value)


class Server:
    """The state behind the routes: the graphs, the threads and the runs.

    Args:
        graphs: the agents served, by graph id, each with the server's checkpointer.
        saver: that checkpointer.
        threads: where thread records are kept.
        runs: where runs are kept and started.
        version: what ``/info`` reports.
    """

    def __init__(
        self,
        graphs: Mapping[str, Agent],
        saver: BaseCheckpointSaver,
        threads: ThreadStore,
        runs: RunRegistry,
        version: str,
    ) -> None:
        self.graphs = dict(graphs)
        self.saver = saver
        self.threads = threads
        self.runs = runs
        self.version = version
        self.started = now()
        # An assistant per graph, with the id a client may use instead of the graph's name.
        self.assistant_ids = {
            graph_id: str(uuid.uuid5(uuid.NAMESPACE_URL, f"rxagent:{graph_id}"))
            for graph_id in self.graphs
        }

    def routes(self) -> list[Route]:
        def route(path: str, handler: Callable[[Request], Any], method: str) -> Route:
            return Route(path, self._wrap(handler), methods=[method])

        return [
            route("/ok", self.ok, "GET"),
            route("/info", self.info, "GET"),
            route("/assistants/search", self.search_assistants, "POST"),
            route("/assistants/{assistant_id}", self.get_assistant, "GET"),
            route("/threads", self.create_thread, "POST"),
            route("/threads/search", self.search_threads, "POST"),
            route("/threads/{thread_id}", self.get_thread, "GET"),
            route("/threads/{thread_id}", self.delete_thread, "DELETE"),
            route("/threads/{thread_id}/state", self.get_state, "GET"),
            route("/threads/{thread_id}/history", self.history, "POST"),
            route("/runs/stream", self.stream_stateless, "POST"),
            route("/runs/wait", self.wait_stateless, "POST"),
            route("/runs/{run_id}/stream", self.join_stateless, "GET"),
            route("/threads/{thread_id}/runs/stream", self.stream_run, "POST"),
            route("/threads/{thread_id}/runs/wait", self.wait_run, "POST"),
            route("/threads/{thread_id}/runs", self.background_run, "POST"),
            route("/threads/{thread_id}/runs", self.list_runs, "GET"),
            route("/threads/{thread_id}/runs/{run_id}", self.get_run, "GET"),
            route("/threads/{thread_id}/runs/{run_id}/stream", self.join_run, "GET"),
            route("/threads/{thread_id}/runs/{run_id}/join", self.join_wait, "GET"),
            route("/threads/{thread_id}/runs/{run_id}/cancel", self.cancel_run, "POST"),
        ]

    @staticmethod
    def _wrap(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Any:
            try:
                return await handler(request)
            except ApiError as error:
                return json_response({"detail": error.detail}, error.status)

        return endpoint

    # -- assistants ---------------------------------------------------------------------------

    def _assistant_json(self, graph_id: str) -> dict[str, Any]:
        return {
            "assistant_id": self.assistant_ids[graph_id],
            "graph_id": graph_id,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "name": graph_id,
            "description": None,
            "version": 1,
            "created_at": self.started,
            "updated_at": self.started,
        }

    def _graph_of(self, assistant_id: Any) -> str:
        if not isinstance(assistant_id, str):
            raise ApiError(422, f"assistant_id is a graph id or an assistant's UUID, got "
                                f"{assistant_id!r}")
        if assistant_id in self.graphs:
            return assistant_id
        for graph_id, known in self.assistant_ids.items():
            if known == assistant_id:
                return graph_id
        raise ApiError(404, f"no assistant {assistant_id!r}; the graphs served are "
                            f"{', '.join(self.graphs)}")

    async def ok(self, request: Request) -> Response:
        return json_response({"ok": True})

    async def info(self, request: Request) -> Response:
        return json_response({
            "version": self.version,
            "server": "rxagent",
            "flags": {"assistants": True, "crons": False, "langsmith": False},
        })

    async def search_assistants(self, request: Request) -> Response:
        body = await _body(request)
        graph_id = _field(body, "graph_id", str, None)
        metadata = _field(body, "metadata", dict, {})
        limit = _field(body, "limit", int, 10)
        offset = _field(body, "offset", int, 0)
        found = [
            self._assistant_json(graph)
            for graph in self.graphs
            if (graph_id is None or graph == graph_id)
            and all({"created_by": "system"}.get(k) == v for k, v in metadata.items())
        ]
        return json_response(found[offset : offset + limit])

    async def get_assistant(self, request: Request) -> Response:
        return json_response(self._assistant_json(self._graph_of(
            request.path_params["assistant_id"])))

    # -- threads ------------------------------------------------------------------------------

    async def _find_thread(self, thread_id: str) -> ThreadRecord | None:
        record = await self.threads.get(thread_id)
        if record is None and await self.saver.aget(thread_id) is not None:
            # Kept by a saver that outlives the process (SQLite): the thread is still there.
            record = await self.threads.create(thread_id, {})
        return record

    async def _thread(self, thread_id: str) -> ThreadRecord:
        record = await self._find_thread(thread_id)
        if record is None:
            raise ApiError(404, f"no thread {thread_id!r}")
        return record

    def _agent_of(self, record: ThreadRecord) -> Agent | None:
        graph_id = record.metadata.get("graph_id")
        if graph_id in self.graphs:
            return self.graphs[graph_id]
        if len(self.graphs) == 1:
            return next(iter(self.graphs.values()))
        return None

    async def _thread_json(self, record: ThreadRecord) -> dict[str, Any]:
        agent = self._agent_of(record)
        if agent is None:
            return record.json()
        state = await agent.aget_state({"configurable": {"thread_id": record.thread_id}})
        interrupts = {
            task.id: list(task.interrupts) for task in state.tasks if task.interrupts
        }
        return record.json(state.values or None, interrupts)

    async def create_thread(self, request: Request) -> Response:
        body = await _body(request)
        thread_id = _field(body, "thread_id", str, None) or str(uuid.uuid4())
        metadata = _field(body, "metadata", dict, {})
        if_exists = _choice(body, "if_exists", ("raise", "do_nothing"), "raise")
        record = await self._find_thread(thread_id)
        if record is not None:
            if if_exists == "raise":
                raise ApiError(409, f"thread {thread_id!r} exists already")
        else:
            record = await self.threads.create(thread_id, metadata)
        return json_response(await self._thread_json(record))

    async def get_thread(self, request: Request) -> Response:
        return json_response(await self._thread_json(await self._thread(
            request.path_params["thread_id"])))

    async def delete_thread(self, request: Request) -> Response:
        record = await self._thread(request.path_params["thread_id"])
        await self.runs.forget_thread(record.thread_id)
        agent = self._agent_of(record)
        if agent is not None and agent.checkpointer is not None:
            await agent.checkpointer.adelete_thread(record.thread_id)
        await self.threads.delete(record.thread_id)
        return Response(status_code=204)

    async def search_threads(self, request: Request) -> Response:
        body = await _body(request)
        metadata = _field(body, "metadata", dict, {})
        status = _choice(body, "status", ("idle", "busy", "interrupted", "error"), "") or None
        limit = _field(body, "limit", int, 10)
        offset = _field(body, "offset", int, 0)
        found = await self.threads.search(metadata, status, limit, offset)
        return json_response([await self._thread_json(record) for record in found])

    async def get_state(self, request: Request) -> Response:
        record = await self._thread(request.path_params["thread_id"])
        agent = self._agent_of(record)
        if agent is None:
            return json_response({"values": {}, "next": [], "tasks": [], "checkpoint": None,
                                  "metadata": None, "created_at": None,
                                  "parent_checkpoint": None, "interrupts": []})
        state = await agent.aget_state({"configurable": {"thread_id": record.thread_id}})
        return json_response(state_json(state))

    async def history(self, request: Request) -> Response:
        record = await self._thread(request.path_params["thread_id"])
        body = await _body(request)
        limit = _field(body, "limit", int, 10)
        before = _field(body, "before", (str, dict), None)
        metadata = _field(body, "metadata", dict, None)
        checkpoint = _field(body, "checkpoint", dict, {})
        agent = self._agent_of(record)
        if agent is None:
            return json_response([])
        config = {"configurable": {**checkpoint, "thread_id": record.thread_id}}
        if isinstance(before, str):
            before = {"checkpoint_id": before}
        states = [
            state_json(state)
            async for state in agent.aget_state_history(
                config, filter=metadata, limit=limit,
                before={"configurable": before} if before else None,
            )
        ]
        return json_response(states)

    # -- runs ---------------------------------------------------------------------------------

    def _input(self, body: Mapping[str, Any]) -> AgentInput:
        run_input = _field(body, "input", dict, None)
        command = _field(body, "command", dict, None)
        if command is None:
            return run_input  # type: ignore[no-any-return]
        if run_input is not None:
            raise ApiError(422, "give input or command, not both")
        if command.get("goto") or command.get("graph"):
            raise ApiError(422, "command takes resume and update; goto and graph are not "
                                "supported by rxagent's agents")
        return Command(resume=command.get("resume"), update=command.get("update"))

    async def _start(
        self, request: Request, thread_id: str | None, *, follow: bool, background: bool = False
    ) -> tuple[Run, LogReader | None, dict[str, Any]]:
        """Check a run request and start the run; the run, a reader if asked, and the body."""
        body = await _body(request)
        graph_id = self._graph_of(body.get("assistant_id"))
        for name in _UNSUPPORTED:
            if body.get(name):
                raise ApiError(422, f"{name} is not supported by this server")
        modes = _field(body, "stream_mode", (str, list), "values")
        try:
            modes = check_stream_modes(modes)
        except ValueError as error:
            raise ApiError(422, str(error)) from None
        subgraphs = _field(body, "stream_subgraphs", bool, False)
        resumable = _field(body, "stream_resumable", bool, False)
        metadata = _field(body, "metadata", dict, {})
        config = _run_config(body)
        strategy = _choice(body, "multitask_strategy", _MULTITASK, "reject")
        durability = cast(Durability | None, _choice(body, "durability", _DURABILITY, "") or None)
        if_not_exists = _choice(body, "if_not_exists", ("reject", "create"), "reject")
        on_completion = _choice(body, "on_completion", ("delete", "keep"), "delete")
        _choice(body, "on_disconnect", ("cancel", "continue"), "continue")
        checkpoint = dict(_field(body, "checkpoint", dict, {}))
        checkpoint_id = _field(body, "checkpoint_id", str, None)
        if checkpoint_id is not None:
            checkpoint["checkpoint_id"] = checkpoint_id
        run_input = self._input(body)
        context = _field(body, "context", dict, None)
        try:
            run_context(self.graphs[graph_id], context)
        except (TypeError, ValueError) as error:
            raise ApiError(422, f"context does not fit the graph's context_schema: {error}"
                           ) from None

        temporary = thread_id is None
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            await self.threads.create(thread_id, {})
            temporary = on_completion == "delete"
        elif await self._find_thread(thread_id) is None:
            if if_not_exists == "reject":
                raise ApiError(404, f"no thread {thread_id!r}")
            await self.threads.create(thread_id, {})
        if strategy == "rollback":
            self._check_rollback()
        if strategy in ("interrupt", "rollback"):
            active = [run for run in await self.runs.on_thread(thread_id) if run.active]
            for run in active:
                await self.runs.cancel(run)
            if strategy == "rollback":
                for run in active:
                    await self._roll_back(run)
        run_id = str(uuid.uuid4())
        configurable = dict(config.get("configurable") or {})
        configurable.update(checkpoint)
        configurable["thread_id"] = thread_id
        # The run's checkpoints carry its id in their metadata, for a rollback to find them
        # (delete_for_runs); nested agents' runs inherit it from the configurable.
        configurable["run_id"] = run_id
        config.pop("run_id", None)
        # As the reference server does: code in the run reads them as runtime.server_info.
        configurable.setdefault("assistant_id", self.assistant_ids[graph_id])
        configurable.setdefault("graph_id", graph_id)
        config["configurable"] = configurable
        await self.threads.touch(thread_id, metadata={
            "graph_id": graph_id, "assistant_id": self.assistant_ids[graph_id]})
        run_request = RunRequest(
            graph_id, self.assistant_ids[graph_id], self.graphs[graph_id], run_input, config,
            modes, subgraphs, resumable, durability, temporary, context,
        )
        try:
            run, reader = await self.runs.create(
                run_id, thread_id, run_request, metadata=metadata,
                multitask_strategy=strategy, follow=follow, background=background,
            )
        except ThreadBusy as busy:
            raise ApiError(409, f"{busy}; multitask_strategy='enqueue' queues a run after "
                                "it") from None
        return run, reader, body

    def _stream(self, run: Run, reader: LogReader | None, body: Mapping[str, Any],
                stateless: bool) -> EventStreamResponse:
        assert reader is not None
        base = f"/runs/{run.run_id}" if stateless else (
            f"/threads/{run.thread_id}/runs/{run.run_id}")
        cancel = body.get("on_disconnect") == "cancel"
        return EventStreamResponse(
            reader,
            headers={"location": f"{base}/stream", "content-location": base},
            with_ids=run.request.resumable,
            on_disconnect=self._canceller(run) if cancel else None,
        )

    def _canceller(self, run: Run) -> Callable[[], Awaitable[None]]:
        async def cancel() -> None:
            await self.runs.cancel(run)

        return cancel

    async def stream_run(self, request: Request) -> EventStreamResponse:
        run, reader, body = await self._start(
            request, request.path_params["thread_id"], follow=True)
        return self._stream(run, reader, body, stateless=False)

    async def stream_stateless(self, request: Request) -> EventStreamResponse:
        run, reader, body = await self._start(request, None, follow=True)
        return self._stream(run, reader, body, stateless=True)

    @staticmethod
    def _outcome(run: Run) -> Any:
        if run.error is not None:
            return {"__error__": run.error}
        return run.values

    def _wait(self, run: Run, body: Mapping[str, Any], headers: Mapping[str, str]) -> WaitResponse:
        cancel = body.get("on_disconnect") == "cancel"

        async def outcome() -> bytes:
            return dumps(self._outcome(await self.runs.wait(run)))

        return WaitResponse(outcome, headers=headers,
                            on_disconnect=self._canceller(run) if cancel else None)

    def _wait_started(self, run: Run, body: Mapping[str, Any]) -> WaitResponse:
        # A stateless run's too: the join of its thread of its own, as the reference sends,
        # so that a client cut off (its process died, a proxy dropped it) rejoins there. The
        # join answers after that thread is deleted, for as long as the run is kept.
        base = f"/threads/{run.thread_id}/runs/{run.run_id}"
        return self._wait(run, body, {"location": f"{base}/join", "content-location": base})

    async def wait_run(self, request: Request) -> WaitResponse:
        run, _, body = await self._start(request, request.path_params["thread_id"],
                                         follow=False)
        return self._wait_started(run, body)

    async def wait_stateless(self, request: Request) -> WaitResponse:
        run, _, body = await self._start(request, None, follow=False)
        return self._wait_started(run, body)

    async def background_run(self, request: Request) -> Response:
        run, _, _ = await self._start(request, request.path_params["thread_id"], follow=False,
                                      background=True)
        return json_response(run.json(), headers={
            "content-location": f"/threads/{run.thread_id}/runs/{run.run_id}"})

    async def list_runs(self, request: Request) -> Response:
        record = await self._thread(request.path_params["thread_id"])
        runs = await self.runs.on_thread(record.thread_id)
        return json_response([run.json() for run in runs])

    async def _run(self, request: Request, thread_id: str | None) -> Run:
        run_id = request.path_params["run_id"]
        run = await self.runs.get(run_id)
        if run is None or (thread_id is not None and run.thread_id != thread_id):
            raise ApiError(404, f"no run {run_id!r}" + (
                f" on thread {thread_id!r}" if thread_id is not None else ""))
        return run

    async def get_run(self, request: Request) -> Response:
        return json_response((await self._run(request, request.path_params["thread_id"])).json())

    def _join(self, request: Request, run: Run) -> EventStreamResponse:
        last = request.headers.get("last-event-id")
        # Without the header a client has seen nothing of the run: a resumable run replays it
        # all (the reference starts wherever the run is); any other keeps no events to replay.
        after: int | None = 0 if run.request.resumable else None
        if last is not None:
            try:
                after = int(last)
            except ValueError:
                raise ApiError(422, f"Last-Event-ID is an event id of this run (an integer; "
                                    f"-1 replays the whole run), got {last!r}") from None
        cancel = request.query_params.get("cancel_on_disconnect", "").lower() == "true"
        asked = [mode for mode in request.query_params.getlist("stream_mode") if mode]
        wanted = None
        if asked:
            try:
                wanted = event_filter(check_stream_modes(asked))
            except ValueError as error:
                raise ApiError(422, str(error)) from None
        return EventStreamResponse(
            self.runs.reader(run, after),
            headers={},
            with_ids=run.request.resumable,
            on_disconnect=self._canceller(run) if cancel else None,
            wanted=wanted,
        )

    async def join_run(self, request: Request) -> EventStreamResponse:
        return self._join(request, await self._run(request, request.path_params["thread_id"]))

    async def join_stateless(self, request: Request) -> EventStreamResponse:
        return self._join(request, await self._run(request, None))

    async def join_wait(self, request: Request) -> WaitResponse:
        run = await self._run(request, request.path_params["thread_id"])
        return self._wait(run, {}, {})

    async def cancel_run(self, request: Request) -> Response:
        run = await self._run(request, request.path_params["thread_id"])
        action = request.query_params.get("action", "interrupt")
        if action not in ("interrupt", "rollback"):
            raise ApiError(422, f"action is 'interrupt' or 'rollback', got {action!r}")
        if action == "rollback":
            self._check_rollback()
        if not run.active:
            raise ApiError(409, f"run {run.run_id} has ended ({run.status})")
        await self.runs.cancel(run)
        if action == "rollback":
            # The run's checkpoints can only go once it has stopped writing them: a rollback
            # is answered when the run is gone, whatever ``wait`` says.
            await self._roll_back(run)
            await self._settle_after_rollback(run.thread_id)
        elif request.query_params.get("wait", "").lower() in ("1", "true"):
            await self.runs.wait(run)
        return Response(status_code=204)

    # -- rollback -----------------------------------------------------------------------------

    def _check_rollback(self) -> None:
        if type(self.saver).delete_for_runs is BaseCheckpointSaver.delete_for_runs:
            raise ApiError(422, f"rollback needs a checkpointer that deletes a run's "
                                f"checkpoints (delete_for_runs); {type(self.saver).__name__} "
                                "does not")

    async def _roll_back(self, run: Run) -> None:
        """Once the cancelled run has ended, forget it and the checkpoints it wrote, so that its
        thread is as it was before it."""
        await self.runs.wait(run)
        await self.runs.delete(run)
        # Its thread too: where a saver whose run index may miss old checkpoints looks.
        await delete_runs(self.saver, [run.run_id], threads=[run.thread_id])

    async def _settle_after_rollback(self, thread_id: str) -> None:
        """The thread's status once a rollback has taken its run's state away."""
        if any(other.active for other in await self.runs.on_thread(thread_id)):
            return
        record = await self.threads.get(thread_id)
        agent = None if record is None else self._agent_of(record)
        if agent is None:
            return
        state = await agent.aget_state({"configurable": {"thread_id": thread_id}})
        await self.threads.touch(thread_id, status="interrupted" if state.interrupts else "idle")
