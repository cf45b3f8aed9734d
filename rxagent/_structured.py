"""Schemas of structured output: what a schema is called, its JSON schema, and parsing an answer.

A schema is a pydantic model, a dataclass, a ``TypedDict`` (each validated through pydantic's
``TypeAdapter``) or a JSON schema dict (whose answers are kept as the dicts they are, as
LangChain keeps them); a ``Union`` of them, or a JSON schema with ``oneOf``, gives one output
tool per member. The same :class:`SchemaSpec` serves ``create_agent(response_format=...)``,
``model.with_structured_output(...)`` and the partial output stream, and turns into each wire
format's request (OpenAI's ``response_format``, Anthropic's ``output_config.format``).

The adapter is built once per spec: building a ``TypeAdapter`` costs far more than using it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter
from typing_extensions import is_typeddict

from ._exceptions import UsageError
from ._messages import AIMessage
from ._types import ToolSpec

__all__ = [
    "SchemaKind",
    "SchemaSpec",
    "anthropic_output_format",
    "json_text",
    "openai_response_format",
    "supports_provider_strategy",
    "variants",
]

SchemaKind = Literal["pydantic", "dataclass", "typeddict", "json_schema"]


class SchemaSpec:
    """One schema of structured output: its name, description, JSON schema and parser.

    Args:
        schema: a pydantic model, dataclass, TypedDict or JSON schema dict.
        name: the output tool's name; the class's name, or a JSON schema's ``title``.
        description: the class's docstring, or a JSON schema's ``description``.
        strict: ask the provider to enforce the schema strictly.

    Raises:
        UsageError: ``schema`` is none of those kinds.
    """

    __slots__ = ("_adapter", "description", "json_schema", "kind", "name", "schema", "strict")

    def __init__(
        self,
        schema: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool | None = None,
    ) -> None:
        self.schema = schema
        self.strict = strict
        self._adapter: TypeAdapter[Any] | None = None
        self.kind: SchemaKind
        if isinstance(schema, Mapping):
            self.kind = "json_schema"
            self.json_schema = dict(schema)
        elif isinstance(schema, type) and issubclass(schema, BaseModel):
            self.kind = "pydantic"
            self.json_schema = schema.model_json_schema()
        elif isinstance(schema, type) and dataclasses.is_dataclass(schema):
            self.kind = "dataclass"
            self._adapter = TypeAdapter(schema)
            self.json_schema = self._adapter.json_schema()
        elif is_typeddict(schema):
            self.kind = "typeddict"
            self._adapter = TypeAdapter(schema)
            self.json_schema = self._adapter.json_schema()
        else:
            raise UsageError(
                "a structured output schema is a pydantic model, a dataclass, a TypedDict or a "
                f"JSON schema dict (or a Union of them), got {schema!r}"
            )
        fallback = f"response_format_{uuid.uuid4().hex[:4]}"
        if name:
            self.name = name
        elif self.kind == "json_schema":
            self.name = str(self.json_schema.get("title") or fallback)
        else:
            self.name = str(getattr(schema, "__name__", fallback))
        if description is not None:
            self.description = description
        elif self.kind == "json_schema":
            self.description = str(self.json_schema.get("description", ""))
        else:
            self.description = _own_doc(schema)

    def parse(self, data: Any) -> Any:
        """``data`` (decoded JSON) as the schema's type; a JSON schema's answer as it is.

        Raises:
            ValueError: the schema refuses ``data`` (pydantic's error in the message).
        """
        if self.kind == "json_schema":
            return data
        try:
            if self.kind == "pydantic":
                return self.schema.model_validate(data)
            assert self._adapter is not None
            return self._adapter.validate_python(data)
        except Exception as exc:
            raise ValueError(f"Failed to parse data to {self.name}: {exc}") from exc

    def tool_spec(self) -> ToolSpec:
        """The schema as an output tool the model may call (its parameters without titles,
        as LangChain describes tools)."""
        return {"name": self.name, "description": self.description,
                "parameters": _without_titles(self.json_schema)}

    def __repr__(self) -> str:
        return f"SchemaSpec(name={self.name!r}, kind={self.kind!r})"


def _own_doc(schema: Any) -> str:
    doc = getattr(schema, "__doc__", None) or ""
    # A dataclass without a docstring gets its signature as one; a TypedDict may inherit one.
    if dataclasses.is_dataclass(schema) and doc.startswith(f"{getattr(schema, '__name__', '')}("):
        return ""
    return doc.strip() if isinstance(doc, str) else ""


def variants(schema: Any) -> Iterator[Any]:
    """The members of a ``Union`` (``A | B``) or of a JSON schema's ``oneOf``, leaves only."""
    if get_origin(schema) in (Union, UnionType):
        for member in get_args(schema):
            yield from variants(member)
    elif isinstance(schema, Mapping) and "oneOf" in schema:
        for member in schema["oneOf"]:
            yield from variants(member)
    else:
        yield schema


def _without_titles(schema: Any) -> Any:
    """A JSON schema without pydantic's ``title`` keys (a property named ``title`` stays)."""
    if isinstance(schema, dict):
        return {key: (_without_titles(value) if key != "properties" else
                      {name: _without_titles(sub) for name, sub in value.items()})
                for key, value in schema.items() if key != "title"}
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    return schema


# -- the providers' native forms ----------------------------------------------------------------


def openai_response_format(spec: SchemaSpec) -> dict[str, Any]:
    """Chat Completions' ``response_format`` for ``spec``: ``{"type": "json_schema",
    "json_schema": {"name", "description", "schema", "strict"}}``.

    ``"strict": true`` only when the spec asks for it (LangChain sends ``false`` otherwise),
    and then with the schema as strict mode wants it: every object closed.
    """
    strict = bool(spec.strict)
    schema = _closed(copy.deepcopy(spec.json_schema)) if strict else spec.json_schema
    body: dict[str, Any] = {"name": spec.name}
    if spec.description:
        body["description"] = spec.description
    body["strict"] = strict
    body["schema"] = schema
    return {"type": "json_schema", "json_schema": body}


# What Anthropic's structured outputs refuse in a schema; kept for the model in the description,
# as the Anthropic SDK's own transform keeps them.
_ANTHROPIC_UNSUPPORTED = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "maxItems", "uniqueItems", "minProperties",
    "maxProperties",
)


def anthropic_output_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's ``output_config.format`` for a JSON schema: ``{"type": "json_schema",
    "schema": ...}`` with every object closed and the constraints it refuses moved into the
    description (as langchain-anthropic sends it)."""
    return {"type": "json_schema", "schema": _for_anthropic(copy.deepcopy(dict(schema)))}


def _for_anthropic(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_for_anthropic(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    moved = {key: schema.pop(key) for key in _ANTHROPIC_UNSUPPORTED if key in schema}
    if schema.get("minItems", 0) > 1:
        moved["minItems"] = schema.pop("minItems")
    for key, value in list(schema.items()):
        if key == "properties" and isinstance(value, dict):
            schema[key] = {name: _for_anthropic(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "allOf", "oneOf", "$defs", "definitions"):
            schema[key] = ({n: _for_anthropic(s) for n, s in value.items()}
                           if isinstance(value, dict) and key in ("$defs", "definitions")
                           else _for_anthropic(value))
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    if moved:
        note = "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in moved.items()) + "}"
        schema["description"] = f"{schema['description']}\n\n{note}" if schema.get(
            "description") else note
    return schema


def _closed(schema: Any) -> Any:
    """Every object schema in ``schema`` with ``additionalProperties: false`` (strict mode)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if isinstance(schema, dict):
        for value in schema.values():
            _closed(value)
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return schema


# -- reading answers --------------------------------------------------------------------------


def json_text(message: AIMessage) -> str:
    """The reply's text, where a provider's native structured output puts its JSON."""
    content = message.content
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for block in content:
        if isinstance(block, str):
            pieces.append(block)
        elif block.get("type") == "text" and "text" in block:
            pieces.append(str(block["text"]))
    return "".join(pieces)


# Model names that take a provider's native structured output, read by the model name as
# LangChain reads it when a model has no profile; segments only, not substrings.
_NATIVE = re.compile(
    r"(^|[/:.])(gpt-4\.1|gpt-4o|gpt-5|gpt-5\.[1-5]|grok-4|grok-build)($|[-/:.])"
    r"|(^|[/:.])claude-(haiku-4-5|sonnet-4-[56]|opus-4-[5-8]|fable-5|mythos-5)($|[-/:@])"
)


def supports_provider_strategy(model_name: str | None) -> bool:
    """Whether a bare schema as ``response_format`` uses the provider's native structured
    output for this model (else the tool form), as LangChain's fallback list decides."""
    return bool(model_name) and _NATIVE.search(str(model_name).lower()) is not None
