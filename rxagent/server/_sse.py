"""Server-sent events as LangGraph's server frames them, and the JSON inside them.

A frame is ``event: NAME\\r\\ndata: <one-line JSON>\\r\\n`` then, for a resumable run,
``id: N\\r\\n``, then a blank line. The JSON is built once per event and shared by every client
of the run, so a frame is kept as its bytes without the id (:func:`frame`), and the id is added
per client (:func:`with_id`). No I/O here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["HEARTBEAT", "dumps", "frame", "jsonable", "pair_frame", "with_id"]

HEARTBEAT = b": heartbeat\r\n\r\n"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: messages as their ``model_dump()``, tuples as lists,
    interrupts as ``{"value", "id"}``; keys as ``json`` spells them (``true``, ``null``,
    numbers), others as their ``str()``."""
    if isinstance(value, Mapping):
        return {_key(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return jsonable(_one_level(value))


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def _one_level(value: Any) -> Any:
    """What a value JSON cannot take stands for, one level down (its parts are converted in
    turn): what :func:`jsonable` does past lists, dicts and scalars, and the encoder's
    ``default`` hook in :func:`dumps`."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return str(value)


# One encoder for every event: the stdlib's C encoder walks lists, dicts and scalars itself and
# calls back only for what JSON cannot take (a message, once per message), instead of a Python
# walk that copies every value first. Its bytes equal json.dumps(jsonable(value)) (a test checks
# it on every kind of value), except that keys json refuses (a tuple) go the slow way.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, default=_one_level
)


def dumps(value: Any) -> bytes:
    """Compact one-line JSON (``json`` escapes newlines inside strings)."""
    try:
        return _ENCODER.encode(value).encode()
    except TypeError:  # a key json refuses: jsonable spells it
        return _ENCODER.encode(jsonable(value)).encode()


def frame(event: str, data: Any) -> bytes:
    """The frame of one event, without its id or the blank line that ends it."""
    return b"event: %s\r\ndata: %s\r\n" % (event.encode(), dumps(data))


def pair_frame(event: str, first: Any, second_json: bytes) -> bytes:
    """:func:`frame` of ``[first, second]`` when ``second`` is already encoded (by
    :func:`dumps`): the same bytes, since a compact JSON array is its items' JSON joined by
    commas."""
    return b"event: %s\r\ndata: [%s,%s]\r\n" % (event.encode(), dumps(first), second_json)


def with_id(body: bytes, event_id: int | None) -> bytes:
    """A whole frame: ``body`` from :func:`frame`, the id when there is one, the blank line."""
    if event_id is None:
        return body + b"\r\n"
    return body + b"id: " + str(event_id).encode() + b"\r\n\r\n"
