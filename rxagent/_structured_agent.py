"""An agent's ``response_format`` inside its model step, as LangChain's ``create_agent`` runs it.

Per model call: the strategy in force (a bare schema picks the provider's native form or the
tool form by the model's name), what it adds to the call (output tools and
``tool_choice="any"``, or ``response_format``), and what the reply makes of the step's update:
the reply, plus for an output tool's call a ``ToolMessage`` answering it (the answer, or the
error the model is to fix, which sends the run back to the model), and the
``structured_response`` (``None`` when the reply gave none, so that a thread's earlier answer
does not linger).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._exceptions import MultipleStructuredOutputsError, StructuredOutputValidationError
from ._messages import AIMessage, BaseMessage, ToolMessage
from ._structured import (
    SchemaSpec,
    json_text,
    openai_response_format,
    supports_provider_strategy,
    variants,
)
from ._types import ToolSpec
from .chat_models._base import BaseChatModel
from .structured_output import AutoStrategy, ProviderStrategy, ToolStrategy, as_response_format

__all__ = ["OutputFormat", "Strategy"]

Strategy = ToolStrategy[Any] | ProviderStrategy[Any]


class OutputFormat:
    """An agent's ``response_format``, checked once at ``create_agent``.

    Attributes:
        initial: the format as given (a bare schema as an :class:`AutoStrategy`), what
            middleware sees as ``request.response_format``.
        tools: the output tools by name, for every schema the tool form could use (a bare
            schema's too, as the model may turn out not to have a native form).
    """

    __slots__ = ("_native", "_setup", "initial", "tools")

    def __init__(self, response_format: Any) -> None:
        initial = as_response_format(response_format)
        assert initial is not None
        self.initial = initial
        setup = (ToolStrategy(initial.schema) if isinstance(initial, AutoStrategy)
                 else initial if isinstance(initial, ToolStrategy) else None)
        self._setup = setup
        # A bare schema's native form, made once: describing a schema costs milliseconds.
        single = isinstance(initial, AutoStrategy) and len(list(variants(initial.schema))) == 1
        self._native: ProviderStrategy[Any] | None = (
            ProviderStrategy(initial.schema) if single else None)
        self.tools: dict[str, SchemaSpec] = (
            {spec.name: spec for spec in setup.schema_specs} if setup is not None else {})

    @classmethod
    def undeclared(cls, response_format: Any) -> OutputFormat:
        """The format a ``wrap_model_call`` middleware gave an agent created without one: no
        output tools are declared, so only the native form can answer (LangChain's rule)."""
        made = cls(response_format)
        made.tools = {}
        return made

    def strategy(self, requested: Any, model: BaseChatModel) -> Strategy | None:
        """The strategy of one call: ``requested`` is the request's ``response_format`` (a
        middleware may have changed it)."""
        chosen = as_response_format(requested)
        if isinstance(chosen, AutoStrategy):
            if supports_provider_strategy(model.model_name):
                if chosen is self.initial and self._native is not None:
                    return self._native
                if len(list(variants(chosen.schema))) == 1:
                    return ProviderStrategy(chosen.schema)
            if chosen is self.initial and self._setup is not None:
                return self._setup  # the same output tools, names and all
            return ToolStrategy(chosen.schema)
        return chosen

    def call_options(
        self, strategy: Strategy | None, specs: list[ToolSpec], kwargs: dict[str, Any]
    ) -> tuple[list[ToolSpec], dict[str, Any]]:
        """The call's tool specs and parameters with the strategy's additions."""
        if isinstance(strategy, ProviderStrategy):
            return specs, {"response_format": openai_response_format(strategy.schema_spec),
                           **kwargs}
        if isinstance(strategy, ToolStrategy):
            names = [spec.name for spec in strategy.schema_specs]
            unknown = [name for name in names if name not in self.tools]
            if unknown:
                raise ValueError(
                    f"ToolStrategy specifies tool '{unknown[0]}' which wasn't declared in the "
                    "original response format when creating the agent."
                )
            # The model must answer through a tool, as LangChain makes it.
            return ([*specs, *(self.tools[name].tool_spec() for name in names)],
                    {**kwargs, "tool_choice": "any"})
        return specs, kwargs

    def read(
        self, reply: AIMessage, strategy: Strategy | None
    ) -> tuple[list[BaseMessage], Any]:
        """The step's messages and structured response for ``reply``.

        Raises:
            StructuredOutputValidationError: a native answer that does not parse, or a tool
                answer that does not, with ``handle_errors`` saying raise.
            MultipleStructuredOutputsError: more than one output tool called, likewise.
        """
        if isinstance(strategy, ProviderStrategy):
            if reply.tool_calls:
                return [reply], None
            spec = strategy.schema_spec
            try:
                return [reply], spec.parse(_decoded(json_text(reply), spec))
            except Exception as exc:
                name = getattr(spec.schema, "__name__", "response_format")
                raise StructuredOutputValidationError(name, exc, reply) from exc
        if not isinstance(strategy, ToolStrategy):
            return [reply], None
        calls = [call for call in reply.tool_calls if call["name"] in self.tools]
        if not calls:
            return [reply], None
        if len(calls) > 1:
            error = MultipleStructuredOutputsError([c["name"] for c in calls], reply)
            text = strategy.retry_message(error)
            if text is None:
                raise error
            return [reply, *(_answer(call, text) for call in calls)], None
        call = calls[0]
        try:
            value = self.tools[call["name"]].parse(call["args"])
        except Exception as exc:
            failed = StructuredOutputValidationError(call["name"], exc, reply)
            text = strategy.retry_message(failed)
            if text is None:
                raise failed from exc
            return [reply, _answer(call, text)], None
        content = strategy.tool_message_content or f"Returning structured response: {value}"
        return [reply, _answer(call, content)], value


def _decoded(text: str, spec: SchemaSpec) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(
            f"Native structured output expected valid JSON for {spec.name}, but parsing "
            f"failed: {exc}."
        ) from exc


def _answer(call: Mapping[str, Any], content: str) -> ToolMessage:
    return ToolMessage(content=content, tool_call_id=call["id"] or "", name=call["name"])
