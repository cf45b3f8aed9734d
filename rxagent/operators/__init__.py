"""Operators on a run's stream of parts: the stream modes, and shaping what they carry.

Every operator returns a function from Observable to Observable, so they compose with
``pipe`` next to reactivex's own::

    import reactivex.operators as ops
    from rxagent import operators as rxo

    agent.observe(inputs).pipe(
        rxo.messages(),
        ops.map(lambda pair: pair[0].text),
        ops.filter(bool),
    ).subscribe(print)
"""

from ._modes import MODES, custom, messages, parts, stream_mode, updates, values

__all__ = ["MODES", "custom", "messages", "parts", "stream_mode", "updates", "values"]
