"""The chat page's files as the server sends them: from the package, with an ETag and a policy
that keeps the page on its own origin, and nothing in them fetched from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest
from starlette.testclient import TestClient

from rxagent import create_agent
from rxagent.server import create_app
from rxagent.testing import FunctionChatModel

FILES = {"app.js": "text/javascript", "sse.js": "text/javascript", "style.css": "text/css"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    agent = create_agent(FunctionChatModel(lambda messages, tools: "hi"), [])
    with TestClient(create_app({"agent": agent})) as running:
        yield running


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    for name in FILES:
        assert f'"_page/{name}"' in response.text  # relative: the app may be mounted anywhere


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_is_served_and_revalidated_by_its_etag(client: TestClient, name: str) -> None:
    response = client.get(f"/_page/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FILES[name])
    assert response.headers["cache-control"] == "no-cache"
    shipped = (resources.files("rxagent.server") / "_page" / name).read_bytes()
    assert response.content == shipped
    again = client.get(f"/_page/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", ["/_page/index.html", "/_page/nope.js", "/_page/..%2Fapp.js"])
def test_other_paths_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_nothing_is_fetched_from_another_origin() -> None:
    folder = resources.files("rxagent.server") / "_page"
    for name in ["index.html", *FILES]:
        text = (folder / name).read_text()
        assert re.findall(r"(?:https?:)?//[\w.-]+\.\w+/", text) == [], name
        if name.endswith(".css"):
            assert "@import" not in text and "url(" not in text, name
        if name.endswith(".js"):  # modules import their neighbours only
            assert all(source.startswith("./")
                       for source in re.findall(r'^import .* from "([^"]+)";', text, re.M)), name


def test_the_api_is_unchanged_beside_the_page(client: TestClient) -> None:
    assert client.get("/ok").json() == {"ok": True}
    assert client.post("/").status_code == 405  # the page is GET only
    assert client.get("/threads/missing").status_code == 404
