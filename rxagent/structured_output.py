"""How an agent answers with structured output: LangChain's ``langchain.agents.structured_output``.

``create_agent(..., response_format=...)`` takes one of:

- a schema (a pydantic model, dataclass, ``TypedDict`` or JSON schema dict): the provider's
  native structured output for the models that have it (by name, as LangChain's fallback list
  says: ``gpt-4o``, ``gpt-4.1``, ``gpt-5``..., Claude Sonnet/Opus 4.5 and later), else the tool
  form, as :class:`AutoStrategy` decides;
- :class:`ToolStrategy`: the schema (or each member of a ``Union``) as a tool the model is made
  to call; a wrong answer goes back to the model as the tool's result and it tries again, as
  ``handle_errors`` says;
- :class:`ProviderStrategy`: the provider's native form: OpenAI's ``response_format`` with a
  JSON schema, Anthropic's ``output_config.format``.

The answer is the state's ``structured_response`` (in ``values``, in the model step's
``updates`` and in ``invoke()``'s result): an instance of the schema's class, or a dict for a
``TypedDict`` or a JSON schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

from ._exceptions import (
    MultipleStructuredOutputsError,
    StructuredOutputError,
    StructuredOutputValidationError,
)
from ._structured import SchemaKind, SchemaSpec, variants

__all__ = [
    "AutoStrategy",
    "ErrorHandler",
    "MultipleStructuredOutputsError",
    "ProviderStrategy",
    "ResponseFormat",
    "SchemaKind",
    "SchemaSpec",
    "StructuredOutputError",
    "StructuredOutputValidationError",
    "ToolStrategy",
]

SchemaT = TypeVar("SchemaT")

ErrorHandler: TypeAlias = (
    bool | str | type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], str]
)
"""What :class:`ToolStrategy` does with a wrong answer: ``True`` (retry, telling the model the
error), a str (retry, telling it this), exception types (retry on those, raise the others), a
function of the error giving the text, or ``False`` (raise)."""

ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."


class ToolStrategy(Generic[SchemaT]):
    """Structured output through tool calling: each schema becomes a tool the model must call.

    Args:
        schema: a pydantic model, dataclass, TypedDict, JSON schema dict, or a ``Union`` of them
            (a JSON schema's ``oneOf`` too): one output tool per member.
        tool_message_content: the output tool's result in the conversation; by default
            ``"Returning structured response: {answer}"``.
        handle_errors: see :data:`ErrorHandler`; ``True`` by default.
        force_tool_choice: kept for LangChain's signature; the model is always made to call a
            tool (``tool_choice="any"``), as LangChain does.

    Attributes:
        schema_specs: one :class:`SchemaSpec` per output tool.
    """

    def __init__(
        self,
        schema: Any,
        *,
        tool_message_content: str | None = None,
        handle_errors: ErrorHandler = True,
        force_tool_choice: bool = True,
    ) -> None:
        self.schema = schema
        self.tool_message_content = tool_message_content
        self.handle_errors = handle_errors
        self.force_tool_choice = force_tool_choice
        self.schema_specs = [SchemaSpec(member) for member in variants(schema)]

    def retry_message(self, error: Exception) -> str | None:
        """What the model is told about ``error`` before it tries again, or ``None`` when the
        error is to be raised."""
        handle = self.handle_errors
        if handle is False:
            return None
        if handle is True:
            return ERROR_TEMPLATE.format(error=error)
        if isinstance(handle, str):
            return handle
        if isinstance(handle, (type, tuple)):
            return ERROR_TEMPLATE.format(error=error) if isinstance(error, handle) else None
        return handle(error)

    def __repr__(self) -> str:
        return f"ToolStrategy(schema={self.schema!r})"


class ProviderStrategy(Generic[SchemaT]):
    """Structured output through the provider's own API: the reply's text is the JSON answer.

    Args:
        schema: a pydantic model, dataclass, TypedDict or JSON schema dict.
        strict: ask the provider to enforce the schema strictly (OpenAI's ``"strict": true``,
            with every object of the schema closed).

    A wrong answer is not retried: the run fails with
    :class:`~rxagent.StructuredOutputValidationError`, as in LangChain.
    """

    def __init__(self, schema: Any, *, strict: bool | None = None) -> None:
        self.schema = schema
        self.schema_spec = SchemaSpec(schema, strict=strict)

    def to_model_kwargs(self) -> dict[str, Any]:
        """The call's ``response_format`` in OpenAI's form (each provider's request builder
        turns it into its own)."""
        from ._structured import openai_response_format

        return {"response_format": openai_response_format(self.schema_spec)}

    def __repr__(self) -> str:
        return f"ProviderStrategy(schema={self.schema!r})"


class AutoStrategy(Generic[SchemaT]):
    """A bare schema: the provider's native structured output where the model has it, else
    the tool form (what ``response_format=Schema`` means)."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema

    def __repr__(self) -> str:
        return f"AutoStrategy(schema={self.schema!r})"


ResponseFormat: TypeAlias = ToolStrategy[Any] | ProviderStrategy[Any] | AutoStrategy[Any]
"""What ``create_agent(response_format=...)`` takes besides a bare schema."""


def as_response_format(value: Any) -> ResponseFormat | None:
    """``response_format`` as a strategy: a bare schema becomes an :class:`AutoStrategy`.

    Raises:
        UsageError: a schema of no supported kind.
    """
    if value is None or isinstance(value, (ToolStrategy, ProviderStrategy, AutoStrategy)):
        return value
    for member in variants(value):
        SchemaSpec(member)  # checked now, at create_agent, not at the first model call
    return AutoStrategy(value)

