"""One event's JSON, parsed: the step every wire format takes for every token.

``json.loads`` wraps the C scanner in two Python calls and two regex matches that skip
whitespace around the value. A provider's event has none, so :func:`loads` calls the scanner
itself, and hands anything else (whitespace, data after the value, text that is not JSON) to
``json.loads``, which then gives the same value or raises the same error. This saves about a
tenth of what a token costs on the wire path (``bench/instructions.py``, the wire workloads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["loads", "scan"]

# The C scanner, as json.loads's own decoder has it (set in JSONDecoder.__init__, so typeshed
# does not list it). It clears its key memo after each call.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

scan = _scan
"""The scanner itself, for a loop that calls it inline: ``(value, end)`` for the JSON value
at the start of the text, ``StopIteration`` or ``json.JSONDecodeError`` when there is none.
The value is the whole text's only when ``end`` is its length; else see :func:`loads`."""


def loads(text: str) -> Any:
    """``json.loads(text)``, faster for JSON without surrounding whitespace.

    Raises:
        json.JSONDecodeError: the text is not one JSON value.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value
