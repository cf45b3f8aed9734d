"""``HumanInTheLoopMiddleware`` as LangChain's human-in-the-loop docs use it (their programs,
with only the imports and the model changed), through ``stream()``, and across a restart of
the process on a SQLite checkpointer."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import rxagent
from rxagent import create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, ToolMessage
from rxagent.middleware import HumanInTheLoopMiddleware, ToolCallRequest
from rxagent.testing import FunctionChatModel
from rxagent.types import Command

ran: list[tuple[str, dict[str, Any]]] = []


def write_file(path: str, content: str) -> str:
    """Write a file."""
    ran.append(("write_file", {"path": path, "content": content}))
    return f"Wrote {len(content)} characters to {path}"


def execute_sql(query: str) -> str:
    """Run SQL."""
    ran.append(("execute_sql", {"query": query}))
    return "3 rows"


def read_data(table: str) -> str:
    """Read a table."""
    ran.append(("read_data", {"table": table}))
    return "id,total"


DELETE = "DELETE FROM records WHERE created_at < NOW() - INTERVAL '30 days';"


def model_calling(*calls: tuple[str, dict[str, Any]]) -> FunctionChatModel:
    """Calls the tools once, then answers with what the tools said."""

    def reply(messages: Any, tools: Any) -> Any:
        if isinstance(messages[-1], ToolMessage):
            return " | ".join(m.content for m in messages if isinstance(m, ToolMessage))
        return AIMessage(content="", tool_calls=[
            {"name": name, "args": args, "id": f"call_{n}"}
            for n, (name, args) in enumerate(calls)])

    return FunctionChatModel(reply)


def docs_agent(model: Any) -> Any:
    # The docs' configuration, as written there.
    return create_agent(
        model=model,
        tools=[write_file, execute_sql, read_data],
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={
                    "write_file": True,  # All decisions (approve, edit, reject, respond) allowed
                    "execute_sql": {"allowed_decisions": ["approve", "reject"]},  # No editing
                    "read_data": False,  # Safe operation, no approval needed
                },
                # Prefix for interrupt messages - combined with tool name and args
                description_prefix="Tool execution pending approval",
            ),
        ],
        # Human-in-the-loop requires checkpointing to handle interrupts.
        checkpointer=InMemorySaver(),
    )


def test_responding_to_interrupts_as_the_docs_do() -> None:
    ran.clear()
    agent = docs_agent(model_calling(("execute_sql", {"query": DELETE})))
    config = {"configurable": {"thread_id": "some_id"}}
    result = agent.invoke(
        {
            "messages": [
                {
                    "role": "user",
                    "content": "Delete old records from the database",
                }
            ]
        },
        config=config,
        version="v2",
    )
    # result is a GraphOutput with .value and .interrupts
    print(result.interrupts)
    (pending,) = result.interrupts
    assert pending.value == {
        "action_requests": [{
            "name": "execute_sql", "args": {"query": DELETE},
            "description": f"Tool execution pending approval\n\nTool: execute_sql\nArgs: "
                           f"{{'query': {DELETE!r}}}",
        }],
        "review_configs": [{"action_name": "execute_sql",
                            "allowed_decisions": ["approve", "reject"]}],
    }
    assert ran == []

    # Resume with approval decision
    final = agent.invoke(
        Command(
            resume={"decisions": [{"type": "approve"}]}  # or "reject"
        ),
        config=config,  # Same thread ID to resume the paused conversation
        version="v2",
    )
    assert ran == [("execute_sql", {"query": DELETE})]
    assert final.interrupts == () and final.value["messages"][-1].content == "3 rows"


@pytest.mark.parametrize(("decision", "ran_as", "answer"), [
    ({"type": "approve"}, {"path": "orders.csv", "content": "id,total\n"},
     "Wrote 9 characters to orders.csv"),
    ({"type": "edit", "edited_action": {
        "name": "write_file",
        "args": {"path": "archive/orders_2024.csv", "content": "id,total\n1,20\n"}}},
     {"path": "archive/orders_2024.csv", "content": "id,total\n1,20\n"},
     "Note: a human reviewer replaced this tool call before it ran. The call recorded in your "
     "message is the one you produced, not the one that executed. This was intentional and "
     "authorized. Do not re-issue your original call. Executed instead: write_file with "
     'arguments {"path": "archive/orders_2024.csv", "content": "id,total\\n1,20\\n"}.\n\n'
     "Tool response:\nWrote 14 characters to archive/orders_2024.csv"),
    ({"type": "reject", "message": "Write to the archive/ folder instead."}, None,
     "User rejected the tool call for `write_file` with reason: Write to the archive/ folder "
     "instead."),
    ({"type": "respond", "message": "Saved orders_archive.csv to the shared drive myself."},
     None, "Saved orders_archive.csv to the shared drive myself."),
])
def test_each_decision_type_through_stream(
    decision: dict[str, Any], ran_as: dict[str, Any] | None, answer: str
) -> None:
    ran.clear()
    agent = docs_agent(model_calling(
        ("write_file", {"path": "orders.csv", "content": "id,total\n"}),
        ("read_data", {"table": "orders"})))
    config = {"configurable": {"thread_id": "1"}}
    first = list(agent.stream({"messages": [("user", "archive the orders")]}, config,
                              stream_mode="updates"))
    assert list(first[-1]) == ["__interrupt__"] and ran == []
    resumed = list(agent.stream(Command(resume={"decisions": [decision]}), config,
                                stream_mode=["updates", "messages"]))
    assert [call for call in ran if call[0] == "write_file"] == (
        [("write_file", ran_as)] if ran_as else [])
    assert ("read_data", {"table": "orders"}) in ran  # not gated: it ran, once
    tool_messages = {m.tool_call_id: m for m in agent.get_state(config).values["messages"]
                     if isinstance(m, ToolMessage)}
    assert tool_messages["call_0"].content == answer
    assert tool_messages["call_0"].status == (
        "error" if decision["type"] == "reject" else "success")
    # The rejection or the human's answer streams in messages mode, from the hook's step.
    streamed = [(data[0].content, data[1]["langgraph_node"])
                for mode, data in resumed if mode == "messages"]
    if decision["type"] in ("reject", "respond"):
        assert (answer, "HumanInTheLoopMiddleware.after_model") in streamed


def test_conditional_interrupts_with_when() -> None:
    def writes_outside_workspace(request: ToolCallRequest) -> bool:
        """Pause writes to paths outside the workspace directory."""
        path = request.tool_call["args"].get("path", "")
        return not path.startswith("/workspace/")

    ran.clear()
    agent = create_agent(
        model=model_calling(("write_file", {"path": "/workspace/a", "content": "x"}),
                            ("write_file", {"path": "/etc/passwd", "content": "y"})),
        tools=[write_file, execute_sql, read_data],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={
            "write_file": {"allowed_decisions": ["approve", "edit", "reject"],
                           "when": writes_outside_workspace}})],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "1"}}
    stopped = agent.invoke({"messages": [("user", "write")]}, config, version="v2")
    (pending,) = stopped.interrupts
    assert [a["args"]["path"] for a in pending.value["action_requests"]] == ["/etc/passwd"]
    agent.invoke(Command(resume={"decisions": [{"type": "reject"}]}), config)
    assert ran == [("write_file", {"path": "/workspace/a", "content": "x"})]


def test_bad_configs_and_answers_are_usage_errors() -> None:
    with pytest.raises(rxagent.UsageError, match="allowed_decisions"):
        HumanInTheLoopMiddleware(interrupt_on={"x": {"allowed_decisions": []}})
    with pytest.raises(rxagent.UsageError, match="unknown decision"):
        HumanInTheLoopMiddleware(interrupt_on={"x": {"allowed_decisions": ["maybe"]}})
    with pytest.raises(rxagent.UsageError, match="per_call"):
        HumanInTheLoopMiddleware(interrupt_on={"x": True},
                                 interrupt_mode="sometimes")  # type: ignore[arg-type]
    agent = docs_agent(model_calling(("execute_sql", {"query": "x"})))
    config = {"configurable": {"thread_id": "1"}}
    agent.invoke({"messages": [("user", "go")]}, config)
    with pytest.raises(rxagent.InvalidResumeError, match="decisions"):
        agent.invoke(Command(resume="yes"), config)
    with pytest.raises(rxagent.InvalidResumeError, match="execute_sql"):
        agent.invoke(Command(resume={"decisions": [{"type": "edit", "edited_action": {
            "name": "execute_sql", "args": {"query": "y"}}}]}), config)
    # Nothing was lost: the interrupt still waits, and a good answer goes on.
    assert agent.get_state(config).interrupts
    assert agent.invoke(Command(resume={"decisions": [{"type": "reject"}]}), config)[
        "messages"][-1].content.startswith("User rejected")


# The agent of both processes: the model calls the tool once, the tool logs its calls.
PROGRAM = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from rxagent import create_agent
    from rxagent.checkpoint.sqlite import SqliteSaver
    from rxagent.messages import AIMessage, ToolMessage
    from rxagent.middleware import HumanInTheLoopMiddleware
    from rxagent.testing import FunctionChatModel
    from rxagent.types import Command

    here = Path(sys.argv[1])

    def reply(messages, tools):
        if isinstance(messages[-1], ToolMessage):
            return "Finished: " + " | ".join(
                m.content for m in messages if isinstance(m, ToolMessage))
        return AIMessage(content="", tool_calls=[
            {"name": "send_email", "args": {"to": "ann", "body": "hi"}, "id": "e1"},
            {"name": "delete_file", "args": {"path": "/tmp/x"}, "id": "d1"}])

    def send_email(to: str, body: str) -> str:
        """Send an email."""
        with open(here / "sent.txt", "a") as sent:
            sent.write(json.dumps({"to": to, "body": body}) + "\\n")
        return f"sent to {to}"

    def delete_file(path: str) -> str:
        """Delete a file."""
        with open(here / "deleted.txt", "a") as deleted:
            deleted.write(path + "\\n")
        return f"deleted {path}"

    agent = create_agent(
        FunctionChatModel(reply), [send_email, delete_file],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True,
                                                           "delete_file": True})],
        checkpointer=SqliteSaver(str(here / "threads.db")))
    config = {"configurable": {"thread_id": "review"}}
    source = ({"messages": [("user", "email ann, delete x")]} if sys.argv[2] == "start"
              else Command(resume=json.loads(sys.argv[2])))
    for mode, data in agent.stream(source, config, stream_mode=["updates", "messages"]):
        if mode == "updates":
            print("STEP", json.dumps(sorted(data)), flush=True)
    state = agent.get_state(config)
    print("NEXT", json.dumps(list(state.next)), flush=True)
    print("LAST", json.dumps(state.values["messages"][-1].content), flush=True)
''')


def run_program(here: Path, argument: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(here), argument],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_review_goes_on_after_a_restart_of_the_process(tmp_path: Path) -> None:
    first = run_program(tmp_path, "start")
    assert first[-2] == 'NEXT ["HumanInTheLoopMiddleware.after_model"]'
    assert 'STEP ["__interrupt__"]' in first
    assert not (tmp_path / "sent.txt").exists() and not (tmp_path / "deleted.txt").exists()
    decisions = {"decisions": [
        {"type": "edit", "edited_action": {"name": "send_email",
                                           "args": {"to": "bob", "body": "hello"}}},
        {"type": "reject", "message": "keep it"}]}
    second = run_program(tmp_path, json.dumps(decisions))  # a new process
    assert second[-2] == "NEXT []"
    assert (tmp_path / "sent.txt").read_text().splitlines() == [
        json.dumps({"to": "bob", "body": "hello"})]
    assert not (tmp_path / "deleted.txt").exists()
    last = json.loads(second[-1].removeprefix("LAST "))
    assert last.startswith("Finished: User rejected the tool call for `delete_file`")
    assert "Executed instead: send_email" in last and last.endswith("sent to bob")


def test_per_call_review_checks_each_answer_against_its_schema() -> None:
    # The docs' per-call program: read_data runs at once, each gated call asks on its own,
    # an invalid edit is refused and nothing of it is kept, a corrected one goes through.
    ran.clear()
    agent = create_agent(
        model=model_calling(("write_file", {"path": "orders.csv", "content": "x"}),
                            ("execute_sql", {"query": DELETE}),
                            ("read_data", {"table": "orders"})),
        tools=[write_file, execute_sql, read_data],
        middleware=[HumanInTheLoopMiddleware(
            interrupt_on={"write_file": True,
                          "execute_sql": {"allowed_decisions": ["approve", "reject"]},
                          "read_data": False},
            interrupt_mode="per_call")],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "1"}}
    result = agent.invoke({"messages": [("user", "archive the orders")]}, config=config,
                          version="v2")
    assert ran == [("read_data", {"table": "orders"})]
    assert sorted(i.value["name"] for i in result.interrupts) == ["execute_sql", "write_file"]
    assert all(i.value["type"] == "tool_approval" for i in result.interrupts)
    write_file_interrupt = next(
        interrupt for interrupt in result.interrupts if interrupt.value["name"] == "write_file"
    )
    schema = write_file_interrupt.response_schema
    assert schema is not None and "edited_action" in json.dumps(schema)
    edit = {
        "type": "edit",
        "edited_action": {"name": "write_file", "args": {"path": "archive/orders_2024.csv"}},
    }
    with pytest.raises(ValidationError) as refused:
        agent.invoke(Command(resume={write_file_interrupt.id: edit}), config=config,
                     version="v2")
    assert any(problem["loc"][-1] == "content" for problem in refused.value.errors())
    # Nothing was saved, so answer the same interrupt again
    edit["edited_action"]["args"]["content"] = "id,total\n1,20\n"  # type: ignore[index]
    result = agent.invoke(
        Command(resume={write_file_interrupt.id: edit}), config=config, version="v2"
    )
    # The other call still waits for its own answer; the edited one ran, once.
    assert [i.value["name"] for i in result.interrupts] == ["execute_sql"]
    assert ran.count(("write_file", {"path": "archive/orders_2024.csv",
                                     "content": "id,total\n1,20\n"})) == 1
    final = agent.invoke(Command(resume={result.interrupts[0].id: {"type": "reject"}}),
                         config=config, version="v2")
    assert final.interrupts == ()
    assert ran.count(("read_data", {"table": "orders"})) == 1
    assert not any(call[0] == "execute_sql" for call in ran)


def test_streaming_with_human_in_the_loop_as_the_docs_do() -> None:
    # The docs' program (LangGraph's experimental v3 event stream), as written there.
    ran.clear()

    def reply(messages: Any, tools: Any) -> Any:
        if isinstance(messages[-1], ToolMessage):
            return "Deleted 3 old rows."
        return AIMessage(content="Let me check. ", tool_calls=[
            {"name": "execute_sql", "args": {"query": DELETE}, "id": "call_0"}])

    agent = docs_agent(FunctionChatModel(reply))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        config = {"configurable": {"thread_id": "some_id"}}

        # Stream agent progress and LLM tokens until interrupt
        stream = agent.stream_events(
            {"messages": [{"role": "user", "content": "Delete old records from the database"}]},
            config=config,
            version="v3",
        )
        for message in stream.messages:
            for token in message.text:
                print(token, end="", flush=True)

        # Check whether the run paused for human input
        if stream.interrupted:
            print(f"\n\nInterrupt: {stream.interrupts}")

        # Resume with streaming after human decision
        stream = agent.stream_events(
            Command(resume={"decisions": [{"type": "approve"}]}),
            config=config,
            version="v3",
        )
        for message in stream.messages:
            for token in message.text:
                print(token, end="", flush=True)

    text = printed.getvalue()
    assert text.startswith("Let me check. \n\nInterrupt: [Interrupt(value={'action_requests'")
    assert text.endswith("Deleted 3 old rows.")
    assert ran == [("execute_sql", {"query": DELETE})]


@pytest.mark.anyio
async def test_the_async_event_stream_gives_the_same_projections() -> None:
    agent = docs_agent(model_calling(("execute_sql", {"query": "x"})))
    config = {"configurable": {"thread_id": "1"}}
    async with agent.astream_events({"messages": [("user", "go")]}, config, version="v3") as run:
        tokens = [token async for message in run.messages async for token in message.text]
        assert await run.interrupted()
        (pending,) = await run.interrupts()
        assert pending.value["action_requests"][0]["name"] == "execute_sql"
        assert (await run.output())["messages"][-1].tool_calls[0]["name"] == "execute_sql"
    assert tokens == []  # the reply was a tool call, no text
    run = agent.astream_events(Command(resume={"decisions": [{"type": "reject"}]}), config,
                               version="v3")
    states = [state async for state in run.values]
    assert not await run.interrupted()
    assert states[-1]["messages"][-1].content.startswith("User rejected")
    with pytest.raises(rxagent.UsageError, match="v2"):
        agent.stream_events({"messages": [("user", "go")]}, config,
                            version="v1")  # type: ignore[call-overload]


def test_an_edit_may_send_the_call_to_another_of_the_agents_tools() -> None:
    # As in LangChain's batched mode: the reviewer's call runs the tool it names.
    ran.clear()
    agent = create_agent(
        model=model_calling(("execute_sql", {"query": DELETE})),
        tools=[execute_sql, read_data],
        checkpointer=InMemorySaver(),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"execute_sql": True})],
    )
    config: Any = {"configurable": {"thread_id": "redirect"}}
    agent.invoke({"messages": "Clean up"}, config)
    read = {"decisions": [{"type": "edit", "edited_action": {"name": "read_data",
                                                             "args": {"table": "records"}}}]}
    result = agent.invoke(Command(resume=read), config)
    assert ran == [("read_data", {"table": "records"})]
    (answer,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answer.name == "read_data"
    assert "Executed instead: read_data" in answer.content and answer.content.endswith("id,total")


def test_an_edit_naming_no_tool_of_the_agent_fails_the_tools_step() -> None:
    # LangChain raises at the same point (a ValueError); here it is an InvalidResumeError,
    # and no tool ran.
    ran.clear()
    agent = create_agent(
        model=model_calling(("execute_sql", {"query": DELETE})),
        tools=[execute_sql, read_data],
        checkpointer=InMemorySaver(),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"execute_sql": True})],
    )
    config: Any = {"configurable": {"thread_id": "wrong"}}
    agent.invoke({"messages": "Clean up"}, config)
    wrong = {"decisions": [{"type": "edit", "edited_action": {"name": "drop_everything",
                                                              "args": {}}}]}
    with pytest.raises(rxagent.InvalidResumeError, match="'drop_everything', which is not one"):
        agent.invoke(Command(resume=wrong), config)
    assert ran == []
