"""Structured output as it forms: validated partial objects from JSON that is still arriving.

:class:`PartialReader` is fed the JSON's pieces (the reply's text for a provider's native form,
the output tool call's argument fragments for the tool form) and gives, for each piece that
changes what can be read, the object so far. Facts this rests on:

- ``pydantic_core.from_json(..., allow_partial="trailing-strings")`` reads an unfinished
  document, keeping an unfinished string's first part; it is C, and reading a 1 kB answer again
  costs a few microseconds, so each piece re-reads the whole answer rather than keeping a
  parser's state in Python (which would cost more per character than the re-read does).
- pydantic's ``experimental_allow_partial`` validates unfinished lists, dicts and TypedDicts,
  but not models or dataclasses: their missing required fields still fail. So a model is read
  through its *partial twin*: the same fields, each optional (``None`` until it arrives),
  nested models twinned too, constraints kept. The partial objects are the twin's instances;
  the last one, once the document is whole, is validated by the schema itself.
- A number at the very end may be unfinished (``1`` of ``10``), so it is left out until
  something follows it; a string at the end grows as it arrives.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
from typing import Annotated, Any, Optional, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, create_model
from pydantic_core import from_json

from ._structured import SchemaSpec

__all__ = ["PartialReader", "partial_model"]

_UNFINISHED_NUMBER = re.compile(r"[-+0-9.eE]+\s*$")
_UNSET = object()


class PartialReader:
    """Reads one structured answer as it arrives.

    Args:
        spec: the answer's schema.

    Attributes:
        text: the JSON so far.
    """

    __slots__ = ("_last", "_pieces", "_twin", "spec")

    def __init__(self, spec: SchemaSpec) -> None:
        self.spec = spec
        self._pieces: list[str] = []
        self._last: Any = _UNSET
        self._twin = _twin_adapter(spec)

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def feed(self, piece: str) -> Any:
        """Add ``piece``; the partial object if it changed, else ``None``."""
        if not piece:
            return None
        self._pieces.append(piece)
        text = "".join(self._pieces)
        if len(self._pieces) > 1:
            self._pieces = [text]
        end = text.rstrip()[-1:]
        if end and end not in '"}]':
            match = _UNFINISHED_NUMBER.search(text)
            if match is not None:
                text = text[:match.start()]
        try:
            data = from_json(text, allow_partial="trailing-strings")
        except ValueError:
            return None  # not yet a document's start (a key cut before its colon reads fine)
        if data == self._last:
            return None
        self._last = data
        return self._validated(data)

    def _validated(self, data: Any) -> Any:
        if self._twin is None:
            return data
        try:
            return self._twin.validate_python(data, experimental_allow_partial="trailing-strings")
        except ValueError:
            return None  # a value the schema refuses: the whole answer will say so

    def finish(self) -> Any:
        """The whole answer, validated by the schema.

        Raises:
            ValueError: the JSON is not whole, or the schema refuses it.
        """
        return self.spec.parse(from_json(self.text))


def _twin_adapter(spec: SchemaSpec) -> TypeAdapter[Any] | None:
    if spec.kind == "json_schema":
        return None
    return TypeAdapter(_partial_type(spec.schema))


@functools.cache
def partial_model(model: type[Any]) -> type[BaseModel]:
    """The partial twin of a pydantic model or dataclass: every field optional and ``None``
    until given, nested models twinned, each field's constraints kept."""
    fields: dict[str, Any] = {}
    if isinstance(model, type) and issubclass(model, BaseModel):
        for name, info in model.model_fields.items():
            kept = [m for m in info.metadata]
            hint: Any = Optional[_partial_type(info.annotation)]  # noqa: UP045
            if kept:
                hint = Annotated[hint, *kept]
            fields[name] = (hint, Field(default=None, alias=info.alias,
                                        description=info.description))
    else:
        for field in dataclasses.fields(model):
            fields[field.name] = (Optional[_partial_type(field.type)], None)  # noqa: UP045
    return create_model(f"Partial{model.__name__}", **fields)


def _partial_type(hint: Any) -> Any:
    if isinstance(hint, type) and (issubclass(hint, BaseModel) or dataclasses.is_dataclass(hint)):
        return partial_model(hint)
    origin = get_origin(hint)
    if origin in (list, set, frozenset, tuple) and get_args(hint):
        args = get_args(hint)
        if origin is tuple:
            return hint
        return origin[_partial_type(args[0])]
    if origin in (Union, types.UnionType):
        return Union[tuple(_partial_type(arg) for arg in get_args(hint))]  # noqa: UP007
    if origin is dict and get_args(hint):
        key, value = get_args(hint)
        return dict[key, _partial_type(value)]  # type: ignore[valid-type,misc]
    return hint
