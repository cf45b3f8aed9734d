"""The chat page at ``/``: static files shipped in the package (``_page/``), no build step and
nothing from a CDN. The page talks to the server's own LangGraph routes, as any client does.

The files are read once per process and sent with an ETag, so a browser revalidates instead of
keeping a stale page after an upgrade. A strict Content-Security-Policy keeps the page to its
own origin: nothing is loaded from elsewhere, and the page's own fetches go nowhere else.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["page_routes"]

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "sse.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


@cache
def _file(name: str) -> tuple[bytes, str]:
    """The bytes of a page file and their ETag."""
    body = (resources.files(__package__ or "rxagent.server") / "_page" / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _send(request: Request, name: str) -> Response:
    body, etag = _file(name)
    headers = {**_HEADERS, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type=_TYPES[name])


async def _index(request: Request) -> Response:
    return _send(request, "index.html")


async def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _TYPES or name == "index.html":
        return Response(b'{"detail":"no such file"}', 404, media_type="application/json")
    return _send(request, name)


def page_routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``GET /_page/{name}`` (its scripts and styles)."""
    return [Route("/", _index, methods=["GET"]), Route("/_page/{name}", _asset, methods=["GET"])]
