"""Helpers the browser test modules share (test modules do not import each other).

``Demo``: the demo site under a real Daphne (the ``demo`` fixture in conftest.py starts it).

Signing in through the demo's one-click sign-in page, waiting for the client's
stream, unique titles, and reading a notification's read state in the demo's
database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support import ROOT, DaphneServer, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Demo(DaphneServer):
    """The demo site served by a Daphne subprocess; ``restart()`` keeps the port."""

    def __init__(self, workdir: Path) -> None:
        self.db = workdir / "demo.sqlite3"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.browser.settings",
            "DEMO_DB": str(self.db),
            "PYTHONPATH": str(ROOT),
        }
        super().__init__(env, free_port(), workdir / "daphne.log", application="demo_project.asgi:application")
        self.sender: subprocess.Popen[str] | None = None

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def send_command(self, username: str, title: str, *extra: str) -> None:
        """Send with ``manage.py sse_notify_send``, as a cron job would."""
        self.manage("sse_notify_send", "--user", username, "--title", title, *extra)

    def send(self, username: str, title: str, **fields: Any) -> None:
        """Send from another, long-lived process (``sender.py``), as a worker would."""
        if self.sender is None or self.sender.poll() is not None:
            self.sender = subprocess.Popen(
                [sys.executable, "-m", "tests.browser.sender"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.sender.stdin is not None and self.sender.stdout is not None
        self.sender.stdin.write(json.dumps({"user": username, "title": title, **fields}) + "\n")
        self.sender.stdin.flush()
        answer = self.sender.stdout.readline().strip()
        assert answer == "ok", answer or "the sender process died"

    def close_sender(self) -> None:
        if self.sender is not None:
            if self.sender.stdin is not None:
                self.sender.stdin.close()
            try:
                self.sender.wait(10)
            except subprocess.TimeoutExpired:
                self.sender.kill()
                self.sender.wait(5)
            if self.sender.stdout is not None:
                self.sender.stdout.close()
            self.sender = None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


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


def sign_in_with_password(context: Any, username: str, path: str = "/", wait_open: bool = True) -> Any:
    """Sign in through the sign-in page's username/password form (users made by ``create_users``)."""
    page = context.new_page()
    page.goto(f"/login/?next={path}")
    page.locator("details.manual summary").click()
    form = page.locator("details.manual form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill("demo")
    form.get_by_role("button", name="Sign in").click()
    if wait_open:
        page.wait_for_function(OPEN)
    return page


def create_users(demo: Demo, names: list[str]) -> None:
    """Demo users with the password ``demo`` and no notifications yet."""
    listed = ", ".join(repr(u) for u in names)
    demo.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model as g\n"
        f"[g().objects.create_user(n, password='demo') for n in [{listed}]]",
    )
