"""Structured output as it forms: validated partial objects from JSON that is still arriving.

:class:`PartialReader` is fed the JSON's pieces (the reply's text for a provider's native form,
the output tool call's argument fragments for the tool form) and gives, for each piece that
changes what can be read, the object so far. Facts this rests on:

- ``pydantic_core.from_json(..., allow_partial="trailing-strings")`` reads an unfinished
  document, keeping an unfinished string's first part. Reading the whole answer again at each
  piece costs its length per piece (its square in all: at 1,000 tokens that was most of the
  cost), so :class:`IncrementalJSON` scans each character once, reads each finished member of
  the open objects and arrays once, and at each piece reads only the member being written;
  a Hypothesis test checks it against reading the whole prefix (:func:`read_prefix`).
- pydantic's ``experimental_allow_partial`` validates unfinished lists, dicts and TypedDicts,
  but not models or dataclasses: their missing required fields still fail. So a model is read
  through its *partial twin*: the same fields, each optional (``None`` until it arrives),
  nested models twinned too, constraints kept. The partial objects are the twin's instances;
  the last one, once the document is whole, is validated by the schema itself. Validating the
  whole object at each piece is what a piece costs most now (``bench/structured.py``).
- A number at the very end may be unfinished (``1`` of ``10``), so it is left out until
  something follows it; a string at the end grows as it arrives.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Annotated, Any, Optional, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, create_model
from pydantic_core import from_json

from ._structured import SchemaSpec

__all__ = ["IncrementalJSON", "PartialReader", "partial_model", "read_prefix"]

_UNSET = object()


class PartialReader:
    """Reads one structured answer as it arrives.

    Args:
        spec: the answer's schema.

    Attributes:
        text: the JSON so far.
    """

    __slots__ = ("_json", "_last", "_shape", "_twin", "spec")

    def __init__(self, spec: SchemaSpec) -> None:
        self.spec = spec
        self._json = IncrementalJSON()
        self._last: Any = _UNSET
        self._twin = _twin_adapter(spec)
        self._shape = None if spec.kind == "json_schema" else _shape_of(_partial_type(spec.schema))

    @property
    def text(self) -> str:
        return self._json.text

    def feed(self, piece: str) -> Any:
        """Add ``piece``; the partial object if it changed, else ``None``."""
        if not piece or not self._json.advance(piece):
            return None
        try:
            if self._shape is not None and self._shape.model is not None:
                checked = self._json.validated(self._shape)
                if checked is not _UNSET:
                    return checked
            data = self._json.snapshot()
            if data is _UNSET or data == self._last:
                return None
            self._last = data
            if self._twin is None:
                return data
            return self._twin.validate_python(data, experimental_allow_partial="trailing-strings")
        except ValueError:
            return None  # a value the schema refuses: the whole answer will say so

    def finish(self) -> Any:
        """The whole answer, validated by the schema.

        Raises:
            ValueError: the JSON is not whole, or the schema refuses it.
        """
        return self.spec.parse(from_json(self.text))


def read_prefix(text: str) -> Any:
    """What an unfinished document reads as: the whole text read again, the reference that
    :class:`IncrementalJSON` must agree with (``tests/test_structured_partial.py``)."""
    return _partial(_trimmed(text))


def _trimmed(text: str) -> str:
    """``text`` without an unfinished number at its end (``1`` of ``10``)."""
    end = len(text.rstrip())
    cut = end
    while cut and text[cut - 1] in _NUMBER:
        cut -= 1
    return text[:cut] if cut < end else text


def _partial(text: str) -> Any:
    try:
        return from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return _UNSET  # not yet a document's start


_NUMBER = frozenset("-+0123456789.eE")


class _Frame:
    """An open object or array: its finished members, read once each, and where the member
    being written starts."""

    __slots__ = ("checked", "child", "child_at", "items", "key", "kind", "opened", "shape",
                 "start")

    def __init__(self, kind: str, opened: int) -> None:
        self.kind = kind
        self.opened = opened  # the index of its bracket
        self.start = opened + 1  # where the current member starts
        self.items: Any = {} if kind == "{" else []
        self.child: Any = _UNSET  # the current member's value, a container that closed
        self.child_at = 0  # where that container opened
        self.checked: Any = {} if kind == "{" else []  # finished members, validated
        self.shape: Any = _UNSET  # how its values are validated, found once
        self.key: Any = _UNSET  # its key in the object it is a member of


class IncrementalJSON:
    """An unfinished JSON document read as it grows, each character scanned once.

    Reading the whole text again at each piece (:func:`read_prefix`) costs the answer's
    length per piece, so the answer's square in all; here the finished members of each open
    object and array are read once, and a piece costs its own characters plus reading the
    member being written. What it gives equals :func:`read_prefix` of the same text (a
    Hypothesis test cuts documents everywhere to check it). A document that is no object or
    array falls back to reading the whole text.
    """

    __slots__ = ("_escape", "_final", "_in_string", "_pieces", "_root", "_scanned", "_stack",
                 "_tail", "_tail_frame", "_text", "_version")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._text = ""
        self._scanned = 0
        self._in_string = False
        self._escape = False
        self._stack: list[_Frame] = []
        self._root: Any = None  # None: not started; True: a container; False: fall back
        self._final: Any = _UNSET  # the document, once its root closed
        self._version = 0  # counts finished members and containers opened and closed
        self._tail: Any = _UNSET  # the member being written, as last read
        self._tail_frame: _Frame | None = None  # whose member that is

    @property
    def text(self) -> str:
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text

    def feed(self, piece: str) -> Any:
        """Add ``piece``; the document so far (``_UNSET`` before it starts)."""
        self.advance(piece)
        return self.snapshot()

    def advance(self, piece: str) -> bool:
        """Add ``piece``; whether what the document reads as may have changed (a finished
        member, a container opened or closed, or the member being written reads otherwise).
        Cheaper than comparing snapshots: only the member being written is read."""
        self._pieces.append(piece)
        text = self.text
        if self._root is None:
            first = text.lstrip()[:1]
            if not first:
                return False
            self._root = first in "{["
        if not self._root:
            return True
        before, shown = self._version, self._tail
        self._scan(text)
        stack = self._stack
        tail: Any = _UNSET
        frame = stack[-1] if stack and stack[-1].child is _UNSET else None
        if frame is not None:
            rest = text[frame.start:]
            if rest.strip():
                # Read inside its container, as reading the whole would (a bare "nu" is no
                # JSON, "[nu" reads as [None]).
                tail = _partial(_trimmed(frame.kind + rest))
                if frame.kind == "[":
                    tail = tail[0] if isinstance(tail, list) and tail else _UNSET
                elif not tail:  # a key not yet given a value reads as nothing
                    tail = _UNSET
        if frame is not self._tail_frame:
            shown = _UNSET  # another member: whatever it reads is news
        # No member being written (the document closed, or a container just closed in it):
        # only what finished can have changed the reading.
        changed = self._version != before or (frame is not None and tail != shown)
        self._tail, self._tail_frame = tail, frame
        return changed

    def snapshot(self) -> Any:
        """The document so far (``_UNSET`` before it starts)."""
        text = self.text
        if self._root is None:
            return _UNSET
        if not self._root:
            return read_prefix(text)
        return self._snapshot(text)

    def _scan(self, text: str) -> None:
        stack = self._stack
        in_string, escape = self._in_string, self._escape
        for index in range(self._scanned, len(text)):
            char = text[index]
            if in_string:
                if escape:
                    escape = False
                elif char == "\\":
                    escape = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "{" or char == "[":
                if stack:
                    stack[-1].child_at = index
                elif self._done(stack):
                    break
                stack.append(_Frame(char, index))
                self._version += 1
            elif char == ",":
                if stack:
                    self._finish_member(text, stack[-1], index)
            elif char == "}" or char == "]":
                if not stack:
                    break
                frame = stack.pop()
                self._finish_member(text, frame, index)
                if stack:
                    stack[-1].child = frame.items
                else:
                    self._final = frame.items
        self._in_string, self._escape = in_string, escape
        self._scanned = len(text)

    def _done(self, stack: list[_Frame]) -> bool:
        return not stack and self._final is not _UNSET

    def _finish_member(self, text: str, frame: _Frame, end: int) -> None:
        # A member counts as a change only if it reads otherwise than it did while being
        # written (a number it withheld); a container's member showed as it grew.
        if frame.child is not _UNSET:
            value = frame.child
            if frame.kind == "{":
                frame.items[_key(text[frame.start:frame.child_at])] = value
            else:
                frame.items.append(value)
        else:
            member = text[frame.start:end]
            if member.strip():
                seen = self._tail if self._tail_frame is frame else _UNSET
                if frame.kind == "{":
                    read = from_json("{" + member + "}")
                    frame.items.update(read)
                else:
                    read = from_json(member)
                    frame.items.append(read)
                if read != seen:
                    self._version += 1
        frame.child = _UNSET
        frame.start = end + 1
        if self._tail_frame is frame:
            self._tail = _UNSET  # the next member starts unread
            self._tail_frame = None

    def validated(self, root: _Shape) -> Any:
        """The document so far validated member by member along ``root``'s shapes, each
        finished member once; ``_UNSET`` where the shapes do not reach (a union, a dict...),
        for the caller to validate the whole.

        Raises:
            ValueError: a member its type refuses.
        """
        stack = self._stack
        if not stack:
            return _UNSET
        text = self.text
        shapes: list[_Shape] = [root]
        for depth in range(len(stack) - 1):
            frame, shape, child = stack[depth], shapes[-1], stack[depth + 1]
            below: _Shape | None = child.shape
            if below is _UNSET:  # found once: the child's key does not change while it is open
                if frame.kind == "{":
                    key = child.key = _partial_key(text[frame.start:child.opened])
                    below = None if key is _UNSET else shape.field(key)
                else:
                    below = shape.item()
                if below is not None and below.model is None and below.item() is None:
                    below = None
                child.shape = below
            if below is None:
                return _UNSET
            shapes.append(below)
        for frame, shape in zip(stack, shapes, strict=True):
            if (shape.model if frame.kind == "{" else shape.item()) is None:
                return _UNSET  # the shapes do not fit the document: the whole is validated
        value: Any = _UNSET
        for depth in range(len(stack) - 1, -1, -1):
            frame, shape = stack[depth], shapes[depth]
            _validated_member(frame, shape)
            open_member: dict[str, Any] = {}
            tail_item: Any = _UNSET
            if depth < len(stack) - 1:
                if frame.kind == "{":
                    open_member[stack[depth + 1].key] = value
                else:
                    tail_item = value
            elif frame.child is not _UNSET:
                raw = frame.child
                if frame.kind == "{":
                    open_member[_key(text[frame.start:frame.child_at])] = raw
                else:
                    tail_item = raw
            else:
                read = self._tail  # the member being written, read by advance()
                if frame.kind == "{":
                    if isinstance(read, dict):
                        open_member = read
                elif read is not _UNSET:
                    tail_item = read
            if frame.kind == "[":
                items = list(frame.checked)
                if tail_item is not _UNSET:
                    item = shape.item()
                    assert item is not None
                    items.append(tail_item if depth < len(stack) - 1 else
                                 item.adapter.validate_python(tail_item, **_PARTIAL))
                value = items
            else:
                assert shape.model is not None
                fields = dict(frame.checked)
                for key, raw in open_member.items():
                    field = shape.field(key)
                    if field is not None:
                        fields[key] = (raw if depth < len(stack) - 1 else
                                       field.adapter.validate_python(raw, **_PARTIAL))
                value = shape.model.model_construct(**fields)
        return value

    def _snapshot(self, text: str) -> Any:
        stack = self._stack
        if not stack:
            return self._final
        value: Any = _UNSET  # the open member's value, from the deepest frame up
        for depth in range(len(stack) - 1, -1, -1):
            frame = stack[depth]
            items: Any = dict(frame.items) if frame.kind == "{" else list(frame.items)
            if depth < len(stack) - 1:  # its member holds the open container above it
                opened = stack[depth + 1].opened
                if frame.kind == "{":
                    key = _partial_key(text[frame.start:opened])
                    if key is not _UNSET:
                        items[key] = value
                else:
                    items.append(value)
            elif frame.child is not _UNSET:  # its member's container closed already
                if frame.kind == "{":
                    items[_key(text[frame.start:frame.child_at])] = frame.child
                else:
                    items.append(frame.child)
            else:
                read = self._tail  # the member being written, read by advance()
                if frame.kind == "{":
                    if isinstance(read, dict):
                        items.update(read)
                elif read is not _UNSET:
                    items.append(read)
            value = items
        return value


def _validated_member(frame: _Frame, shape: _Shape) -> None:
    """Bring the frame's validated finished members up to its finished members: each is
    validated once."""
    checked = frame.checked
    if frame.kind == "[":
        item = shape.item()
        assert item is not None
        for value in frame.items[len(checked):]:
            checked.append(item.adapter.validate_python(value))
    else:
        for key, value in frame.items.items():
            if key not in checked:
                field = shape.field(key)
                if field is not None:  # a key the model does not have is left out, as pydantic
                    checked[key] = field.adapter.validate_python(value)


def _key(prefix: str) -> str:
    """The key of a member written up to its value: ``"name":`` gives ``name``."""
    key: str = from_json(prefix.strip().rstrip(":").rstrip())
    return key


def _partial_key(prefix: str) -> Any:
    text = prefix.strip()
    if not text.endswith(":"):
        return _UNSET
    return _key(text)


def _twin_adapter(spec: SchemaSpec) -> TypeAdapter[Any] | None:
    if spec.kind == "json_schema":
        return None
    return _adapter_of(spec.schema)


@functools.cache
def _adapter_of(schema: Any) -> TypeAdapter[Any]:
    # Built once per schema: building an adapter costs milliseconds, a reader is made per call.
    return TypeAdapter(_partial_type(schema))


_PARTIAL: dict[str, Any] = {"experimental_allow_partial": "trailing-strings"}


class _Shape:
    """How a value of one type is validated piece by piece: a model's fields, a list's items
    (each made when first needed), and the adapter that validates a whole value."""

    __slots__ = ("_fields", "_hint", "_item", "adapter", "model")

    def __init__(self, hint: Any) -> None:
        self._hint = hint
        self.adapter: TypeAdapter[Any] = TypeAdapter(hint)
        inner = _optional_inner(hint)
        named = (isinstance(inner, type) and issubclass(inner, BaseModel)
                 and all(info.alias in (None, name) for name, info in inner.model_fields.items()))
        self.model: type[BaseModel] | None = inner if named else None
        self._fields: dict[str, _Shape | None] = {}
        self._item: Any = _UNSET
        if get_origin(inner) is list and get_args(inner):
            self._item = get_args(inner)[0]

    def field(self, name: str) -> _Shape | None:
        if self.model is None:
            return None
        if name not in self._fields:
            info = self.model.model_fields.get(name)
            hint: Any = None if info is None else info.annotation
            if info is not None and info.metadata:
                hint = Annotated[hint, *info.metadata]  # its constraints kept
            self._fields[name] = None if info is None else _shape_of(hint)
        return self._fields[name]

    def item(self) -> _Shape | None:
        return None if self._item is _UNSET else _shape_of(self._item)


@functools.cache
def _shape_of(hint: Any) -> _Shape:
    return _Shape(hint)


def _optional_inner(hint: Any) -> Any:
    """``X`` of ``Optional[X]``; the hint itself otherwise."""
    if get_origin(hint) in (Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return hint


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
