"""Browser fixtures: Debian's Chromium driven by Playwright, against a real server on loopback.

- ``chromium`` (module): headless Chromium at ``/usr/bin/chromium`` (``make services`` installs it;
  the tests skip, saying so, where it is missing).
- ``web`` (module): a live server on the tiny model (``tests/integration/http_server.py``), with keys
  for two tenants and an admin.
- ``browse`` (function): opens browser contexts (one per simulated person) that record every request
  their pages make; a request to any host but the server under test is aborted and fails the test.

Screenshots (``shoot``) at 1280x800 and at 375 px wide go to ``build/screenshots/`` (git-ignored), so a
test run leaves the working tree as it was; ``SCREENSHOTS_DIR=docs/screenshots make test`` refreshes the
ones the README shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.http_server import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / os.environ.get("SCREENSHOTS_DIR", "build/screenshots")
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 812}
TIMEOUT_MS = 30_000  # the first render loads the tiny pipeline; a shared 2-core machine is slow


def usd(text: str) -> str:
    """The pages' money format (common.js ``usd``): every significant digit, at least two decimals."""
    whole, _, frac = format(Decimal(text), "f").partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


@dataclass
class Web:
    """The server under test and keys of its people."""

    live: LiveServer
    keys: dict[str, str]  # "acme", "globex", "admin" -> secret

    @property
    def url(self) -> str:
        return self.live.url

    def client(self, who: str) -> httpx.Client:
        """An API client with ``who``'s key (the page's numbers are checked against it)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.keys[who]}"}, timeout=30
        )


@pytest.fixture(scope="module")  # not session: Playwright's sync API runs an event loop on this thread
def chromium() -> Iterator[Any]:  # while it lives, and asyncio.run() in later tests would refuse to start
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make services installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Web]:
    data = tmp_path_factory.mktemp("web-server")
    with live_server(data, tiny_model_dir, max_n=2) as live:
        keys = {"acme": live.new_key("acme"), "globex": live.new_key("globex"), "admin": live.admin_key}
        yield Web(live, keys)


@dataclass
class Recorded:
    """Every request URL the pages of one test made, and the ones that went elsewhere."""

    origin: str
    seen: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        return f"{parts.scheme}://{parts.netloc}" == self.origin


@pytest.fixture
def browse(chromium: Any) -> Iterator[Callable[[str], Any]]:
    """``browse(server_url)`` -> a new browser context (1280x800) whose requests are recorded."""
    contexts: list[Any] = []
    records: list[Recorded] = []

    def open_context(server_url: str, **options: Any) -> Any:
        record = Recorded(server_url.rstrip("/"))
        context = chromium.new_context(viewport=WIDE, **options)
        context.set_default_timeout(TIMEOUT_MS)

        def check(route: Any) -> None:
            url = route.request.url
            record.seen.append(url)
            if record.allowed(url):
                route.continue_()
            else:
                record.foreign.append(url)
                route.abort()

        context.route("**/*", check)
        contexts.append(context)
        records.append(record)
        return context

    yield open_context
    for context in contexts:
        context.close()
    foreign = [url for record in records for url in record.foreign]
    assert not foreign, f"pages requested hosts other than the server under test: {foreign}"


def shoot(page: Any, name: str) -> None:
    """Screenshots of the page as it is: 1280x800, then 375 px wide (full height), then back."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(100)  # let the layout settle at the new width
    page.screenshot(path=str(SCREENSHOTS / f"{name}-375.png"), full_page=True)
    page.set_viewport_size(WIDE)


def sign_in(context: Any, url: str, key: str) -> Any:
    """A page of ``context`` signed in with ``key`` through the sign-in form, on the playground."""
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_url("**/sign-in")
    page.fill("#api-key", key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url("**/playground")
    return page
