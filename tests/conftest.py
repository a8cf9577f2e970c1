"""Shared fixtures.

- ``user`` / ``make_user``: users; ``session_cookie(user)``: a real signed-in session key.
- ``daphne``: start real Daphne processes on 127.0.0.1 sharing the test database
  (needs ``@pytest.mark.django_db(transaction=True)``: data must be committed to be seen).
- ``fresh_hub``: for in-process async stream tests: resets the hub and in-memory layer.
- ``redis_url``: the Redis server on 127.0.0.1:6379 (skips when absent unless CI=true).

Tests that read streams in-process also need ``transaction=True``: streams query
from their own database threads, which cannot see a test's open transaction.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when a real component is missing on a developer machine; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_cookie(user: Any) -> str:
    """A session key that signs ``user`` in, as the login view would store it."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    assert store.session_key
    return store.session_key


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    def make(username: str | None = None, **extra: Any) -> Any:
        return django_user_model.objects.create_user(
            username=username or f"u{uuid.uuid4().hex[:8]}", password="pw", **extra
        )

    return make


@pytest.fixture
def user(make_user: Callable[..., Any]) -> Any:
    return make_user("alice")


class DaphneServer:
    """A Daphne subprocess serving ``tests.asgi`` on a real socket."""

    def __init__(self, env: dict[str, str], port: int, log: Path, application: str = "tests.asgi:application") -> None:
        self.env, self.port, self.log, self.application = env, port, log, application
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/notifications/stream/") -> str:
        return self.base + path

    def start(self) -> DaphneServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), self.application],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"daphne did not listen on {self.port}:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> DaphneServer:
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def subprocess_env(
    layers: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    constants: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment for a child process (Daphne, manage.py) on the test database.

    ``overrides`` are ``SSE_NOTIFY`` settings; ``constants`` internal constants by
    dotted path (``{"sse_notify.hub.QUEUE_SIZE": 2}``), applied by tests/apps.py.
    """
    from django.db import connection

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "postgresql":
        env["SSE_NOTIFY_TEST_DB"] = "postgres"
        env["SSE_NOTIFY_PG_NAME"] = name
    else:
        env["SSE_NOTIFY_TEST_SQLITE"] = name
    if layers is not None:
        env["SSE_NOTIFY_TEST_LAYERS"] = json.dumps(layers)
    if overrides:
        env["SSE_NOTIFY_TEST_OVERRIDES"] = json.dumps(overrides)
    if constants:
        env["SSE_NOTIFY_TEST_CONSTANTS"] = json.dumps(constants)
    return env


@pytest.fixture
def daphne(tmp_path: Path) -> Iterator[Callable[..., DaphneServer]]:
    """``daphne(layers=None, overrides=None, constants=None)`` starts a server; all stop at teardown."""
    servers: list[DaphneServer] = []

    def start(
        layers: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        port: int | None = None,
        constants: dict[str, Any] | None = None,
    ) -> DaphneServer:
        server = DaphneServer(
            subprocess_env(layers, overrides, constants), port or free_port(), tmp_path / f"daphne{len(servers)}.log"
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def run_manage(
    *args: str, layers: dict[str, Any] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``django-admin`` in a separate process against the test database."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=subprocess_env(layers),
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture
def redis_url() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            pass
    except OSError:
        need(False, "no Redis server on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def redis_layers(url: str, backend: str = "channels_redis.core.RedisChannelLayer", **config: Any) -> dict[str, Any]:
    """A CHANNEL_LAYERS dict with a unique prefix, so concurrent runs cannot meet."""
    prefix = f"sse_notify_test_{uuid.uuid4().hex[:8]}"
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [url], "prefix": prefix, **config}}}


@pytest.fixture
async def fresh_hub() -> Any:
    """Reset this loop's hub and the cached channel layers around an in-process test."""
    from channels.layers import channel_layers

    from sse_notify.hub import get_hub, reset_hub

    channel_layers.backends.clear()
    await reset_hub()
    yield get_hub()
    await reset_hub()
    channel_layers.backends.clear()


@pytest.fixture(scope="session", autouse=True)
def _close_stream_db_threads(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Close the stream database threads' connections before the test database is dropped."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from sse_notify import db

    db.shutdown()
    # Async tests' sync_to_async calls run on asgiref's single shared thread, whose
    # connection would otherwise keep PostgreSQL from dropping the test database.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _reset_sse_db_pool() -> Iterator[None]:
    yield
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return
    # On PostgreSQL, flushes between transactional tests need no idle sessions
    # holding old snapshots; closing the pool after each test keeps that simple.
    from sse_notify import db

    db.shutdown()
