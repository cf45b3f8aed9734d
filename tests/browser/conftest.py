"""The chat page in Debian's Chromium, driven by Playwright (nothing downloaded at test time),
against ``rxagent serve`` in a subprocess serving the agents of ``agents.py``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from ..server.processes import rxagent_serve
from ..server.proxy import CuttingProxy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AGENTS = Path(__file__).parent / "agents.py"
GRAPHS = ["demo", "counter", "flood", "mail", "mail_each", "booking", "team", "broken",
          "thinker"]
PAUSE = "0.03"  # seconds between the slow agents' tokens: several animation frames apart


@pytest.fixture(scope="session")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rxagent serve`` with the test agents, on a free loopback port."""
    folder = tmp_path_factory.mktemp("serve")
    targets = [f"{AGENTS}:{name}" for name in GRAPHS]
    with rxagent_serve(targets, cwd=folder, log=folder / "serve.log",
                       env={"RXAGENT_PAGE_PAUSE": PAUSE}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, and the async tests of other modules need the thread free.
    if not CHROMIUM.exists():  # CI installs it (.ci/run): a missing browser fails, never skips
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page at desktop width; an error in its scripts fails the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # The browser's own reports of failed loads are left out: the tests cut connections.
    opened.on("console", lambda message: errors.append(message.text)
              if message.type == "error" and not message.text.startswith("Failed to load")
              else None)
    yield opened
    context.close()
    assert errors == []


class ProxyThread:
    """A :class:`CuttingProxy` in front of the server, its event loop in a thread of its own
    (Playwright's sync API holds the test's thread)."""

    def __init__(self, upstream: str, limit: int) -> None:
        self.proxy = CuttingProxy(int(upstream.rsplit(":", 1)[1]), limit, streams_only=True)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopped: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        async with self.proxy.running():
            self.ready.set()
            await self.stopped.wait()

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        self.ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.stopped is not None
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)
