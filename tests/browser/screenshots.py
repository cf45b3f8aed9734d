"""Takes the screenshots of the chat page in ``docs/screenshots/`` (run by hand, not a test):

    .venv/bin/python -m tests.browser.screenshots docs/screenshots
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

from ..server.processes import rxagent_serve
from .conftest import AGENTS, CHROMIUM, CHROMIUM_ARGS, GRAPHS


def _ask(page: Page, url: str, agent: str, question: str, ended: str) -> None:
    page.goto(f"{url}/#agent={agent}")
    page.wait_for_selector("#agent:not([disabled])")
    page.get_by_role("button", name="New thread").click()
    page.get_by_label("Message").fill(question)
    page.get_by_label("Message").press("Enter")
    page.wait_for_selector(ended, timeout=30_000)
    page.wait_for_timeout(300)  # the last frame painted


def _save(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    # A palette of 64 colours keeps a page of flat colours sharp and the file small.
    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)
    print(path, path.stat().st_size, "bytes")


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, rxagent_serve(
        [f"{AGENTS}:{name}" for name in GRAPHS], cwd=Path(scratch),
        log=Path(scratch) / "serve.log", env={"RXAGENT_PAGE_PAUSE": "0.01"},
    ) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        desktop = browser.new_page(viewport={"width": 1000, "height": 720})
        _ask(desktop, url, "team", "Is it sunny?", ".run[data-status]")
        _ask(desktop, url, "demo", "What is the weather in SF?", ".run[data-status]")
        _save(desktop, folder / "page-desktop.png")
        _ask(desktop, url, "mail", "Lunch at noon?", "form.review")
        _save(desktop, folder / "page-review.png")
        phone = browser.new_page(viewport={"width": 390, "height": 760}, is_mobile=True)
        _ask(phone, url, "demo", "What is the weather in SF?", ".run[data-status]")
        _save(phone, folder / "page-phone.png")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
