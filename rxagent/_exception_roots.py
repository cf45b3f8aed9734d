"""The roots of rxagent's exception tree, and the one error the message types raise.

The whole tree is drawn, defined and exported in ``_exceptions.py``; these three classes live
down here only so that ``_messages.py`` can raise :class:`InvalidMessageError` without importing
``_exceptions.py``, which imports ``_messages.py`` to type ``ModelCallError.partial``.
``_exceptions.py`` re-exports them, so there is one class of each, whichever module names it.
"""

from __future__ import annotations

__all__ = ["InvalidMessageError", "RxAgentError", "UsageError"]


class RxAgentError(Exception):
    """The root of every exception rxagent raises on purpose."""


class UsageError(RxAgentError):
    """The caller asked for something that cannot work; fix the call, not the run."""


class InvalidMessageError(UsageError, ValueError):
    """A value given as a message is not one (and cannot be read as one)."""
