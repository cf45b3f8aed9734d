"""Tools from plain functions: schemas, docstrings, the decorator, running for the agent loop."""

import contextvars
import datetime
import functools
import threading
from typing import Annotated, Any, Literal, Optional

import anyio
import anyio.to_thread
import pytest
import reactivex
from pydantic import BaseModel, Field, ValidationError

from rxagent import to_iterator
from rxagent._exceptions import InvalidToolArgumentsError, ToolDefinitionError
from rxagent._messages import ToolCall, ToolMessage
from rxagent._writer import current_writer
from rxagent.testing import ScriptedChatModel
from rxagent.tools import BaseTool, StreamWriter, as_tool, get_stream_writer, tool
from tests.conftest import FakeClock


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(name: str, args: Any, id: str | None = "call_1") -> ToolCall:
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


class Recorder:
    """A writer's sink that remembers what was written and from which thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.threads: list[int] = []

    def send(self, data: Any) -> None:
        self.items.append(data)
        self.threads.append(threading.get_ident())

    def writer(self) -> StreamWriter:
        return StreamWriter(self.send)


class Address(BaseModel):
    street: str
    zip_code: str = Field(default="", description="postal code")


# -- schemas ------------------------------------------------------------------------------


def test_spec_of_the_seed_example() -> None:
    def get_weather(city: str) -> str:
        """Get weather for a given city."""
        return f"It's always sunny in {city}!"

    assert as_tool(get_weather).tool_spec() == {
        "name": "get_weather",
        "description": "Get weather for a given city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }


def test_schema_from_type_hints() -> None:
    def search(
        query: str,
        limit: int,
        threshold: float = 0.5,
        exact: bool = False,
        tags: list[str] | None = None,
        since: Optional[int] = None,  # noqa: UP045 - the old spelling must work too
        order: Literal["asc", "desc"] = "asc",
        address: Address | None = None,
    ) -> str:
        """Search."""
        return ""

    parameters = as_tool(search).tool_spec()["parameters"]
    assert parameters["required"] == ["query", "limit"]
    assert parameters["additionalProperties"] is False
    assert "title" not in parameters
    props = parameters["properties"]
    assert props["query"] == {"type": "string"}
    assert props["limit"] == {"type": "integer"}
    assert props["threshold"] == {"type": "number", "default": 0.5}
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["tags"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }
    assert props["since"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["order"] == {"enum": ["asc", "desc"], "type": "string", "default": "asc"}
    assert props["address"] == {
        "anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}],
        "default": None,
    }
    address = parameters["$defs"]["Address"]
    assert address["required"] == ["street"]
    assert address["properties"] == {
        "street": {"type": "string"},
        "zip_code": {"type": "string", "default": "", "description": "postal code"},
    }


def test_missing_hints_mean_any_value() -> None:
    def echo(value, times: int = 1):  # type: ignore[no-untyped-def]
        """Echo."""
        return [value] * times

    echo_tool = as_tool(echo)
    assert echo_tool.tool_spec()["parameters"]["properties"]["value"] == {}
    assert echo_tool.invoke({"value": {"any": ["thing"]}, "times": 2}) == [
        {"any": ["thing"]},
        {"any": ["thing"]},
    ]


def test_no_arguments_still_gives_an_object_schema() -> None:
    def now() -> str:
        """The time."""
        return "noon"

    assert as_tool(now).tool_spec()["parameters"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }


def test_explicit_field_title_is_kept() -> None:
    def f(x: Annotated[int, Field(title="The X")]) -> int:
        """F."""
        return x

    assert as_tool(f).tool_spec()["parameters"]["properties"]["x"] == {
        "type": "integer",
        "title": "The X",
    }


def test_property_named_title_survives_title_removal() -> None:
    def publish(title: str, body: str) -> str:
        """Publish."""
        return title

    props = as_tool(publish).tool_spec()["parameters"]["properties"]
    assert props == {"title": {"type": "string"}, "body": {"type": "string"}}


def test_names_reserved_by_pydantic_are_fine() -> None:
    def f(json: str, copy: int = 1, _hidden: bool = False) -> str:
        """F."""
        return f"{json}-{copy}-{_hidden}"

    f_tool = as_tool(f)
    assert set(f_tool.tool_spec()["parameters"]["properties"]) == {"json", "copy", "_hidden"}
    assert f_tool.invoke({"json": "a", "copy": 2, "_hidden": True}) == "a-2-True"

    def g(_x: int, field_0: int) -> str:
        """G."""
        return f"{_x}-{field_0}"

    assert as_tool(g).invoke({"_x": 1, "field_0": 2}) == "1-2"


def test_tool_spec_returns_a_fresh_copy() -> None:
    def f(x: int) -> int:
        """F."""
        return x

    f_tool = as_tool(f)
    f_tool.tool_spec()["parameters"]["properties"].clear()
    assert f_tool.tool_spec()["parameters"]["properties"] == {"x": {"type": "integer"}}


# -- docstrings ---------------------------------------------------------------------------


def test_google_docstring() -> None:
    def get_weather(city: str, days: int = 1, units: str = "C") -> str:
        """Get weather for a given city.

        Use it for forecasts too.

        Args:
            city (str): the city, e.g.
                "San Francisco".
            days: how many days ahead.
            unknown: not a parameter; ignored.

        Returns:
            A sentence about the weather.

        Raises:
            ValueError: never.
        """
        return ""

    spec = as_tool(get_weather).tool_spec()
    assert spec["description"] == "Get weather for a given city.\n\nUse it for forecasts too."
    props = spec["parameters"]["properties"]
    assert props["city"] == {"type": "string", "description": 'the city, e.g. "San Francisco".'}
    assert props["days"] == {"type": "integer", "default": 1, "description": "how many days ahead."}
    assert props["units"] == {"type": "string", "default": "C"}


def test_no_docstring_gives_an_empty_description() -> None:
    def f(x: int) -> int:
        return x

    assert as_tool(f).description == ""


def test_annotated_description_wins_over_docstring() -> None:
    def f(
        a: Annotated[int, Field(description="from Field")],
        b: Annotated[int, "from Annotated"],
        c: int,
    ) -> int:
        """F.

        Args:
            a: from docstring.
            b: from docstring.
            c: from docstring.
        """
        return a

    props = as_tool(f).tool_spec()["parameters"]["properties"]
    assert props["a"]["description"] == "from Field"
    assert props["b"]["description"] == "from Annotated"
    assert props["c"]["description"] == "from docstring."


def test_section_headers_only_count_on_their_own_line() -> None:
    def f() -> None:
        """Note: this is prose, not a section.

        Example: neither is this.
        """

    assert as_tool(f).description == (
        "Note: this is prose, not a section.\n\nExample: neither is this."
    )


# -- the decorator and as_tool ------------------------------------------------------------


def test_decorator_bare() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, BaseTool)
    assert (add.name, add.description, add.is_async) == ("add", "Add two numbers.", False)
    assert add(1, 2) == 3  # still callable as the function


def test_decorator_with_name() -> None:
    @tool("plus")
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert (add.name, add.description, add.is_async) == ("plus", "Add two numbers.", True)


def test_decorator_with_keywords() -> None:
    @tool(name="plus", description="  Sum of a and b.  ")
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: first.
        """
        return a + b

    assert (add.name, add.description) == ("plus", "Sum of a and b.")
    assert add.tool_spec()["parameters"]["properties"]["a"]["description"] == "first."


def test_decorator_with_empty_parentheses() -> None:
    @tool()
    def add(a: int) -> int:
        """Add."""
        return a

    assert add.name == "add"


def test_decorator_name_given_twice() -> None:
    with pytest.raises(ToolDefinitionError, match="given twice"):
        tool("a", name="b")  # type: ignore[call-overload]


def test_as_tool_passes_tools_through_and_uses_as_tool_methods() -> None:
    @tool
    def f(x: int) -> int:
        """F."""
        return x

    class Agentish:
        def as_tool(self) -> BaseTool:
            return f

    class Broken:
        def as_tool(self) -> str:
            return "nope"

    assert as_tool(f) is f
    assert as_tool(Agentish()) is f
    with pytest.raises(ToolDefinitionError, match=r"as_tool\(\) returned str"):
        as_tool(Broken())
    with pytest.raises(ToolDefinitionError, match="expected a function"):
        as_tool(42)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(ToolDefinitionError, match="lambda"):
        as_tool(lambda x: x)
    double = tool("double")(lambda x: x * 2)
    assert double.invoke({"x": 4}) == 8


def test_partial_and_callable_object_need_a_name() -> None:
    def power(base: int, exponent: int) -> int:
        """Raise base to exponent."""
        return int(base**exponent)

    square = functools.partial(power, exponent=2)
    with pytest.raises(ToolDefinitionError, match="no __name__"):
        as_tool(square)
    square_tool = BaseTool(square, name="square")
    assert square_tool.invoke({"base": 3}) == 9
    assert square_tool.description == "Raise base to exponent."  # not partial's own docstring

    class Greeter:
        """Greet someone."""

        async def __call__(self, who: str) -> str:
            return f"hi {who}"

    with pytest.raises(ToolDefinitionError, match="no __name__"):
        as_tool(Greeter())
    greet = BaseTool(Greeter(), name="greet")
    assert greet.is_async
    assert greet.description == "Greet someone."
    assert greet.invoke({"who": "Ann"}) == "hi Ann"


def test_callable_object_described_by_its_call_method() -> None:
    class Counter:
        def __call__(self, text: str) -> int:
            """Count the words.

            Args:
                text: the text.
            """
            return len(text.split())

    count = BaseTool(Counter(), name="count")
    assert not count.is_async
    assert count.description == "Count the words."
    assert count.tool_spec()["parameters"]["properties"]["text"]["description"] == "the text."


def test_bound_method() -> None:
    class Store:
        def lookup(self, key: str) -> str:
            """Look a key up."""
            return key.upper()

    lookup = as_tool(Store().lookup)
    assert lookup.tool_spec()["parameters"]["properties"] == {"key": {"type": "string"}}
    assert lookup.invoke({"key": "a"}) == "A"
    with pytest.raises(ToolDefinitionError, match="bound method"):
        as_tool(Store.lookup)


def _star_args(*values: int) -> int:
    return 0


def _star_kwargs(a: int, **options: Any) -> int:
    return 0


def _positional_only(a: int, /) -> int:
    return 0


def _generator(a: int) -> Any:
    yield a


class _SomeClass:
    pass


@pytest.mark.parametrize(
    ("func", "match"),
    [
        (_star_args, r"\*values"),
        (_star_kwargs, r"\*\*options"),
        (_positional_only, "positional-only"),
        (_generator, "generator"),
        (_SomeClass, "class"),
    ],
)
def test_functions_that_cannot_be_tools(func: Any, match: str) -> None:
    with pytest.raises(ToolDefinitionError, match=match):
        as_tool(func)


def test_bad_names() -> None:
    def f() -> None:
        """F."""

    for name in ("", "has space", "x" * 65, "météo"):
        with pytest.raises(ToolDefinitionError, match="cannot be a tool name"):
            BaseTool(f, name=name)


def test_unresolvable_hint() -> None:
    def f(x: "NoSuchType") -> None:  # type: ignore[name-defined]  # noqa: F821
        """F."""

    with pytest.raises(ToolDefinitionError, match="cannot resolve the type hints"):
        as_tool(f)


def test_type_without_json_schema() -> None:
    class Opaque:
        pass

    def f(x: Opaque) -> None:
        """F."""

    with pytest.raises(ToolDefinitionError, match="'f'"):
        as_tool(f)


def test_tool_definition_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        as_tool(lambda: None)


# -- invoke / ainvoke ---------------------------------------------------------------------


def test_invoke_validates_and_coerces() -> None:
    @tool
    def f(n: int, address: Address, tags: list[int] | None = None) -> Any:
        """F."""
        return (n, address, tags)

    n, address, tags = f.invoke({"n": "3", "address": {"street": "Main"}})
    assert n == 3
    assert address == Address(street="Main", zip_code="")
    assert tags is None
    with pytest.raises(InvalidToolArgumentsError, match="n: "):
        f.invoke({"n": "three", "address": {"street": "Main"}})


def test_function_defaults_apply_to_missing_arguments() -> None:
    sentinel: list[int] = []

    @tool
    def f(items: list[int] = sentinel) -> bool:
        """F."""
        return items is sentinel

    assert f.invoke({}) is True
    assert f.invoke(None) is True


def test_invoke_runs_async_tools_too() -> None:
    @tool
    async def f(x: int) -> int:
        """F."""
        await anyio.sleep(0)
        return x + 1

    assert f.invoke({"x": 1}) == 2


@pytest.mark.anyio
async def test_ainvoke() -> None:
    @tool
    def f(x: int) -> int:
        """F."""
        return x * 10

    @tool
    async def g(x: int) -> int:
        """G."""
        return x * 100

    assert await f.ainvoke({"x": "2"}) == 20
    assert await g.ainvoke({"x": 2}) == 200
    with pytest.raises(ValueError, match="boom"):
        await as_tool(_boom).ainvoke({})


def _boom() -> None:
    raise ValueError("boom")


# -- arun: validation ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_bad_arguments_become_an_error_message_and_the_tool_is_not_called() -> None:
    called: list[Any] = []

    @tool
    def get_weather(city: str, days: int = 1) -> str:
        """Weather."""
        called.append(city)
        return "sunny"

    message = await get_weather.arun(
        call("get_weather", {"days": "three", "country": "US"}, id="call_9")
    )
    assert called == []
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.tool_call_id == "call_9"
    assert message.name == "get_weather"
    assert isinstance(message.artifact, ValidationError)
    content = message.content
    assert isinstance(content, str)
    assert content.startswith("Error: invalid arguments for tool 'get_weather':")
    assert "- city: Field required\n" in content
    assert "- days: Input should be a valid integer" in content
    assert '(got "three")' in content
    assert "- country: Extra inputs are not permitted" in content


@pytest.mark.anyio
async def test_nested_argument_errors_name_the_path() -> None:
    @tool
    def f(address: Address, scores: list[int]) -> str:
        """F."""
        return ""

    message = await f.arun(call("f", {"address": {}, "scores": [1, "x"]}))
    assert message.status == "error"
    assert "- address.street: Field required" in str(message.content)
    assert "- scores[1]: Input should be a valid integer" in str(message.content)


@pytest.mark.anyio
async def test_arguments_that_are_not_an_object() -> None:
    @tool
    def f(x: int) -> int:
        """F."""
        return x

    message = await f.arun(call("f", [1, 2]))
    assert message.status == "error"
    assert "- arguments: " in str(message.content)


# -- arun: results ------------------------------------------------------------------------


class Point(BaseModel):
    x: int
    y: int


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("It's sunny", "It's sunny"),
        ({"temp": 21, "city": "Zürich"}, '{"temp": 21, "city": "Zürich"}'),
        ([1, 2], "[1, 2]"),
        (42, "42"),
        (None, "null"),
        (Point(x=1, y=2), '{"x": 1, "y": 2}'),
        (datetime.date(2024, 5, 1), '"2024-05-01"'),
        ({"when": datetime.date(2024, 5, 1)}, '{"when": "2024-05-01"}'),
    ],
)
async def test_results_become_content(value: Any, content: str) -> None:
    def f() -> Any:
        """F."""
        return value

    message = await as_tool(f).arun(call("f", {}))
    assert message.content == content
    assert message.status == "success"
    assert (message.name, message.tool_call_id) == ("f", "call_1")


@pytest.mark.anyio
async def test_unserializable_result_falls_back_to_str() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    def f() -> Any:
        """F."""
        return Thing()

    message = await as_tool(f).arun(call("f", {}))
    assert message.content == "a thing"


@pytest.mark.anyio
async def test_returned_tool_message_is_used_with_the_call_id() -> None:
    @tool
    async def f() -> ToolMessage:
        """F."""
        return ToolMessage(content="raw", tool_call_id="", artifact={"rows": 3})

    message = await f.arun(call("f", {}, id="call_7"))
    assert message.content == "raw"
    assert message.artifact == {"rows": 3}
    assert message.tool_call_id == "call_7"
    assert message.name == "f"


@pytest.mark.anyio
async def test_sync_wrapper_returning_a_coroutine_is_awaited() -> None:
    recorder = Recorder()

    async def fetch(city: str) -> str:
        get_stream_writer()("fetching")
        return f"data for {city}"

    @functools.wraps(fetch)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fetch(*args, **kwargs)

    fetch_tool = BaseTool(wrapper)
    assert not fetch_tool.is_async
    assert fetch_tool.tool_spec()["parameters"]["properties"] == {"city": {"type": "string"}}
    message = await fetch_tool.arun(call("fetch", {"city": "SF"}), writer=recorder.writer())
    assert message.content == "data for SF"
    assert recorder.items == ["fetching"]


@pytest.mark.anyio
async def test_call_without_id() -> None:
    @tool
    def f() -> str:
        """F."""
        return "ok"

    message = await f.arun(call("f", {}, id=None))
    assert message.tool_call_id == ""


# -- arun: failures -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True])
async def test_exception_becomes_an_error_message(is_async: bool) -> None:
    error = LookupError("no such city: Atlantis")

    def sync_f(city: str) -> str:
        raise error

    async def async_f(city: str) -> str:
        raise error

    f = BaseTool(async_f if is_async else sync_f, name="find")
    message = await f.arun(call("find", {"city": "Atlantis"}))
    assert message.status == "error"
    assert message.content == "Error: LookupError: no such city: Atlantis"
    assert message.artifact is error
    assert (message.name, message.tool_call_id) == ("find", "call_1")


@pytest.mark.anyio
async def test_validation_error_raised_inside_the_tool_is_not_blamed_on_its_arguments() -> None:
    @tool
    def f(x: int) -> str:
        """F."""
        Point.model_validate({"x": x})
        return "unreachable"

    message = await f.arun(call("f", {"x": 1}))
    assert message.status == "error"
    assert str(message.content).startswith("Error: ValidationError: 1 validation error for Point")


@pytest.mark.anyio
async def test_exception_without_message() -> None:
    @tool
    def f() -> str:
        """F."""
        raise RuntimeError

    message = await f.arun(call("f", {}))
    assert message.content == "Error: RuntimeError"


@pytest.mark.anyio
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_interrupts_propagate(exc_type: type[BaseException]) -> None:
    @tool
    async def f() -> str:
        """F."""
        raise exc_type

    with pytest.raises(exc_type):
        await f.arun(call("f", {}))


@pytest.mark.anyio
async def test_cancelling_an_async_tool_propagates() -> None:
    started = anyio.Event()
    messages: list[ToolMessage] = []

    @tool
    async def wait_forever() -> str:
        """Wait."""
        started.set()
        await anyio.sleep_forever()
        return "never"

    async def run() -> None:
        messages.append(await wait_forever.arun(call("wait_forever", {})))

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await started.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert messages == []
    assert current_writer.get().discards


@pytest.mark.anyio
async def test_cancelling_a_sync_tool_waits_for_it_then_propagates() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[bool] = []
    messages: list[ToolMessage] = []

    @tool
    def slow() -> str:
        """Slow."""
        started.set()
        release.wait(30)
        finished.append(True)
        return "done"

    async def run() -> None:
        messages.append(await slow.arun(call("slow", {})))

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await anyio.to_thread.run_sync(started.wait)
            scope.cancel()
            release.set()
    assert scope.cancelled_caught
    assert finished == [True]  # the thread was waited for, not abandoned
    assert messages == []  # and its result did not become a message


@pytest.mark.anyio
async def test_move_on_after_cancels_a_tool() -> None:
    @tool
    async def wait_forever() -> str:
        """Wait."""
        await anyio.sleep_forever()
        return "never"

    messages: list[ToolMessage] = []
    with anyio.move_on_after(0.01) as scope:
        messages.append(await wait_forever.arun(call("wait_forever", {})))
    assert scope.cancelled_caught
    assert messages == []


# -- the writer ---------------------------------------------------------------------------


def test_writer_parameter_is_not_in_the_schema() -> None:
    def f(city: str, writer: StreamWriter, other: StreamWriter | None = None) -> str:
        """F.

        Args:
            city: the city.
            writer: the writer.
        """
        return city

    parameters = as_tool(f).tool_spec()["parameters"]
    assert parameters["properties"] == {"city": {"type": "string", "description": "the city."}}
    assert parameters["required"] == ["city"]


def test_a_writer_argument_from_the_model_is_refused() -> None:
    @tool
    def f(writer: StreamWriter) -> str:
        """F."""
        return "ok"

    with pytest.raises(InvalidToolArgumentsError, match="writer"):
        f.invoke({"writer": "hijack"})


@pytest.mark.anyio
async def test_writer_injected_into_a_sync_tool_in_a_worker_thread() -> None:
    recorder = Recorder()

    @tool
    def get_weather(city: str, writer: StreamWriter) -> str:
        """Weather."""
        writer(f"Looking up data for city: {city}")
        get_stream_writer()(f"Acquired data for city: {city}")
        return f"It's always sunny in {city}!"

    message = await get_weather.arun(call("get_weather", {"city": "SF"}), writer=recorder.writer())
    assert message.content == "It's always sunny in SF!"
    assert recorder.items == ["Looking up data for city: SF", "Acquired data for city: SF"]
    assert threading.get_ident() not in recorder.threads  # it ran in a worker thread
    assert current_writer.get().discards  # and nothing leaked into our context


@pytest.mark.anyio
async def test_writer_injected_into_an_async_tool() -> None:
    recorder = Recorder()

    @tool
    async def get_weather(city: str, writer: StreamWriter | None = None) -> str:
        """Weather."""
        assert writer is not None
        writer("by parameter")
        await get_stream_writer().asend("by context")
        return "sunny"

    message = await get_weather.arun(call("get_weather", {"city": "SF"}), writer=recorder.writer())
    assert message.status == "success"
    assert recorder.items == ["by parameter", "by context"]
    assert recorder.threads == [threading.get_ident()] * 2
    assert current_writer.get().discards


@pytest.mark.anyio
async def test_parallel_calls_each_see_their_own_writer() -> None:
    @tool
    async def a(label: str) -> str:
        """A."""
        await anyio.sleep(0)
        get_stream_writer()(label)
        return label

    @tool
    def b(label: str) -> str:
        """B."""
        get_stream_writer()(label)
        return label

    recorders = [Recorder() for _ in range(4)]
    tools = [a, b, a, b]
    async with anyio.create_task_group() as group:
        for index, (recorder, each) in enumerate(zip(recorders, tools, strict=True)):
            group.start_soon(
                functools.partial(
                    each.arun, call(each.name, {"label": str(index)}), writer=recorder.writer()
                )
            )
    assert [r.items for r in recorders] == [["0"], ["1"], ["2"], ["3"]]


_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True])
async def test_tools_see_the_callers_context_variables(is_async: bool) -> None:
    def sync_f() -> str:
        return _request_id.get()

    async def async_f() -> str:
        return _request_id.get()

    f = BaseTool(async_f if is_async else sync_f, name="f")
    token = _request_id.set("req-42")
    try:
        message = await f.arun(call("f", {}))
    finally:
        _request_id.reset(token)
    assert message.content == "req-42"


@pytest.mark.anyio
async def test_without_a_writer_the_current_one_is_used() -> None:
    recorder = Recorder()

    @tool
    def f() -> str:
        """F."""
        get_stream_writer()("hello")
        return "ok"

    token = current_writer.set(recorder.writer())
    try:
        await f.arun(call("f", {}))
    finally:
        current_writer.reset(token)
    assert recorder.items == ["hello"]


def test_writer_outside_a_run_discards() -> None:
    seen: list[StreamWriter] = []

    @tool
    def f(city: str, writer: StreamWriter) -> str:
        """F."""
        writer("dropped")
        get_stream_writer()("dropped too")
        seen.extend([writer, get_stream_writer()])
        return city

    assert f.invoke({"city": "SF"}) == "SF"
    assert all(w.discards for w in seen)


@pytest.mark.parametrize("is_async", [False, True])
def test_invoke_with_a_writer(is_async: bool) -> None:
    recorder = Recorder()

    def sync_f(writer: StreamWriter) -> str:
        writer("param")
        get_stream_writer()("context")
        return "ok"

    async def async_f(writer: StreamWriter) -> str:
        writer("param")
        get_stream_writer()("context")
        return "ok"

    f = BaseTool(async_f if is_async else sync_f, name="f")
    assert f.invoke({}, writer=recorder.writer()) == "ok"
    assert recorder.items == ["param", "context"]
    assert current_writer.get().discards


# -- where a sync tool runs ------------------------------------------------------------------


def _placement_probe(clock: FakeClock) -> tuple[BaseTool, list[int], dict[str, float]]:
    """A sync tool recording the thread of each call; ``cost["next"]`` is how long it takes."""
    threads: list[int] = []
    cost = {"next": 0.0}

    def probe() -> str:
        threads.append(threading.get_ident())
        clock.now += cost["next"]
        return "ok"

    return BaseTool(probe), threads, cost


@pytest.mark.anyio
async def test_a_quick_quiet_sync_tool_runs_in_place_after_two_calls(clock: FakeClock) -> None:
    probe, threads, _ = _placement_probe(clock)
    for _ in range(4):
        assert (await probe.arun(call("probe", {}))).content == "ok"
    here = threading.get_ident()
    assert [thread == here for thread in threads] == [False, False, True, True]


@pytest.mark.anyio
async def test_a_slow_call_sends_a_tool_back_to_the_thread(clock: FakeClock) -> None:
    probe, threads, cost = _placement_probe(clock)
    for seconds in [0, 0, 0.5, 0, 0, 0]:  # the third call runs in place and takes half a second
        cost["next"] = seconds
        await probe.arun(call("probe", {}))
    here = threading.get_ident()
    assert [thread == here for thread in threads] == [False, False, True, False, False, True]


@pytest.mark.anyio
async def test_a_failing_call_still_counts(clock: FakeClock) -> None:
    threads: list[int] = []

    def flaky() -> str:
        threads.append(threading.get_ident())
        raise ValueError("no")

    tool_ = BaseTool(flaky)
    messages = [await tool_.arun(call("flaky", {})) for _ in range(3)]
    assert [m.status for m in messages] == ["error"] * 3
    assert threads[2] == threading.get_ident()


@pytest.mark.anyio
async def test_a_tool_that_asks_for_the_writer_stays_in_a_thread(clock: FakeClock) -> None:
    threads: list[int] = []

    def quiet_but_asks() -> str:
        threads.append(threading.get_ident())
        get_stream_writer()  # never used, but it could be, and then it must be able to wait
        return "ok"

    tool_ = BaseTool(quiet_but_asks)
    for _ in range(4):
        await tool_.arun(call("quiet_but_asks", {}))
    assert threading.get_ident() not in threads


@pytest.mark.anyio
async def test_a_tool_with_a_writer_parameter_never_runs_in_place(clock: FakeClock) -> None:
    threads: list[int] = []

    def takes_writer(writer: StreamWriter) -> str:
        threads.append(threading.get_ident())
        return "ok"

    tool_ = BaseTool(takes_writer)
    for _ in range(4):
        await tool_.arun(call("takes_writer", {}))
    assert threading.get_ident() not in threads


@pytest.mark.anyio
@pytest.mark.parametrize("thread", [True, False])
async def test_thread_option_fixes_where_a_sync_tool_runs(clock: FakeClock, thread: bool) -> None:
    threads: list[int] = []

    @tool(thread=thread)
    def fixed() -> str:
        """Fixed."""
        threads.append(threading.get_ident())
        return "ok"

    assert fixed.thread is thread
    for _ in range(4):
        await fixed.arun(call("fixed", {}))
    here = threading.get_ident()
    assert [t == here for t in threads] == [not thread] * 4


@pytest.mark.anyio
@pytest.mark.parametrize(("seconds", "in_place"), [(0.0009, True), (0.0011, False)])
async def test_a_call_counts_as_quick_within_one_millisecond(
    clock: FakeClock, seconds: float, in_place: bool
) -> None:
    probe, threads, cost = _placement_probe(clock)
    cost["next"] = seconds
    for _ in range(3):
        await probe.arun(call("probe", {}))
    here = threading.get_ident()
    assert [thread == here for thread in threads] == [False, False, in_place]


def _reaching_probe(clock: FakeClock, reach: Any) -> tuple[BaseTool, list[int], list[int]]:
    """A quick sync tool that reaches for the run (``reach()``) on the calls listed in the
    second list it returns, counting from 0; the first list gets each call's thread."""
    threads: list[int] = []
    reaching_calls: list[int] = []

    def probe() -> str:
        if len(threads) in reaching_calls:
            reach()
        threads.append(threading.get_ident())
        return "ok"

    return BaseTool(probe), threads, reaching_calls


def _ask_a_model() -> None:
    ScriptedChatModel(["hi"]).invoke([{"role": "user", "content": "q"}])


def _iterate_a_stream() -> None:
    assert list(to_iterator(reactivex.of(1, 2))) == [1, 2]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reach",
    [get_stream_writer, _ask_a_model, _iterate_a_stream],
    ids=["asks for its writer", "calls a model", "iterates a stream"],
)
async def test_a_tool_that_reached_for_the_run_once_stays_in_a_thread_for_good(
    clock: FakeClock, reach: Any
) -> None:
    probe, threads, reaching_calls = _reaching_probe(clock, reach)
    reaching_calls.append(0)  # only the first call; the next five are quick and quiet
    for _ in range(6):
        assert (await probe.arun(call("probe", {}))).content == "ok"
    assert threading.get_ident() not in threads


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reach",
    [get_stream_writer, _ask_a_model, _iterate_a_stream],
    ids=["asks for its writer", "calls a model", "iterates a stream"],
)
async def test_a_tool_that_reaches_for_the_run_in_place_goes_back_to_a_thread_for_good(
    clock: FakeClock, reach: Any
) -> None:
    probe, threads, reaching_calls = _reaching_probe(clock, reach)
    reaching_calls.append(2)  # the first call to run in place
    for _ in range(6):
        assert (await probe.arun(call("probe", {}))).content == "ok"
    here = threading.get_ident()
    assert [thread == here for thread in threads] == [False, False, True, False, False, False]


def test_thread_option_on_a_bare_function_and_its_check() -> None:
    def f() -> str:
        return "ok"

    assert tool(f, thread=True).thread is True
    assert tool(f).thread is None
    with pytest.raises(ToolDefinitionError, match="thread must be True, False or None"):
        BaseTool(f, thread="yes")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_tool_in_place_writes_in_order_and_leaks_no_context(clock: FakeClock) -> None:
    recorder = Recorder()

    @tool(thread=False)
    def chatty() -> str:
        """Writes without asking first."""
        for i in range(3):
            get_stream_writer()(i)
        return _request_id.get()

    token = _request_id.set("req-7")
    try:
        message = await chatty.arun(call("chatty", {}), writer=recorder.writer())
    finally:
        _request_id.reset(token)
    assert message.content == "req-7"
    assert recorder.items == [0, 1, 2]
    assert recorder.threads == [threading.get_ident()] * 3
    assert current_writer.get().discards
