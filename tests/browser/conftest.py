"""Fixtures for the real-browser tests: the demo under a real Daphne, and Chromium.

The demo runs with ``tests.browser.settings`` on its own SQLite file (not the
pytest-django test database), set up by ``manage.py demo --no-serve`` exactly as
a new user would. Notifications are sent from other processes: ``manage.py
sse_notify_send`` or a long-lived sender (``sender.py``, faster); the database
is checked with plain ``sqlite3``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, DaphneServer, free_port, need

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
