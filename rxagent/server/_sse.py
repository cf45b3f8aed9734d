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

__all__ = ["HEARTBEAT", "dumps", "frame", "jsonable", "with_id"]

HEARTBEAT = b": heartbeat\r\n\r\n"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: messages as their ``model_dump()``, tuples as lists,
    interrupts as ``{"value", "id"}``."""
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return str(value)


def dumps(value: Any) -> bytes:
    """Compact one-line JSON (``json`` escapes newlines inside strings)."""
    return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False).encode()


def frame(event: str, data: Any) -> bytes:
    """The frame of one event, without its id or the blank line that ends it."""
    return b"event: " + event.encode() + b"\r\ndata: " + dumps(data) + b"\r\n"


def with_id(body: bytes, event_id: int | None) -> bytes:
    """A whole frame: ``body`` from :func:`frame`, the id when there is one, the blank line."""
    if event_id is None:
        return body + b"\r\n"
    return body + b"id: " + str(event_id).encode() + b"\r\n\r\n"
