"""The README's examples run as written, and its test command is the one CI runs."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def run_block(index: int) -> tuple[dict[str, object], str]:
    namespace: dict[str, object] = {"__name__": f"readme_example_{index}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(python_blocks()[index], f"README.md[{index}]", "exec"), namespace)
    return namespace, out.getvalue()


def test_the_readme_has_the_examples_these_tests_expect() -> None:
    assert len(python_blocks()) == 7


def test_seed_example_prints_updates_and_custom_in_order() -> None:
    _, printed = run_block(0)
    modes = re.findall(r"^stream_mode: (\w+)$", printed, re.MULTILINE)
    assert modes == ["updates", "custom", "updates", "updates"]
    assert "content: Looking up data for city: San Francisco" in printed
    assert "It's always sunny in San Francisco!" in printed


def test_observable_example_collects_the_answer_word_by_word() -> None:
    namespace, _ = run_block(1)
    words = namespace["words"]
    assert words == ["Streaming,", " one", " token", " at", " a", " time."]


def test_operators_example_coalesces_one_run_read_twice() -> None:
    namespace, _ = run_block(2)
    pieces = namespace["pieces"]
    assert isinstance(pieces, list)
    assert "".join(pieces) == "Many small tokens, merged for a calmer screen."
    assert len(pieces) < 8, "eight text tokens, merged into fewer parts"
    assert namespace["states"] == 2, "the second reading replays the same run"


def test_subagent_in_a_tool_example_streams_the_sub_agents_tokens_first() -> None:
    _, printed = run_block(3)
    lines = printed.splitlines()
    assert lines[:4] == [
        "1 researcher 'Sunny'", "1 researcher ' all'", "1 researcher ' week.'",
        "0 None 'Sunny all week.'",
    ]
    assert lines[-1] == "0 None ' sunny.'"


def test_threads_example_remembers_interrupts_and_resumes() -> None:
    namespace, printed = run_block(4)
    assert printed.splitlines() == [
        "['model']", "['__interrupt__']", "{'question': 'Book the Ritz?'}",
        "['human', 'ai', 'human', 'ai', 'tool', 'ai']",
    ]
    final = namespace["final"]
    assert isinstance(final, dict)
    assert final["messages"][-2].content == "Booked the Ritz."


def test_middleware_example_reviews_the_call_before_it_runs() -> None:
    namespace, printed = run_block(5)
    assert printed.splitlines() == [
        "['keep_it_short.before_model']", "['model']", "['__interrupt__']", "Sent to bob.",
    ]
    final = namespace["final"]
    assert isinstance(final, dict)
    assert final["messages"][-1].content == "Done: the email went to Bob."


def test_ci_runs_the_readme_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- ci:test-command -->\n```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None
    assert "pip install -e '.[test]'" in block.group(1) and "pytest" in block.group(1)
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "ci:test-command" in ci
