"""Serving agents over HTTP, as LangGraph Server does, to ``langgraph-sdk`` and its kin::

    from rxagent.server import create_app
    app = create_app({"agent": agent})          # an ASGI app; or: rxagent serve file.py:agent

Needs the ``server`` extra (``pip install 'rxagent[server]'``: Starlette and uvicorn). The
protocol as implemented, and where it differs from the reference, is in ``docs/serving.md``.
"""

from ._app import create_app

__all__ = ["create_app"]
