"""Fixtures for the real-browser tests: the demo under a real Daphne, and Chromium.

The demo runs with ``tests.browser.settings`` on its own SQLite file (not the
pytest-django test database), set up by ``manage.py demo --no-serve`` exactly as
a new user would. Notifications are sent from other processes: ``manage.py
sse_notify_send`` or a long-lived sender (``sender.py``, faster); the database
is checked with plain ``sqlite3``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, Demo
from tests.support import need


# Module scope, not session: the sync API keeps an asyncio loop running in this
# thread while it is open, which would break every async test collected later.
@pytest.fixture(scope="module")
def playwright_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        need(False, "playwright is not installed")
    need(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(playwright_browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    server = Demo(tmp_path_factory.mktemp("demo"))
    server.manage("demo", "--no-serve")  # migrate + demo users, as the README says
    server.start()
    yield server
    server.close_sender()
    server.stop()


@pytest.fixture
def new_context(playwright_browser: Any, demo: Demo) -> Iterator[Any]:
    """``new_context(**options)``: a fresh browser profile (cookies, locks, channels)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1100, "height": 640})
        context = playwright_browser.new_context(base_url=demo.base, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
