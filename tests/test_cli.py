"""The ``rxagent`` command: ``rxagent demo`` in every mode, colour rules, help, errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import pytest

from rxagent import create_agent, get_stream_writer
from rxagent._cli import TerminalRenderer, main, use_color  # the CLI's own units
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel

ESC = "\x1b["


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(autouse=True)
def no_colour_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)


# -- the default mode: everything, live ------------------------------------------------------


def test_demo_renders_steps_tool_calls_progress_and_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_main(capsys, "demo", "--speed", "0")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "▶ model · step 1"
    assert '  ⚙ get_weather({"city":"San Francisco"})' in lines
    assert lines.index("▶ tools") < lines.index("  · Looking up data for city: San Francisco")
    assert "  · Acquired data for city: San Francisco" in lines
    assert "  ✓ get_weather → It's always sunny in San Francisco!" in lines
    assert "▶ model · step 3" in lines
    assert "  Here's what I got: \"It's always sunny in San Francisco!\"" in lines
    assert lines[-1] == "✔ done: 2 model calls, 1 tool call, 10 text chunks"
    assert ESC not in out, "captured output is not a terminal: no colour"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("updates", ["step: model", "step: tools", "step: model"]),
        ("custom", ["Looking up data for city: San Francisco",
                    "Acquired data for city: San Francisco"]),
        ("values", ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]),
    ],
)
def test_each_mode_prints_what_the_seed_prints(
    capsys: pytest.CaptureFixture[str], mode: str, expected: list[str]
) -> None:
    status, out, _ = run_main(capsys, "demo", "--mode", mode)
    assert status == 0
    if mode == "updates":
        assert [line for line in out.splitlines() if line.startswith("step:")] == expected
        assert ("content: [{'type': 'tool_call', 'name': 'get_weather', 'args': {'city': "
                "'San Francisco'}, 'id': 'call_weather_1'}]") in out
    elif mode == "custom":
        assert out.splitlines() == expected
    else:
        assert [line.split(":")[0] for line in out.splitlines()] == expected


def test_messages_mode_prints_tokens_and_tool_call_fragments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_main(capsys, "demo", "--mode", "messages")
    assert status == 0
    contents = [line for line in out.splitlines() if line.startswith("content:")]
    nodes = [line for line in out.splitlines() if line.startswith("node:")]
    assert len(contents) == len(nodes) > 10
    assert contents[0] == ("content: [{'type': 'tool_call_chunk', 'id': 'call_weather_1', "
                           "'name': 'get_weather', 'args': '', 'index': 0}]")
    assert "node: tools" in nodes
    assert "content: [{'type': 'text', 'text': ' sunny'}]" in contents


# -- colour -------------------------------------------------------------------------------------


def test_colour_is_forced_with_color_and_off_with_no_color(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, coloured, _ = run_main(capsys, "demo", "--speed", "0", "--color")
    assert ESC in coloured
    _, plain, _ = run_main(capsys, "demo", "--speed", "0", "--no-color")
    assert ESC not in plain


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color_follows_the_terminal_no_color_and_term(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert use_color(FakeTerminal()) is True
    assert use_color(io.StringIO()) is False
    assert use_color(io.StringIO(), True) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(FakeTerminal()) is False
    assert use_color(FakeTerminal(), True) is True, "--color wins over NO_COLOR"
    monkeypatch.setenv("NO_COLOR", "")
    assert use_color(FakeTerminal()) is True, "an empty NO_COLOR does not count"
    monkeypatch.setenv("TERM", "dumb")
    assert use_color(FakeTerminal()) is False


# -- help and errors -------------------------------------------------------------------------


def test_help_documents_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    assert top.value.code == 0
    text = capsys.readouterr().out
    assert "demo" in text and "--version" in text
    with pytest.raises(SystemExit) as demo:
        main(["demo", "--help"])
    assert demo.value.code == 0
    text = capsys.readouterr().out
    for option in ["--mode", "--model", "--speed", "--question", "--color", "--no-color"]:
        assert option in text
    for mode in ["updates", "messages", "custom", "values", "all"]:
        assert mode in text


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys)
    assert status == 0 and "usage: rxagent" in out and "demo" in out


def test_a_negative_speed_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--speed", "-1"])
    assert exit_info.value.code == 2
    assert "--speed must not be negative" in capsys.readouterr().err


def test_a_real_model_without_a_key_fails_with_a_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    status, out, err = run_main(capsys, "demo", "--model", "openai:gpt-5-nano")
    assert status == 1
    assert out.splitlines()[-1].startswith("✗ stopped (MissingAPIKeyError)")
    assert "OPENAI_API_KEY" in err
    assert "without --model" in err


def test_an_unknown_model_string_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys, "demo", "--model", "nobody:knows")
    assert status == 1
    assert err.startswith("rxagent: error: ")
    assert "Traceback" not in err


# -- the renderer, beyond the demo -----------------------------------------------------------


QUESTION = {"messages": [{"role": "user", "content": "Weather in SF and LA?"}]}


def lookup(city: str) -> str:
    """Look the weather up."""
    get_stream_writer()(f"looking up {city}")
    return f"Sunny in {city}."


def two_calls_agent() -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[
            {"name": "lookup", "args": {"city": "SF"}, "id": "a"},
            {"name": "lookup", "args": {"city": "LA"}, "id": "b"},
        ]),
        "Both sunny.",
    ])
    return create_agent(model, tools=[lookup])


def render(agent: Any, out: io.StringIO | io.TextIOWrapper) -> None:
    renderer = TerminalRenderer(out)
    for part in agent.stream(QUESTION, stream_mode=["updates", "messages", "custom"],
                             subgraphs=True, version="v2"):
        renderer.feed(part)
    renderer.close()


def test_every_tool_call_of_a_reply_is_closed_on_its_own_line() -> None:
    out = io.StringIO()
    render(two_calls_agent(), out)
    lines = out.getvalue().splitlines()
    assert '  ⚙ lookup({"city":"SF"})' in lines
    assert '  ⚙ lookup({"city":"LA"})' in lines


def test_a_nested_agent_is_indented_under_its_caller() -> None:
    researcher = create_agent(
        ScriptedChatModel([
            AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "SF"},
                                               "id": "r1"}]),
            "It is sunny.",
        ]),
        tools=[lookup], name="researcher",
    )
    boss = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "researcher", "args": {"request": "SF?"},
                                           "id": "c1"}]),
        "Sunny, says research.",
    ]), tools=[researcher])
    out = io.StringIO()
    render(boss, out)
    lines = out.getvalue().splitlines()
    assert "  ▶ researcher ▸ model · step 1" in lines
    assert "    · looking up SF" in lines
    assert "    It is sunny." in lines
    assert "  ✓ researcher → It is sunny." in lines
    assert lines[-1] == "✔ done: 4 model calls, 2 tool calls, 6 text chunks"


def test_a_terminal_that_cannot_show_the_symbols_gets_ascii() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    render(two_calls_agent(), out)
    out.flush()
    text = raw.getvalue().decode("ascii")
    assert '* lookup({"city":"SF"})' in text
    assert "= done:" in text


def test_closing_early_says_why() -> None:
    out = io.StringIO()
    renderer = TerminalRenderer(out)
    renderer.feed("partial text")
    renderer.close(stopped="interrupted")
    assert out.getvalue().splitlines() == ["partial text",
                                           "✗ stopped (interrupted) after 0 model calls, "
                                           "0 tool calls"]


# -- as a program ------------------------------------------------------------------------------


def plain_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"NO_COLOR", "TERM"}}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_python_dash_m_rxagent_demo_piped_is_plain_text() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rxagent", "demo", "--speed", "0"],
        capture_output=True, text=True, encoding="utf-8", env=plain_environment(),
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "⚙ get_weather(" in result.stdout
    assert "✔ done: 2 model calls, 1 tool call" in result.stdout
    assert ESC not in result.stdout


def test_a_closed_pipe_ends_the_demo_without_a_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rxagent", "demo", "--speed", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=plain_environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # like `rxagent demo | head -1`
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) in (0, 1)
    assert "Traceback" not in errors
