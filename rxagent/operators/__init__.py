"""Operators on a run's stream of parts: the stream modes, and shaping what they carry.

Every operator returns a function from Observable to Observable, so they compose with
``pipe`` next to reactivex's own::

    import reactivex.operators as ops
    from rxagent import operators as rxo

    agent.observe(inputs).pipe(
        rxo.from_nodes("model"),     # filters keep parts as parts
        rxo.coalesce(0.05),          # shaping, too
        rxo.text(),                  # projections and modes give payloads
    ).subscribe(print)

- Stream modes: :func:`values`, :func:`updates`, :func:`messages`, :func:`custom`,
  :func:`parts`, :func:`stream_mode`.
- Projections: :func:`text`, :func:`reasoning`, :func:`tool_calls`, :func:`accumulate`,
  :func:`partial_structured` (the structured answer as it forms).
- Filters: :func:`from_nodes`, :func:`in_namespace`, :func:`with_tags`, :func:`from_models`,
  :func:`from_agents`.
- Shaping: :func:`coalesce`, :func:`smooth`, :func:`throttle_latest`.
- Flow: :func:`backpressure`, :func:`first_token_timeout`, :func:`idle_timeout`,
  :func:`share`, :func:`replay`.
"""

from ._backpressure import Backpressure, BackpressureStatistics, BackpressureStrategy, backpressure
from ._modes import MODES, custom, messages, parts, stream_mode, updates, values
from ._partial import partial_output_parts, partial_structured
from ._projections import (
    accumulate,
    from_agents,
    from_models,
    from_nodes,
    in_namespace,
    reasoning,
    text,
    tool_calls,
    with_tags,
)
from ._shaping import coalesce, smooth, throttle_latest
from ._share import replay, share
from ._timeouts import first_token_timeout, idle_timeout

__all__ = [
    "MODES",
    "Backpressure",
    "BackpressureStatistics",
    "BackpressureStrategy",
    "accumulate",
    "backpressure",
    "coalesce",
    "custom",
    "first_token_timeout",
    "from_agents",
    "from_models",
    "from_nodes",
    "idle_timeout",
    "in_namespace",
    "messages",
    "partial_output_parts",
    "partial_structured",
    "parts",
    "reasoning",
    "replay",
    "share",
    "smooth",
    "stream_mode",
    "text",
    "throttle_latest",
    "tool_calls",
    "updates",
    "values",
    "with_tags",
]
