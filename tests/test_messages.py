"""Message types: content blocks, coercion from dicts and tuples, repr, pretty printing, make_chunk,
and how the messages modules depend on each other.

Chunk merging and the accumulator are in ``test_messages_merge.py``; the fast builders checked
against validation, field by field, in ``test_construct.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

import rxagent.messages as public
from rxagent import InvalidMessageError, UsageError
from rxagent.chat_models import make_chunk
from rxagent.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    to_message,
    to_messages,
)

# Printed by the seed docs (stream_mode=["updates", "custom"]), character for character.
SEED_AI_REPR = (
    "AIMessage(content='', response_metadata={'token_usage': {'completion_tokens': 280, "
    "'prompt_tokens': 132, 'total_tokens': 412, 'completion_tokens_details': "
    "{'accepted_prediction_tokens': 0, 'audio_tokens': 0, 'reasoning_tokens': 256, "
    "'rejected_prediction_tokens': 0}, 'prompt_tokens_details': {'audio_tokens': 0, "
    "'cached_tokens': 0}}, 'model_provider': 'openai', 'model_name': 'gpt-5-nano-2025-08-07', "
    "'system_fingerprint': None, 'id': 'chatcmpl-C9tlgBzGEbedGYxZ0rTCz5F7OXpL7', "
    "'service_tier': 'default', 'finish_reason': 'tool_calls', 'logprobs': None}, "
    "id='lc_run--480c07cb-e405-4411-aa7f-0520fddeed66-0', tool_calls=[{'name': 'get_weather', "
    "'args': {'city': 'San Francisco'}, 'id': 'call_KTNQIftMrl9vgNwEfAJMVu7r', "
    "'type': 'tool_call'}], usage_metadata={'input_tokens': 132, 'output_tokens': 280, "
    "'total_tokens': 412, 'input_token_details': {'audio': 0, 'cache_read': 0}, "
    "'output_token_details': {'audio': 0, 'reasoning': 256}})"
)
SEED_TOOL_REPR = (
    "ToolMessage(content=\"It's always sunny in San Francisco!\", name='get_weather', "
    "tool_call_id='call_KTNQIftMrl9vgNwEfAJMVu7r')"
)
SUNNY = "It's always sunny in San Francisco!"


def fragment(
    args: str | None, *, index: int | None = 0, id: str | None = None, name: str | None = None
) -> ToolCallChunk:
    return {"name": name, "args": args, "id": id, "index": index, "type": "tool_call_chunk"}


# -- the public module -------------------------------------------------------------------


def test_public_all_is_sorted_and_complete() -> None:
    # Constants, then classes, then functions (ruff's order).
    def rank(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2), name

    assert public.__all__ == sorted(public.__all__, key=rank)
    for name in public.__all__:
        assert getattr(public, name) is not None
    assert "make_chunk" not in public.__all__, "the unchecked constructor stays internal"


# -- content_blocks ----------------------------------------------------------------------


def test_seed_tool_call_blocks_print_exactly() -> None:
    message = AIMessage(
        content="",
        tool_calls=[
            {
                "name": "get_weather",
                "args": {"city": "San Francisco"},
                "id": "call_OW2NYNsNSKhRZpjW0wm2Aszd",
            }
        ],
    )
    assert str(message.content_blocks) == (
        "[{'type': 'tool_call', 'name': 'get_weather', 'args': {'city': 'San Francisco'}, "
        "'id': 'call_OW2NYNsNSKhRZpjW0wm2Aszd'}]"
    )


def test_seed_tool_message_and_text_blocks_print_exactly() -> None:
    tool = ToolMessage(content=SUNNY, name="get_weather", tool_call_id="call_1")
    assert (
        str(tool.content_blocks)
        == "[{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]"
    )
    assert (
        str(make_chunk("Here", id="run-1").content_blocks) == "[{'type': 'text', 'text': 'Here'}]"
    )


def test_seed_tool_call_chunk_blocks_print_exactly() -> None:
    header = make_chunk(
        "",
        tool_call_chunks=[fragment("", id="call_vbCyBcP8VuneUzyYlSBZZsVa", name="get_weather")],
    )
    piece = make_chunk("", tool_call_chunks=[fragment('{"')])
    assert str(header.content_blocks) == (
        "[{'type': 'tool_call_chunk', 'id': 'call_vbCyBcP8VuneUzyYlSBZZsVa', "
        "'name': 'get_weather', 'args': '', 'index': 0}]"
    )
    assert str(piece.content_blocks) == (
        "[{'type': 'tool_call_chunk', 'id': None, 'name': None, 'args': '{\"', 'index': 0}]"
    )


def test_the_seeds_final_empty_chunk_has_no_blocks() -> None:
    last = make_chunk("", chunk_position="last", response_metadata={"finish_reason": "stop"})
    assert last.content_blocks == []


def test_empty_string_content_has_no_blocks() -> None:
    assert HumanMessage(content="").content_blocks == []
    assert HumanMessage(content="hi").content_blocks == [{"type": "text", "text": "hi"}]


def test_list_content_blocks_of_every_kind() -> None:
    image = {"type": "image", "url": "https://example.com/a.png"}
    message = AIMessage(
        content=[
            "plain",
            {"type": "text", "text": "cited", "annotations": [{"url": "u"}]},
            {"type": "reasoning", "reasoning": "because", "id": "rs_1"},
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            image,
        ]
    )
    blocks = message.content_blocks
    assert blocks == [
        {"type": "text", "text": "plain"},
        {"type": "text", "text": "cited", "annotations": [{"url": "u"}]},
        {"type": "reasoning", "reasoning": "because", "id": "rs_1"},
        {"type": "reasoning", "reasoning": "hmm", "extras": {"signature": "sig"}},
        image,
    ]
    assert [list(block)[:2] for block in blocks[:4]] == [
        ["type", "text"],
        ["type", "text"],
        ["type", "reasoning"],
        ["type", "reasoning"],
    ]


def test_invalid_tool_call_block_shape() -> None:
    message = AIMessage(
        content="",
        invalid_tool_calls=[{"name": "f", "args": '{"a', "id": "c1", "error": "bad"}],
    )
    assert str(message.content_blocks) == (
        "[{'type': 'invalid_tool_call', 'id': 'c1', 'name': 'f', 'args': '{\"a', 'error': 'bad'}]"
    )


def test_text_comes_before_tool_calls_and_calls_in_content_are_not_repeated() -> None:
    call: ToolCall = {"name": "f", "args": {}, "id": "c1"}
    message = AIMessage(content="Let me check.", tool_calls=[call])
    assert [b["type"] for b in message.content_blocks] == ["text", "tool_call"]
    in_content = AIMessage(content=[{"type": "tool_call", **call}], tool_calls=[call])
    assert len(in_content.content_blocks) == 1


def test_a_last_chunk_shows_its_parsed_calls_and_others_their_fragments() -> None:
    fragments = [fragment('{"a": 1}', id="c1", name="f")]
    assert make_chunk("", tool_call_chunks=fragments).content_blocks[0]["type"] == (
        "tool_call_chunk"
    )
    last = make_chunk("", tool_call_chunks=fragments, chunk_position="last")
    assert last.content_blocks == [{"type": "tool_call", "name": "f", "args": {"a": 1}, "id": "c1"}]


def test_a_chunk_fragment_without_index_shows_index_none() -> None:
    chunk = make_chunk("", tool_call_chunks=[fragment("{}", index=None, id="c1", name="f")])
    assert chunk.content_blocks[0]["index"] is None


def test_content_blocks_are_fresh_copies() -> None:
    message = AIMessage(
        content=[{"type": "text", "text": "a", "annotations": [{"url": "u"}]}],
        tool_calls=[{"name": "f", "args": {"x": [1]}, "id": "c1"}],
    )
    blocks = message.content_blocks
    blocks[0]["annotations"].append("junk")
    blocks[1]["args"]["x"].append(2)
    assert message.content == [{"type": "text", "text": "a", "annotations": [{"url": "u"}]}]
    assert message.tool_calls[0]["args"] == {"x": [1]}


def test_text_joins_text_blocks_and_strings_only() -> None:
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "secret"},
            "a",
            {"type": "text", "text": "b"},
            {"type": "image", "url": "u"},
        ]
    )
    assert message.text == "ab"
    assert ToolMessage(content="done", tool_call_id="c").text == "done"


# -- construction ------------------------------------------------------------------------


def test_content_may_be_positional() -> None:
    # At run time only: type checkers see pydantic's keyword-only constructor.
    assert HumanMessage("hi") == HumanMessage(content="hi")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="both"):
        HumanMessage("hi", content="there")  # type: ignore[misc]


def test_tool_calls_get_their_type_and_id_filled_in() -> None:
    message = AIMessage(content="", tool_calls=[{"name": "f", "args": {"a": 1}}])  # type: ignore[typeddict-item]
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": None, "type": "tool_call"}]
    assert list(message.tool_calls[0]) == ["name", "args", "id", "type"]


def test_a_tool_call_with_the_wrong_type_is_rejected() -> None:
    with pytest.raises(InvalidMessageError):
        AIMessage(content="", tool_calls=[{"name": "f", "args": {}, "id": "c", "type": "nope"}])  # type: ignore[typeddict-item]


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(InvalidMessageError, match="tool_call"):
        AIMessage(content="", tool_call=[])  # type: ignore[call-arg]


def test_type_literals() -> None:
    assert [m.type for m in (HumanMessage(), SystemMessage(), AIMessage())] == [
        "human",
        "system",
        "ai",
    ]
    assert AIMessageChunk().type == "AIMessageChunk"
    assert ToolMessage(content="", tool_call_id="c").type == "tool"
    assert isinstance(AIMessageChunk(), AIMessage)


def test_a_chunk_given_tool_calls_keeps_them_as_fragments() -> None:
    calls: list[ToolCall] = [{"name": "f", "args": {"a": 1}, "id": "c1"}]
    chunk = AIMessageChunk(content="", tool_calls=calls)
    assert chunk.tool_calls == [], "only the last chunk carries parsed calls"
    assert chunk.tool_call_chunks == [fragment('{"a": 1}', index=None, id="c1", name="f")]
    assert chunk.to_message().tool_calls == [{**calls[0], "type": "tool_call"}]
    last = AIMessageChunk(content="", tool_calls=calls, chunk_position="last")
    assert last.tool_calls == [{**calls[0], "type": "tool_call"}]


def test_any_message_round_trips_through_model_dump() -> None:
    adapter: TypeAdapter[list[AnyMessage]] = TypeAdapter(list[AnyMessage])
    messages: list[BaseMessage] = [
        SystemMessage(content="Be brief."),
        HumanMessage(content="Hi", id="h1"),
        AIMessage(content="", tool_calls=[{"name": "f", "args": {}, "id": "c"}]),
        make_chunk("tok", id="r"),
        ToolMessage(content="ok", tool_call_id="c", status="error"),
    ]
    restored = adapter.validate_python([m.model_dump() for m in messages])
    assert restored == messages
    assert [type(m) for m in restored] == [type(m) for m in messages]


# -- repr and pretty_print -----------------------------------------------------------------


def test_seed_reprs_round_trip_exactly() -> None:
    names = {"AIMessage": AIMessage, "ToolMessage": ToolMessage}
    for text in (SEED_AI_REPR, SEED_TOOL_REPR):
        assert repr(eval(text, names)) == text


def test_repr_shows_only_what_differs_from_defaults() -> None:
    assert repr(HumanMessage(content="hi")) == "HumanMessage(content='hi')"
    assert repr(AIMessage()) == "AIMessage(content='')", "content shows even when empty"
    failed = ToolMessage(content="boom", tool_call_id="c", status="error", artifact=[1])
    assert repr(failed) == (
        "ToolMessage(content='boom', tool_call_id='c', artifact=[1], status='error')"
    )
    assert repr(make_chunk("tok", id="r", chunk_position="last")) == (
        "AIMessageChunk(content='tok', id='r', chunk_position='last')"
    )


def test_pretty_print_of_a_tool_calling_reply(capsys: pytest.CaptureFixture[str]) -> None:
    AIMessage(
        content="",
        tool_calls=[{"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1"}],
        invalid_tool_calls=[{"name": "f", "args": "{", "id": "call_2", "error": "truncated"}],
    ).pretty_print()
    assert capsys.readouterr().out == (
        "================================== Ai Message ==================================\n"
        "Tool Calls:\n"
        "  get_weather (call_1)\n"
        " Call ID: call_1\n"
        "  Args:\n"
        "    city: San Francisco\n"
        "Invalid Tool Calls:\n"
        "  f (call_2)\n"
        " Call ID: call_2\n"
        "  Error: truncated\n"
        "  Args:\n"
        "    {\n"
    )


def test_pretty_print_of_text_messages(capsys: pytest.CaptureFixture[str]) -> None:
    HumanMessage(content="What is the weather in SF?").pretty_print()
    ToolMessage(content=SUNNY, name="get_weather", tool_call_id="c").pretty_print()
    AIMessage(content=[{"type": "reasoning", "reasoning": "r"}, "Sunny."]).pretty_print()
    assert capsys.readouterr().out == (
        "================================ Human Message =================================\n"
        "\n"
        "What is the weather in SF?\n"
        "================================= Tool Message =================================\n"
        "Name: get_weather\n"
        "\n"
        f"{SUNNY}\n"
        "================================== Ai Message ==================================\n"
        "\n"
        "Sunny.\n"
    )
    assert all(len(line) == 80 for line in HumanMessage().pretty_repr().splitlines()[:1])


# -- coercion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "cls"),
    [
        ("user", HumanMessage),
        ("human", HumanMessage),
        ("assistant", AIMessage),
        ("ai", AIMessage),
        ("system", SystemMessage),
        ("developer", SystemMessage),
    ],
)
def test_role_dicts_and_tuples(role: str, cls: type[BaseMessage]) -> None:
    from_dict = to_message({"role": role, "content": "hi"})
    assert type(from_dict) is cls and from_dict.content == "hi"
    assert to_message((role, "hi")) == from_dict


def test_a_str_is_a_human_message_and_messages_pass_through() -> None:
    assert to_message("hi") == HumanMessage(content="hi")
    message = AIMessage(content="x")
    assert to_message(message) is message


def test_a_tool_dict_needs_its_call_id() -> None:
    message = to_message({"role": "tool", "content": "ok", "tool_call_id": "c1", "name": "f"})
    assert message == ToolMessage(content="ok", tool_call_id="c1", name="f")
    with pytest.raises(InvalidMessageError, match="tool_call_id"):
        to_message({"role": "tool", "content": "ok"})
    with pytest.raises(InvalidMessageError, match="tool_call_id"):
        to_message(("tool", "ok"))


def test_a_dumped_message_reads_back() -> None:
    message = AIMessage(content="x", tool_calls=[{"name": "f", "args": {}, "id": "c"}], id="m")
    data = message.model_dump()
    assert to_message(data) == message


def test_assistant_dicts_take_our_tool_calls_without_type() -> None:
    message = to_message(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"name": "f", "args": {"a": 1}, "id": "c"}],
        }
    )
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c", "type": "tool_call"}]


def test_assistant_dicts_take_openai_wire_tool_calls() -> None:
    message = to_message(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "SF"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{"}},
            ],
        }
    )
    assert isinstance(message, AIMessage) and message.content == ""
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "SF"}, "id": "call_1", "type": "tool_call"}
    ]
    [bad] = message.invalid_tool_calls
    assert bad["id"] == "call_2" and bad["args"] == "{"
    assert bad["error"] is not None and "Expecting" in bad["error"]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (42, "cannot read a int as a message"),
        (None, "cannot read a NoneType"),
        ({"content": "hi"}, "needs a 'role'"),
        ({"role": "robot", "content": "hi"}, "unknown message role 'robot'"),
        ({"role": "user", "type": "human", "content": "hi"}, "not both"),
        ({"role": "user"}, "needs 'content'"),
        ({"role": "user", "content": "hi", "colour": "red"}, "unknown keys ['colour']"),
        ({"role": "user", "content": 42}, "not a valid HumanMessage"),
        (("user", "hi", "extra"), "(role, content)"),
        ((1, "hi"), "(role, content)"),
        (("robot", "hi"), "unknown message role"),
    ],
)
def test_what_is_not_a_message_is_explained(value: Any, needle: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        to_message(value)
    assert needle in str(caught.value)
    assert isinstance(caught.value, (ValueError, UsageError))


def test_the_error_lists_the_accepted_forms() -> None:
    with pytest.raises(
        InvalidMessageError, match=r"a str \(a user message\), a dict with a 'role'"
    ):
        to_message(3.5)  # type: ignore[arg-type]


def test_to_messages_reads_each_and_says_which_failed() -> None:
    messages = to_messages(["hi", ("ai", "hello"), {"role": "user", "content": "bye"}])
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, HumanMessage]
    with pytest.raises(InvalidMessageError, match="message 1: unknown message role"):
        to_messages(["hi", ("robot", "x")])


def test_to_messages_reads_a_single_message_as_a_list_of_one() -> None:
    assert to_messages("hi") == [HumanMessage(content="hi")]
    assert to_messages(("user", "hi")) == [HumanMessage(content="hi")]
    assert to_messages({"role": "user", "content": "hi"}) == [HumanMessage(content="hi")]
    with pytest.raises(InvalidMessageError, match="expected a list of messages, got int"):
        to_messages(42)  # type: ignore[arg-type]


# -- make_chunk ------------------------------------------------------------------------------

MAKE_CHUNK_CASES: list[dict[str, Any]] = [
    {},
    {"content": "tok"},
    {"content": "tok", "id": "run-1"},
    {"content": [{"type": "text", "text": "a"}], "name": "bot"},
    {"tool_call_chunks": [fragment("", id="c1", name="f")]},
    {"tool_call_chunks": [fragment('{"a": 1}', id="c1", name="f")], "chunk_position": "last"},
    {"tool_call_chunks": [fragment('{"a', id="c1", name="f")], "chunk_position": "last"},
    {
        "chunk_position": "last",
        "response_metadata": {"finish_reason": "stop"},
        "usage_metadata": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    },
]


@pytest.mark.parametrize("kwargs", MAKE_CHUNK_CASES)
def test_make_chunk_is_indistinguishable_from_validated_construction(
    kwargs: dict[str, Any],
) -> None:
    fast = make_chunk(**json.loads(json.dumps(kwargs)))
    slow = AIMessageChunk(**json.loads(json.dumps(kwargs)))
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.content_blocks == slow.content_blocks
    other = make_chunk("more", id="x")
    assert fast + other == slow + other
    assert other + fast == other + slow
    assert fast.model_copy(update={"id": "z"}) == slow.model_copy(update={"id": "z"})


def test_make_chunks_share_no_mutable_defaults() -> None:
    first, second = make_chunk("a"), make_chunk("b")
    first.response_metadata["k"] = 1
    first.additional_kwargs["k"] = 1
    first.tool_call_chunks.append(fragment("x"))
    assert second.response_metadata == {} and second.additional_kwargs == {}
    assert second.tool_call_chunks == []
    first.name = "set later"
    assert "name" in first.model_fields_set and "name" not in second.model_fields_set


def test_content_blocks_given_at_construction_become_the_content() -> None:
    blocks = [{"type": "text", "text": "hi"}, {"type": "image", "url": "https://x/i.png"}]
    assert HumanMessage(content_blocks=blocks).content == blocks
    with pytest.raises(TypeError, match="both"):
        HumanMessage("hi", content_blocks=blocks)


def test_openai_reasoning_items_give_one_block_per_summary_part() -> None:
    empty = AIMessage(content=[{"type": "reasoning", "id": "rs_1", "summary": [],
                                "encrypted_content": "x"}])
    assert empty.content_blocks == [
        {"type": "reasoning", "id": "rs_1", "extras": {"encrypted_content": "x"}}]
