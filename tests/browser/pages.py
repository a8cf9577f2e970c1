"""Helpers the browser test modules share (test modules do not import each other).

Signing in through the demo's one-click sign-in page, waiting for the client's
stream, unique titles, and reading a notification's read state in the demo's
database.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.browser.conftest import Demo

#: A page's client has its stream open (or listens to the tab that has).
OPEN = "() => window.sseNotify && window.sseNotify.connection === 'open'"


def sign_in(context: Any, username: str, path: str = "/") -> Any:
    """Sign in with the sign-in page's one-click button; land on ``path``."""
    page = context.new_page()
    page.goto(f"/login/?next={path}")
    page.click(f"[data-login={username}]")
    page.wait_for_url(lambda url: url.split("://", 1)[1].split("/", 1)[1] == path.lstrip("/"))
    return page


def unread_in_db(demo: Demo, title: str) -> list[tuple[Any, ...]]:
    """``read_at`` of every row with this title (None while unread)."""
    return demo.query("SELECT read_at FROM sse_notify_notification WHERE title = ?", title)


def wait_until(check: Any, timeout: float = 5.0) -> Any:
    """Poll ``check`` (for state outside the page, e.g. the database) until truthy or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def unique(title: str) -> str:
    return f"{title} {uuid.uuid4().hex[:6]}"
