"""Reading SSE frames from raw bytes, for tests that look at the wire itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    event: str | None
    data: Any
    id: str | None
    comment: str | None = None


def parse_frames(raw: bytes) -> list[Frame]:
    """Every frame in ``raw`` (frames end with a blank line, lines with CRLF)."""
    assert raw.endswith(b"\r\n\r\n") or not raw, raw[-40:]
    frames = []
    for block in raw.split(b"\r\n\r\n")[:-1]:
        fields: dict[str, str] = {}
        comment = None
        for line in block.decode().split("\r\n"):
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            name, _, value = line.partition(": ")
            assert name not in fields, f"field {name} twice in one frame"
            fields[name] = value
        data = json.loads(fields["data"]) if "data" in fields else None
        frames.append(Frame(fields.get("event"), data, fields.get("id"), comment))
    return frames
