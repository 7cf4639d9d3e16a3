"""Fixtures for the browser tests: a real `falsework serve` and a real Chromium.

The server runs as a subprocess on a free loopback port with a fresh data dir and the
templates under ``tests/acceptance/web/templates/`` (plus a per-session folder tests may write to).
Chromium is Debian's (``scripts/ensure-chromium.sh``), driven by Playwright's sync API.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from support import servers
from support.paths import REPO
from support.servers import Server

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
# The README's screenshots are rewritten only when asked (`make screenshots`); a plain
# test run still takes every screenshot (a page that cannot render fails) into a
# scratch folder, so `make test` leaves the working tree clean.
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("FALSEWORK_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "falsework-screenshots"
)
FALSEWORK = Path(sys.executable).parent / "falsework"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Playwright's default is 30 s; a task step in these templates takes at most a few seconds.
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


# The page's tests: heartbeats and drains short (the API's timings are its own).
WEB_ENV = {"FALSEWORK_HEARTBEAT_INTERVAL": "0.5", "FALSEWORK_SHUTDOWN_GRACE": "2"}


def start_server(
    workdir: Path, *, config: dict[str, Any] | None = None, templates: Path = TEMPLATES
) -> Server:
    """`falsework serve` (support.servers) with ``templates`` (tests/acceptance/web/templates
    by default) and the folder ``workdir/templates`` tests may write to."""
    extra = workdir / "templates"
    extra.mkdir(parents=True, exist_ok=True)
    server = servers.start_server(
        None,
        workdir,
        config=config,
        templates=f"{templates}:{extra}",
        base_env=WEB_ENV,
        concurrency=None,
        log_level=None,
    )
    server.extra_templates = extra
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session, local mode (no tokens, loopback). Its tasks may
    call the tests' endpoints on loopback because its egress policy says so."""
    srv = start_server(
        tmp_path_factory.mktemp("web-server"), config={"egress": {"allow": ["127.0.0.1"]}}
    )
    yield srv
    srv.stop()


TOKEN = "web-test-token-alice"


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that requires a bearer token."""
    config = {
        "auth": {
            "tokens": [
                {
                    "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                    "user": "user:default/alice",
                    "admin": False,
                }
            ]
        }
    }
    srv = start_server(tmp_path_factory.mktemp("web-auth-server"), config=config)
    srv.token = TOKEN
    yield srv
    srv.stop()


# Per module, not per session: Playwright's sync API keeps an event loop running on
# this thread while it is open, and every asyncio test that the same process runs
# after it (the integration and unit tiers, or another xdist worker's files) would
# find a running loop and fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@dataclass
class PageErrors:
    """JavaScript errors the page raised; a test fails when there are any."""

    messages: list[str] = field(default_factory=list)


def new_context(browser: Browser, **kwargs: Any) -> BrowserContext:
    context = browser.new_context(viewport=kwargs.pop("viewport", DESKTOP), **kwargs)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def watch(page: Page, errors: PageErrors) -> Page:
    """Collect the page's uncaught exceptions and the errors its code logs. Chromium's own
    "Failed to load resource" lines (a 400 or 401 the page handles, a dropped stream) are
    responses the tests provoke on purpose, not errors of the page."""

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.messages.append(msg.text)

    page.on("pageerror", lambda exc: errors.messages.append(str(exc)))
    page.on("console", on_console)
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh desktop-width page; the test fails if the page logged or raised an error."""
    context = new_context(browser)
    errors = PageErrors()
    pg = watch(context.new_page(), errors)
    yield pg
    context.close()
    assert errors.messages == [], f"JavaScript errors on the page: {errors.messages}"


def signed_in(browser: Browser, token: str) -> Iterator[Page]:
    """A fresh page whose tab holds ``token`` (as the token prompt would keep it); the
    test fails if the page logged or raised an error."""
    errors = PageErrors()
    context = new_context(browser)
    context.add_init_script(f"sessionStorage.setItem('falsework.token', '{token}')")
    yield watch(context.new_page(), errors)
    context.close()
    assert errors.messages == [], errors.messages


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot as NAME.png (into docs/screenshots/ with FALSEWORK_SCREENSHOTS=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled"
    )


def assert_labelled(page: Page) -> None:
    """Every visible form control has a label (or an aria-label)."""
    unlabelled = page.locator("main input, main select, main textarea").evaluate_all(
        """els => els.filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)"""
    )
    assert unlabelled == [], unlabelled
