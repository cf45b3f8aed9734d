"""Tools made from plain functions: their JSON schema, argument checking, and running them.

A tool is a function (sync or async) the model may call. :class:`BaseTool` describes it to the
model (name, description, a JSON schema built from the type hints and the Google-style
docstring) and runs it for the agent loop: the arguments are validated before the call, the
run's :class:`~rxagent.StreamWriter` is installed for the duration of the call, and whatever
goes wrong inside the tool comes back as an error :class:`~rxagent.messages.ToolMessage` the
model can read, so the run goes on. Cancellation is never turned into a message: it propagates.

Where a sync function runs (a worker thread, or in place on the event loop once it has shown
it is quick) is decided by :mod:`rxagent._scheduler`, which owns that policy.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import json
import re
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, Literal, NamedTuple, overload

import anyio
import anyio.lowlevel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticSerializationError, to_jsonable_python
from typing_extensions import TypeVar

from ._callbacks import start_tool
from ._exceptions import InvalidToolArgumentsError, ToolDefinitionError
from ._interrupts import Command, GraphInterrupt
from ._messages import ToolCall, ToolMessage
from ._scheduler import SyncToolPlacement
from ._types import RunnableConfig
from ._writer import StreamWriter, current_writer

__all__ = [
    "BaseTool",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "ToolRuntime",
    "as_tool",
    "tool",
]

# What OpenAI accepts for a function name (Anthropic allows up to 128 characters); checking it
# here turns a provider's HTTP 400 in the middle of a run into an error at definition time.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Google-style section headers. Only the argument sections are read; every section is left out
# of the description, which keeps the prose before the first header.
_SECTION = re.compile(
    r"(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|"
    r"Returns?|Yields?|Raises|Warns|Examples?|Notes?|Warnings?|See Also|References|Todo|"
    r"Attributes|Methods|Attention|Caution|Danger|Error|Hint|Important|Tip)\s*:\s*"
)
_ARG_SECTIONS = frozenset(
    {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
)
_ARG_ENTRY = re.compile(r"\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)")

_MAX_SHOWN_INPUT = 120


class _NoFieldTitles(GenerateJsonSchema):
    # Pydantic titles every field after its name ("city" -> "City"); for a model reading the
    # schema that is noise. Titles set on purpose with ``Field(title=...)`` are kept.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class BaseTool:
    """A function the model can call, with what the model needs to know to call it.

    Made by :func:`tool` or :func:`as_tool` (or directly, ``BaseTool(fn, name=...)``) from a
    sync or async function. Every parameter becomes an argument of the JSON schema, typed from
    its hint (no hint means any JSON value) and described by the docstring's ``Args:`` section,
    except parameters annotated :class:`~rxagent.StreamWriter`: those receive the run's writer
    and the model never sees them. Inside the function :func:`~rxagent.get_stream_writer`
    returns the same writer.

    The tool object stays callable like the function it wraps (``tool(*args, **kwargs)`` calls
    the function as written, nothing checked or injected).

    Attributes:
        name: the name the model calls the tool by.
        description: what the tool does, for the model.
        args_schema: a pydantic model of the arguments; unknown arguments are refused.
        func: the wrapped function.
        is_async: True when ``func`` is a coroutine function (awaited on the event loop).
        thread: where a sync function runs. ``None`` (the default) learns it from the calls:
            in a worker thread at first, and in place on the event loop once the last two
            calls each returned within a millisecond without asking for the writer (or taking
            a ``StreamWriter`` parameter) or calling a model; a slower call sends it back to
            the thread. ``True`` always uses a thread. ``False`` always runs in place: the
            function then blocks the event loop while it runs, and its writer cannot wait for
            the consumer, so what it writes is buffered.

    Raises:
        ToolDefinitionError: ``func`` cannot become a tool: it has no usable name (a lambda,
            a partial, a callable object: pass ``name=``), takes ``*args``, ``**kwargs`` or
            positional-only parameters, is a class or a generator function, or has a type
            that cannot be described as JSON schema.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        thread: bool | None = None,
        args_schema: type[BaseModel] | dict[str, Any] | None = None,
        return_direct: bool = False,
        response_format: ResponseFormat = "content",
    ) -> None:
        _check_callable(func)
        if thread is not None and not isinstance(thread, bool):
            raise ToolDefinitionError(f"thread must be True, False or None, got {thread!r}")
        if response_format not in ("content", "content_and_artifact"):
            raise ToolDefinitionError(
                "response_format is 'content' or 'content_and_artifact', got "
                f"{response_format!r}"
            )
        derived = derive(func, name, description)
        self.func = func
        self.name = derived.name
        self.description = derived.description
        self.is_async = derived.is_async
        self.args_schema = derived.args_schema
        self.return_direct = bool(return_direct)
        self.response_format = response_format
        self._params = derived.params
        self._writer_params = derived.writer_params
        self._injected = derived.injected
        self._parameters = derived.parameters
        if args_schema is not None:
            self._use_schema(func, args_schema)
        # A tool that takes its writer as a parameter reaches for the run on every call.
        self._placement = SyncToolPlacement(thread, reaches_run=bool(self._writer_params))

    def _use_schema(
        self, func: Callable[..., Any], schema: type[BaseModel] | dict[str, Any]
    ) -> None:
        """Arguments described and checked by ``schema`` instead of the signature: each of its
        fields is passed as the keyword argument of that name."""
        if isinstance(schema, dict):
            # A JSON schema, as LangChain takes it: the model sees it as written; the call is
            # still checked against the signature, since its arguments go to the function.
            if schema.get("type", "object") != "object" or not isinstance(
                schema.get("properties", {}), dict
            ):
                raise ToolDefinitionError(
                    f"{self.name}'s args_schema is a JSON schema of an object, got {schema!r}"
                )
            self._parameters = _copy_json(schema)
            return
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise ToolDefinitionError(
                f"args_schema is a pydantic model class, got {schema!r}"
            )
        accepted = inspect.signature(func).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        missing = [field for field in schema.model_fields if field not in accepted]
        if missing and not takes_any:
            raise ToolDefinitionError(
                f"{self.name}'s args_schema has field(s) {missing} that the function does not "
                "take as parameters"
            )
        self.args_schema = schema
        self._params = types.MappingProxyType({field: field for field in schema.model_fields})
        self._parameters = _parameters_schema(schema, self.name)

    @property
    def thread(self) -> bool | None:
        """Where a sync function runs: ``None`` learns it from the calls, ``True`` always
        in a worker thread, ``False`` always in place."""
        return self._placement.thread

    # -- describing -----------------------------------------------------------------------

    def tool_spec(self) -> dict[str, Any]:
        """The tool as a model sees it: ``{"name", "description", "parameters"}``.

        ``parameters`` is a JSON schema object: ``properties`` (without the titles pydantic
        would invent), ``required`` listing the parameters without a default, defaults kept,
        ``additionalProperties: false``, and ``$defs`` when pydantic models are involved.
        Each call returns a fresh copy, free to modify.
        """
        return {
            "name": self.name,
            "description": self.description,
            "parameters": _copy_json(self._parameters),
        }

    # -- running --------------------------------------------------------------------------

    def invoke(
        self, args: Mapping[str, Any] | None = None, *, writer: StreamWriter | None = None
    ) -> Any:
        """Validate ``args`` and call the tool in this thread; return what it returns.

        For unit tests and direct use. A bad argument raises
        :class:`~rxagent.InvalidToolArgumentsError`; an exception in the tool propagates. An
        async tool is run to completion on a private event loop (on a background one when this
        thread already runs a loop, as in a notebook).

        Args:
            args: the arguments by name, as the model would send them.
            writer: the writer the tool gets; by default the current one, which outside a run
                discards what it is given.

        Given a model's tool call (``{"name", "args", "id", "type": "tool_call"}``), as
        LangChain's tools take one, it answers with the call's ``ToolMessage`` (see
        :meth:`arun`).
        """
        if _is_tool_call(args):
            from ._threads import run_sync

            call: Any = args
            return run_sync(lambda: self.arun(call, writer=writer))
        chosen = writer if writer is not None else current_writer.get()
        kwargs = self._with_runtime(self._checked(args), chosen)
        if self.is_async:
            from ._threads import run_sync  # here: only this case needs it

            return run_sync(lambda: self._acall(kwargs, chosen))
        token = current_writer.set(chosen)
        try:
            return self.func(**self._inject(kwargs, chosen))
        finally:
            current_writer.reset(token)

    async def ainvoke(
        self, args: Mapping[str, Any] | None = None, *, writer: StreamWriter | None = None
    ) -> Any:
        """Validate ``args`` and run the tool as :meth:`arun` does; return what it returns.

        A bad argument raises :class:`~rxagent.InvalidToolArgumentsError`; an exception in
        the tool propagates.

        Args:
            args: the arguments by name, as the model would send them.
            writer: the writer the tool gets; by default the current one.
        """
        if _is_tool_call(args):  # LangChain's tool.ainvoke(tool_call): its ToolMessage
            call: Any = args
            return await self.arun(call, writer=writer)
        chosen = writer if writer is not None else current_writer.get()
        return await self._acall(self._with_runtime(self._checked(args), chosen), chosen)

    @property
    def wants_runtime(self) -> bool:
        """Whether a parameter takes the :class:`ToolRuntime` or a part of it (the state, the
        store): the run builds one only then."""
        return any(kind != "call_id" for _, kind in self._injected)

    async def arun(
        self,
        call: ToolCall,
        *,
        writer: StreamWriter | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
    ) -> ToolMessage | Command:
        """Run the tool for one tool call of the model and answer it with a ToolMessage (or the
        tool's ``Command(update=...)``, which holds one).

        This is what the agent loop calls. The answer always has ``name=self.name`` and
        ``tool_call_id=call["id"]`` (``""`` when the call has no id).

        - ``call["args"]`` is validated first; if it does not fit the schema the tool is not
          called and the answer is an error message naming the tool, each bad argument and
          what is wrong with it (``artifact`` holds the ``ValidationError``).
        - The writer is installed in the context for the duration of the call, so
          :func:`~rxagent.get_stream_writer` returns it, and it is passed to parameters
          annotated ``StreamWriter``. An async tool is awaited in this task; a sync tool runs
          with a copy of this context, in a worker thread or in place (see ``thread``).
        - A string result is the content; a ``ToolMessage`` is used as it is (its
          ``tool_call_id`` set to this call's, its ``name`` filled when missing); anything else
          becomes JSON text (through pydantic for models, dataclasses, dates...; ``str()`` as
          a last resort).
        - An exception raised by the tool becomes an error message,
          ``"Error: <ExceptionType>: <message>"``, with the exception as ``artifact``, so the
          model can react and the run goes on.
        - Cancellation, ``KeyboardInterrupt`` and ``SystemExit`` propagate. A sync tool cannot
          be stopped mid-way: a cancellation waits for it to return, then propagates instead
          of the result.

        Args:
            call: the tool call, ``{"name", "args", "id", "type": "tool_call"}``.
            writer: the writer for the tool; by default the current one (discarding outside
                a run).
            runtime: what a ``runtime: ToolRuntime`` parameter gets (the state, the context...);
                by default an empty one.
        """
        told = start_tool(self.name, self.description, call)  # None: nobody listens
        if told is None:
            return await self._arun(call, writer, runtime)
        try:
            result = await self._arun(call, writer, runtime)
        except BaseException as error:  # cancelled, or interrupt(): the tool did not answer
            told.failed(error)
            raise
        told.end(result, self.name)
        return result

    async def _arun(
        self, call: ToolCall, writer: StreamWriter | None, runtime: ToolRuntime[Any, Any] | None
    ) -> ToolMessage | Command:
        call_id = call.get("id") or ""
        try:
            try:
                kwargs = self._validate(call.get("args"))
            except ValidationError as exc:  # only the arguments' own; the tool's go below
                return self._error(_describe_invalid_args(self.name, exc), exc, call_id)
            if self._injected:
                given = (runtime or ToolRuntime(stream_writer=writer or current_writer.get())
                         )._for(call_id)
                for param, kind in self._injected:
                    kwargs[param] = _injected_value(kind, call_id, given)
            result = await self._acall(
                kwargs, writer if writer is not None else current_writer.get()
            )
            if isinstance(result, Command):
                return self._command(result, call_id)
            if self.response_format == "content_and_artifact":
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError(
                        "a tool with response_format='content_and_artifact' returns a "
                        f"(content, artifact) pair, got {type(result).__name__}"
                    )
                content, artifact = result
                return ToolMessage(content=_to_content(content), artifact=artifact,
                                   name=self.name, tool_call_id=call_id)
            if isinstance(result, ToolMessage):
                update: dict[str, Any] = {"tool_call_id": call_id}
                if result.name is None:
                    update["name"] = self.name
                return result.model_copy(update=update)
            return ToolMessage(content=_to_content(result), name=self.name, tool_call_id=call_id)
        except GraphInterrupt:  # interrupt(): the run stops to ask a human
            raise
        except Exception as exc:  # only Exception: cancellation and interrupts propagate
            text = str(exc)
            content = (
                f"Error: {type(exc).__name__}: {text}" if text else f"Error: {type(exc).__name__}"
            )
            return self._error(content, exc, call_id)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function as written: no validation, no writer injected."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"BaseTool(name={self.name!r})"

    # -- internals ------------------------------------------------------------------------

    def _checked(self, args: Any) -> dict[str, Any]:
        """:meth:`_validate` for direct calls: the failure in rxagent's tree."""
        try:
            return self._validate(args)
        except ValidationError as exc:
            raise InvalidToolArgumentsError(_describe_invalid_args(self.name, exc)) from exc

    def _validate(self, args: Any) -> dict[str, Any]:
        checked = self.args_schema.model_validate({} if args is None else args)
        # Only the arguments that were sent: the function's own defaults then apply, exactly
        # as in a plain Python call.
        return {self._params[field]: getattr(checked, field) for field in checked.model_fields_set}

    def _command(self, command: Command, call_id: str) -> Command:
        """A tool's ``Command(update=...)``, checked: a state update whose ``messages`` answer
        this call with a ToolMessage, as LangGraph requires."""
        update = command.update
        if command.resume is not None or command.goto or command.graph is not None:
            raise TypeError("a tool's Command only updates the state: Command(update={...})")
        messages = update.get("messages") if isinstance(update, dict) else None
        if not isinstance(messages, list) or not any(
            isinstance(message, ToolMessage) and message.tool_call_id == call_id
            for message in messages
        ):
            raise TypeError(
                f"the Command that tool {self.name!r} returned updates the state without "
                f"answering its call: update={{'messages': [ToolMessage(..., tool_call_id="
                f"{call_id!r})], ...}}"
            )
        if any(isinstance(m, ToolMessage) and m.tool_call_id == call_id and m.name is None
               for m in messages):
            # As LangGraph's tool node does: the answer is named after the tool.
            named = [m.model_copy(update={"name": self.name})
                     if isinstance(m, ToolMessage) and m.tool_call_id == call_id and m.name is None
                     else m for m in messages]
            command = dataclasses.replace(command, update={**update, "messages": named})
        return command

    def _error(self, content: str, exc: Exception, call_id: str) -> ToolMessage:
        return ToolMessage(
            content=content, name=self.name, tool_call_id=call_id, status="error", artifact=exc
        )

    def _with_runtime(self, kwargs: dict[str, Any], writer: StreamWriter) -> dict[str, Any]:
        """A direct call's runtime parameters: an empty runtime, with this writer."""
        for param, kind in self._injected:
            if kind == "runtime":
                kwargs[param] = ToolRuntime(stream_writer=writer)
        return kwargs

    def _inject(self, kwargs: dict[str, Any], writer: StreamWriter) -> dict[str, Any]:
        for param in self._writer_params:
            kwargs[param] = writer
        return kwargs

    async def _acall(self, kwargs: dict[str, Any], writer: StreamWriter) -> Any:
        kwargs = self._inject(kwargs, writer)
        if self.is_async:
            token = current_writer.set(writer)
            try:
                return await self.func(**kwargs)
            finally:
                current_writer.reset(token)
        # The call runs in a context of its own carrying the writer, whether or not the async
        # library copies contextvars into worker threads (anyio 4 does, on both backends).
        context = contextvars.copy_context()
        context.run(current_writer.set, writer)
        result = await self._placement.call(context, self.func, kwargs)
        if inspect.isawaitable(result):
            # A sync wrapper around async code (a decorator that hid ``async def``): finish
            # the work here rather than turn an unawaited coroutine into text.
            token = current_writer.set(writer)
            try:
                result = await result
            finally:
                current_writer.reset(token)
        await anyio.lowlevel.checkpoint_if_cancelled()
        return result


ResponseFormat = Literal["content", "content_and_artifact"]


@overload
def tool(
    func: Callable[..., Any],
    /,
    *,
    thread: bool | None = None,
    args_schema: type[BaseModel] | dict[str, Any] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
) -> BaseTool: ...


@overload
def tool(
    name: str | None = None,
    /,
    *,
    description: str | None = None,
    thread: bool | None = None,
    args_schema: type[BaseModel] | dict[str, Any] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
) -> Callable[[Callable[..., Any]], BaseTool]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    thread: bool | None = None,
    args_schema: type[BaseModel] | dict[str, Any] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
) -> Callable[[Callable[..., Any]], BaseTool]: ...


def tool(
    name_or_func: str | Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    thread: bool | None = None,
    args_schema: type[BaseModel] | dict[str, Any] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
) -> BaseTool | Callable[[Callable[..., Any]], BaseTool]:
    """Make a function (sync or async) into a :class:`BaseTool`.

    Usable as ``@tool``, ``@tool("name")`` or ``@tool(name=..., description=...)``::

        @tool
        def get_weather(city: str, writer: StreamWriter) -> str:
            \"\"\"Get weather for a given city.

            Args:
                city: the city, e.g. "San Francisco".
            \"\"\"
            writer(f"Looking up data for city: {city}")
            return f"It's always sunny in {city}!"

    Args:
        name_or_func: the function (bare ``@tool``) or the tool's name.
        name: the tool's name; by default the function's name.
        description: what the tool does; by default the docstring up to its first section.
        thread: where a sync function runs: learned from its calls by default (see
            :class:`BaseTool`); ``True`` always in a worker thread, ``False`` always in place.
        args_schema: a pydantic model that describes and checks the arguments instead of the
            signature, each field passed as the keyword argument of its name; or a JSON schema
            (a dict) that the model sees as written, the arguments checked by the signature.
        return_direct: the tool's result ends the agent's run (no model call after it).
        response_format: ``"content_and_artifact"``: the function returns ``(content,
            artifact)``, the artifact kept on the ToolMessage and never shown to the model.
        parse_docstring: accepted for LangChain's ``@tool(parse_docstring=True)``, which is
            what rxagent always does (the prose before ``Args:`` describes the tool, each
            argument's entry describes it). ``False``, LangChain's default, describes the tool
            by its whole docstring (without its indentation), as LangChain does; arguments keep
            their entries.

    A tool may also return ``Command(update={"messages": [ToolMessage(..., tool_call_id=...)],
    ...})`` (:mod:`rxagent.types`) to update the agent's state; a parameter annotated
    ``Annotated[str, InjectedToolCallId]`` gives it the call's id.

    Raises:
        ToolDefinitionError: the function cannot become a tool (see :class:`BaseTool`).
    """
    options: dict[str, Any] = {
        "thread": thread, "args_schema": args_schema, "return_direct": return_direct,
        "response_format": response_format,
    }
    if callable(name_or_func):
        if name is not None or description is not None:
            raise ToolDefinitionError(
                "use @tool(name=..., description=...) with keywords only, "
                "or @tool(...) on the function with no arguments"
            )
        return BaseTool(name_or_func, **options)
    if name_or_func is not None:
        if name is not None:
            raise ToolDefinitionError(
                f"the tool's name is given twice ({name_or_func!r} and name={name!r})"
            )
        name = name_or_func

    def decorate(func: Callable[..., Any]) -> BaseTool:
        whole = None if parse_docstring or description is not None else _docstring(func)
        return BaseTool(func, name=name, description=description if whole is None else whole,
                        **options)

    return decorate


def as_tool(obj: object) -> BaseTool:
    """Return ``obj`` as a tool: a tool as it is, an object's ``as_tool()``, a function wrapped.

    Args:
        obj: a :class:`BaseTool`; an object with an ``as_tool()`` method returning one (an
            agent used as a tool); or a sync or async function.

    Raises:
        ToolDefinitionError: ``obj`` is none of those, or the function cannot become a tool.
    """
    if isinstance(obj, BaseTool):
        return obj
    convert = None if isinstance(obj, type) else getattr(obj, "as_tool", None)
    if callable(convert):
        converted = convert()
        if not isinstance(converted, BaseTool):
            raise ToolDefinitionError(
                f"{type(obj).__name__}.as_tool() returned {type(converted).__name__}, "
                "not a BaseTool"
            )
        return converted
    if not callable(obj):
        raise ToolDefinitionError(
            f"cannot make a tool from {type(obj).__name__} {obj!r}: expected a function, "
            "a BaseTool, or an object with an as_tool() method"
        )
    return BaseTool(obj)


# -- what a tool derives from its function, once per function ------------------------------


class Derived(NamedTuple):
    """What :class:`BaseTool` derives from a function, its name and description: the same
    for every tool made from them, so built once (pydantic's model alone costs milliseconds)
    and shared. Nothing here is changed after it is built; the per-tool state (where a sync
    tool runs, ``rxagent/_scheduler.py``) stays on each :class:`BaseTool`."""

    name: str
    description: str
    is_async: bool
    args_schema: type[BaseModel]
    params: Mapping[str, str]  # field name -> parameter name
    writer_params: tuple[str, ...]
    parameters: dict[str, Any]  # the JSON schema; tool_spec() hands out deep copies
    # Parameters the run fills in, never shown to the model: (name, "call_id" | "runtime").
    injected: tuple[tuple[str, str], ...] = ()


# Function -> {(bound?, name, description): (fingerprint, Derived)}. Weak, so a function's
# entry goes with it. Only plain functions and methods bound to them are kept: a method's
# derivation depends on its function alone (its instance changes neither signature, hints nor
# docstring), so ``obj.method`` made anew each time still finds its entry. Partials and
# callable objects are derived every time.
_DERIVED: weakref.WeakKeyDictionary[
    types.FunctionType,
    dict[tuple[bool, str | None, str | None], tuple[tuple[object, ...], Derived]],
] = weakref.WeakKeyDictionary()


def _fingerprint(function: types.FunctionType) -> tuple[object, ...]:
    # What a derivation reads from a function and code may reassign later (a decorator that
    # sets __doc__ or __signature__, a test that swaps defaults): compared by identity, so a
    # reassigned attribute derives the tool afresh.
    return (
        function.__code__,
        function.__defaults__,
        function.__kwdefaults__,
        function.__doc__,
        function.__annotations__,
        getattr(function, "__signature__", None),
        getattr(function, "__wrapped__", None),
    )


def derive(func: Callable[..., Any], name: str | None, description: str | None) -> Derived:
    """What a tool made from ``func`` is, from the cache when ``func`` was seen with the same
    ``name`` and ``description``. A definition error is raised every time (never cached)."""
    bound = isinstance(func, types.MethodType)
    function = func.__func__ if isinstance(func, types.MethodType) else func
    if not isinstance(function, types.FunctionType):
        return derive_uncached(func, name, description)
    fingerprint = _fingerprint(function)
    entries = _DERIVED.get(function)
    if entries is None:
        entries = _DERIVED.setdefault(function, {})
    key = (bound, name, description)
    found = entries.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], fingerprint, strict=True)):
        return found[1]
    derived = derive_uncached(func, name, description)
    entries[key] = (fingerprint, derived)
    return derived


def derive_uncached(
    func: Callable[..., Any], name: str | None, description: str | None
) -> Derived:
    """:func:`derive` without the cache (the reference in ``bench/tool_schemas.py``)."""
    tool_name = _tool_name(func, name)
    summary, arg_docs = _parse_docstring(_docstring(func))
    args_schema, params, writer_params, injected = _args_model(func, tool_name, arg_docs)
    return Derived(
        name=tool_name,
        description=(
            inspect.cleandoc(description).strip() if description is not None else summary
        ),
        is_async=_is_async(func),
        args_schema=args_schema,
        params=types.MappingProxyType(params),
        writer_params=writer_params,
        parameters=_parameters_schema(args_schema, tool_name),
        injected=injected,
    )


# -- definition helpers -------------------------------------------------------------------


def _check_callable(func: object) -> None:
    if isinstance(func, BaseTool):
        raise ToolDefinitionError(f"{func!r} is already a tool")
    if isinstance(func, type):
        raise ToolDefinitionError(
            f"cannot make a tool from the class {func.__name__}: pass a function "
            "(or a bound method)"
        )
    if not callable(func):
        raise ToolDefinitionError(f"cannot make a tool from {type(func).__name__} {func!r}")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ToolDefinitionError(
            f"{_describe(func)} is a generator function; a tool returns one value "
            "(send progress with its StreamWriter instead)"
        )


def _describe(func: object) -> str:
    qualname = getattr(func, "__qualname__", None)
    return f"function {qualname}" if isinstance(qualname, str) else repr(func)


def _tool_name(func: Callable[..., Any], name: str | None) -> str:
    if name is None:
        derived = getattr(func, "__name__", None)
        if derived == "<lambda>":
            raise ToolDefinitionError(
                "a lambda has no usable tool name: pass one, "
                "as in tool('name')(lambda ...) or BaseTool(fn, name='name')"
            )
        if not isinstance(derived, str):
            raise ToolDefinitionError(
                f"{func!r} has no __name__ to name the tool after: pass one, "
                "as in tool('name')(fn) or BaseTool(fn, name='name')"
            )
        name = derived
    if not _NAME.fullmatch(name):
        raise ToolDefinitionError(
            f"{name!r} cannot be a tool name: use 1 to 64 ASCII letters, digits, '_' or '-'"
        )
    return name


def _docstring(func: Callable[..., Any]) -> str | None:
    if isinstance(func, functools.partial):
        return _docstring(func.func)  # not the docstring of ``partial`` itself
    if inspect.isroutine(func):
        return inspect.getdoc(func)
    # A callable object: its class's docstring, or else its ``__call__``'s.
    call = getattr(type(func), "__call__", None)  # noqa: B004 - the method, not callable()
    return inspect.getdoc(type(func)) or inspect.getdoc(call)


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    # A callable object with ``async def __call__``.
    call = getattr(type(func), "__call__", None)  # noqa: B004 - we want the method itself
    return not inspect.isroutine(func) and inspect.iscoroutinefunction(call)


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a (cleaned) Google-style docstring into the prose and the argument descriptions."""
    if not doc:
        return "", {}
    lines = doc.splitlines()
    summary: list[str] = []
    arg_docs: dict[str, str] = {}
    index = 0
    while index < len(lines) and not _is_section(lines[index]):
        summary.append(lines[index])
        index += 1
    while index < len(lines):
        header = lines[index].strip().rstrip(":").strip()
        index += 1
        body: list[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index][0].isspace()):
            body.append(lines[index])
            index += 1
        if header in _ARG_SECTIONS:
            arg_docs.update(_parse_args_block(body))
        while index < len(lines) and not _is_section(lines[index]):
            index += 1  # stray prose after a section belongs to no one; dropped
    return "\n".join(summary).strip(), arg_docs


def _is_section(line: str) -> bool:
    return not line[:1].isspace() and _SECTION.fullmatch(line) is not None


def _parse_args_block(body: list[str]) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    indent: int | None = None
    current: list[str] | None = None
    for line in body:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        match = _ARG_ENTRY.fullmatch(line.strip()) if depth <= indent else None
        if match is not None:
            current = entries.setdefault(match["name"], [])
            if match["text"]:
                current.append(match["text"].strip())
        elif current is not None:
            current.append(line.strip())
    return {name: " ".join(parts) for name, parts in entries.items() if parts}


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    target: Any = func
    if isinstance(func, functools.partial):
        target = func.func
    elif not inspect.isroutine(func) and hasattr(type(func), "__call__"):  # noqa: B004
        target = type(func).__call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # NameError for an unknown name, TypeError for a bad hint...
        raise ToolDefinitionError(
            f"cannot resolve the type hints of {_describe(func)} ({type(exc).__name__}: {exc}); "
            "types named in hints must be importable from the function's module"
        ) from exc


class InjectedToolCallId:
    """Marks a tool parameter that receives the id of the tool call being answered, and that
    the model never sees (LangChain's): ``tool_call_id: Annotated[str, InjectedToolCallId]``.
    A tool returning ``Command(update={"messages": [ToolMessage(..., tool_call_id=...)]})``
    needs it."""


class InjectedState:
    """Marks a tool parameter that receives the agent's state, or one key of it, and that the
    model never sees (``langgraph.prebuilt``'s): ``state: Annotated[dict, InjectedState]``, or
    ``user_id: Annotated[str, InjectedState("user_id")]``."""

    def __init__(self, field: str | None = None) -> None:
        self.field = field


class InjectedStore:
    """Marks a tool parameter that receives the agent's long-term memory store
    (``create_agent(store=...)``), never shown to the model:
    ``store: Annotated[BaseStore, InjectedStore()]``."""


def _injected_kind(annotation: Any) -> str | None:
    """``"state"``, ``"state:<key>"``, ``"store"`` or ``"config"`` for a parameter marked so."""
    if annotation is RunnableConfig:
        return "config"
    # The bare marker as the hint (``state: InjectedState``), as LangGraph also takes it.
    if annotation is InjectedState:
        return "state"
    if annotation is InjectedStore:
        return "store"
    if typing.get_origin(annotation) is not Annotated:
        return None
    for meta in annotation.__metadata__:
        if meta is InjectedStore or isinstance(meta, InjectedStore):
            return "store"
        if meta is InjectedState:
            return "state"
        if isinstance(meta, InjectedState):
            return "state" if meta.field is None else f"state:{meta.field}"
    return None


def _injected_value(kind: str, call_id: str, runtime: ToolRuntime[Any, Any]) -> Any:
    """What a parameter of ``kind`` gets for the call ``call_id``."""
    if kind == "call_id":
        return call_id
    if kind == "runtime":
        return runtime
    if kind == "store":
        return runtime.store
    if kind == "config":
        return runtime.config
    state: Any = runtime.state
    return state if kind == "state" else state.get(kind.removeprefix("state:"))


# Defaults, so that ToolRuntime[Context] names the context alone, as LangChain's does.
ContextT = TypeVar("ContextT", default=None)
StateT = TypeVar("StateT", default=dict[str, Any])


@dataclasses.dataclass(frozen=True)
class ToolRuntime(Generic[ContextT, StateT]):
    """What a tool reaches of the run through a parameter annotated ``ToolRuntime`` (the model
    never sees it), as in LangChain: ``def tool(x: int, runtime: ToolRuntime) -> str``.

    Attributes:
        state: the agent's state as the tool call began: ``{"messages": [...], ...}`` with the
            keys of its ``state_schema``.
        context: what the run was given as ``context=`` (``create_agent(context_schema=...)``).
        config: the run's config.
        stream_writer: the run's writer (its ``custom`` stream).
        tool_call_id: the id of the call being answered.
        store: the agent's long-term memory store (``create_agent(store=...)``), or ``None``.
        execution_info: the thread, run and task the call runs in
            (:class:`~rxagent.runtime.ExecutionInfo`).
        server_info: on a server, the assistant and graph of the run
            (:class:`~rxagent.runtime.ServerInfo`); ``None`` elsewhere.
        tools: the agent's tools (the ones middleware added too).
    """

    state: StateT = dataclasses.field(default_factory=dict)  # type: ignore[assignment]
    context: ContextT = None  # type: ignore[assignment]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    stream_writer: StreamWriter | None = None
    tool_call_id: str | None = None
    store: Any = None
    execution_info: Any = None
    server_info: Any = None
    tools: list[BaseTool] = dataclasses.field(default_factory=list)

    def _for(self, call_id: str) -> ToolRuntime[ContextT, StateT]:
        return self if self.tool_call_id == call_id else dataclasses.replace(
            self, tool_call_id=call_id
        )


def _is_runtime(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is ToolRuntime or typing.get_origin(annotation) is ToolRuntime


def _is_call_id(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not Annotated:
        return False
    return any(
        meta is InjectedToolCallId or isinstance(meta, InjectedToolCallId)
        for meta in annotation.__metadata__
    )


def _is_writer(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is StreamWriter:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = set(typing.get_args(annotation)) - {type(None)}
        return members == {StreamWriter}
    return False


def _hint_description(annotation: Any) -> str | None:
    """A description given in the hint, which wins over the docstring's.

    ``Annotated[int, "text"]`` gives ``"text"``; ``Annotated[int, Field(description=...)]``
    gives ``""``: pydantic applies that one itself, and nothing must be set over it.
    """
    if typing.get_origin(annotation) is not Annotated:
        return None
    for meta in annotation.__metadata__:
        if isinstance(meta, FieldInfo) and meta.description:
            return ""
    for meta in annotation.__metadata__:
        if isinstance(meta, str):
            return meta
    return None


def _args_model(
    func: Callable[..., Any], tool_name: str, arg_docs: dict[str, str]
) -> tuple[type[BaseModel], dict[str, str], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The arguments' pydantic model, its field names mapped to the parameters' names, the
    parameters that take the run's writer, and those that take the call's id or the tool
    runtime (none of them ever shown to the model)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"cannot read the signature of {func!r}: {exc}") from exc
    hints = _type_hints(func)
    fields: dict[str, Any] = {}
    params: dict[str, str] = {}  # field name -> parameter name
    writers: list[str] = []
    injected: list[tuple[str, str]] = []
    for position, param in enumerate(signature.parameters.values()):
        _check_parameter(param, position, tool_name)
        annotation = hints.get(param.name, Any)
        if _is_writer(annotation):
            writers.append(param.name)
            continue
        if _is_call_id(annotation):
            injected.append((param.name, "call_id"))
            continue
        if _is_runtime(annotation):
            injected.append((param.name, "runtime"))
            continue
        kind = _injected_kind(annotation)
        if kind is not None:
            injected.append((param.name, kind))
            continue
        field_name = _field_name(param.name, position, signature)
        fields[field_name] = _field(param, annotation, arg_docs, alias=field_name != param.name)
        params[field_name] = param.name
    try:
        model: type[BaseModel] = create_model(
            tool_name,
            __config__=ConfigDict(extra="forbid", protected_namespaces=()),
            **fields,
        )
    except PydanticUserError as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: a parameter's type cannot be validated from JSON: {exc}"
        ) from exc
    return model, params, tuple(writers), tuple(injected)


def _check_parameter(param: inspect.Parameter, position: int, tool_name: str) -> None:
    """A parameter a model cannot pass by name is a definition error."""
    if param.kind is param.VAR_POSITIONAL or param.kind is param.VAR_KEYWORD:
        star = "*" if param.kind is param.VAR_POSITIONAL else "**"
        raise ToolDefinitionError(
            f"tool {tool_name!r}: {star}{param.name} cannot be described to a model; "
            "list the arguments one by one"
        )
    if param.kind is param.POSITIONAL_ONLY:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: parameter {param.name!r} is positional-only, but a model "
            "passes arguments by name; remove the '/'"
        )
    if position == 0 and param.name in ("self", "cls"):
        raise ToolDefinitionError(
            f"tool {tool_name!r}: the first parameter is {param.name!r}; make the tool "
            "from the bound method (obj.method), not from the function in the class"
        )


def _field_name(name: str, position: int, signature: inspect.Signature) -> str:
    """The parameter's name, or, for names that pydantic keeps for itself (a leading
    underscore, BaseModel attributes such as ``json`` or ``copy``), a name of its own (the
    parameter's then serves as the field's alias)."""
    if not name.startswith("_") and not hasattr(BaseModel, name):
        return name
    field_name = f"field_{position}"
    while field_name in signature.parameters:
        field_name += "_"
    return field_name


def _field(
    param: inspect.Parameter, annotation: Any, arg_docs: dict[str, str], *, alias: bool
) -> tuple[Any, FieldInfo]:
    """The pydantic field of one parameter: its type, default, description and alias."""
    extra: dict[str, Any] = {}
    description = _hint_description(annotation)
    if description is None:
        description = arg_docs.get(param.name)
    if description:
        extra["description"] = description
    if alias:
        extra["alias"] = param.name
    default = ... if param.default is param.empty else param.default
    return annotation, Field(default, **extra)


def _parameters_schema(model: type[BaseModel], tool_name: str) -> dict[str, Any]:
    try:
        schema = model.model_json_schema(schema_generator=_NoFieldTitles)
    except PydanticUserError as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: a parameter's type has no JSON schema: {exc}"
        ) from exc
    schema.pop("title", None)  # the tool's name, already given next to the schema
    schema.setdefault("properties", {})  # some providers insist on it, even for no arguments
    return schema


def _copy_json(value: Any) -> Any:
    """A copy of a JSON tree (dicts, lists, and immutable leaves, which are shared): what
    ``copy.deepcopy`` gives for one, several times faster, which matters once the schema
    itself is no longer built per tool."""
    if type(value) is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy_json(item) for item in value]
    return value


# -- running helpers ----------------------------------------------------------------------


# The content blocks a tool may return as they are (LangChain's list): text, media, documents.
_TOOL_BLOCK_TYPES = frozenset(
    {"text", "image_url", "image", "json", "search_result", "custom_tool_call_output",
     "document", "file"}
)


def _to_content(value: Any) -> str | list[str | dict[str, Any]]:
    """A tool's result as ToolMessage content: a list of content blocks (multimodal results)
    is kept as the content, as LangChain keeps it; anything else becomes text."""
    if isinstance(value, list) and value and all(
        isinstance(item, str)
        or (isinstance(item, dict) and item.get("type") in _TOOL_BLOCK_TYPES)
        for item in value
    ):
        return [_copy_json(item) for item in value]
    return _to_text(value)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False)
    except (TypeError, ValueError, PydanticSerializationError):
        return str(value)


def _describe_invalid_args(tool_name: str, exc: ValidationError) -> str:
    lines = [f"Error: invalid arguments for tool {tool_name!r}:"]
    for error in exc.errors(include_url=False):
        where = _location(error["loc"])
        line = f"- {where}: {error['msg']}"
        if error["type"] != "missing":
            line += f" (got {_shown(error['input'])})"
        lines.append(line)
    lines.append("Fix the arguments and call the tool again.")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "arguments"
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_SHOWN_INPUT:
        text = text[: _MAX_SHOWN_INPUT - 3] + "..."
    return text


def _is_tool_call(args: Any) -> bool:
    """Whether ``args`` is a model's whole tool call rather than the tool's arguments."""
    return (isinstance(args, Mapping) and args.get("type") == "tool_call"
            and isinstance(args.get("args"), Mapping) and "name" in args)
