"""An agent run told to LangChain callback handlers: the run as a chain, its nodes inside it.

``Agent`` calls :func:`run_agent_told` where it would call ``run_agent``; with no handlers
configured it is ``run_agent`` and one context-variable read more.
"""

from __future__ import annotations

import uuid
from typing import Any

from ._agent_loop import AgentDefinition, run_agent
from ._callbacks import (
    AgentCallbacks,
    Scope,
    ambient_handlers,
    current_agent,
    current_scope,
    handlers_of,
)
from ._context import RunContext
from ._thread_run import ThreadRun

__all__ = ["run_agent_told"]


async def run_agent_told(
    agent: AgentDefinition,
    input: Any,
    config: dict[str, Any] | None,
    run: RunContext,
    thread: ThreadRun | None,
) -> None:
    """``run_agent``, told to the handlers of ``config["callbacks"]`` and of the code that
    started the run (a tool's, for an agent invoked inside one)."""
    parent = current_scope.get()
    config = config or {}
    handlers = handlers_of(config)
    if parent is None:
        handlers = [*ambient_handlers(), *handlers]
        if not handlers:
            await run_agent(agent, input, config, run, thread)
            return
        scope = Scope.root(handlers, config.get("tags") or ())
    else:
        scope = parent.with_handlers(handlers, config.get("tags") or (), None)
    for handler in scope.handlers:
        bind = getattr(handler, "_rxagent_bind", None)
        if bind is not None:  # an event stream: its events go out through this run's sink
            bind(run.sink)
    given = config.get("run_id") if parent is None else None
    run_id = given if isinstance(given, uuid.UUID) else (
        uuid.UUID(str(given)) if given else uuid.uuid4())
    name = config.get("run_name") or agent.name or "LangGraph"
    metadata: dict[str, Any] = {"ls_integration": "langchain_create_agent"}
    if agent.name is not None:
        metadata["lc_agent_name"] = agent.name
    metadata.update(config.get("metadata") or {})
    tags = list(scope.tags)
    kw: dict[str, Any] = {"run_id": run_id, "parent_run_id": scope.run_id, "tags": tags}
    scope.call("on_chain_start", None, input, metadata={**scope.metadata, **metadata},
               name=name, **kw)
    nodes = AgentCallbacks(scope.child(run_id, metadata))
    scope_token = current_scope.set(nodes.scope)
    agent_token = current_agent.set(nodes)
    try:
        state = await run_agent(agent, input, config, run, thread)
    except BaseException as error:
        nodes.fail_open(error)
        scope.call("on_chain_error", error, **kw)
        if isinstance(error, Exception):
            await scope.awaited.settle()
        raise
    finally:
        current_agent.reset(agent_token)
        current_scope.reset(scope_token)
    scope.call("on_chain_end", state, **kw)
    await scope.awaited.settle()
