"""Shared fixtures (shared helpers are in tests/support.py).

- ``user`` / ``make_user``: users (``support.session_cookie(user)``: a real signed-in session key).
- ``daphne``: start real Daphne processes on 127.0.0.1 sharing the test database
  (needs ``@pytest.mark.django_db(transaction=True)``: data must be committed to be seen).
- ``fresh_hub``: for in-process async stream tests: resets the hub and in-memory layer.
- ``redis_url``: the Redis server on 127.0.0.1:6379 (skips when absent unless CI=true).
- ``layers_for(backend)``: CHANNEL_LAYERS on that Redis with a unique prefix, cleaned up after.
- ``private_redis``: a redis-server of the test's own, for fault tests.

Tests that read streams in-process also need ``transaction=True``: streams query
from their own database threads, which cannot see a test's open transaction.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support import (  # noqa: F401 (names other branches still import from here)
    IN_CI,
    ROOT,
    DaphneServer,
    PrivateRedis,
    forget_prefix,
    free_port,
    need,
    redis_layers,
    run_manage,
    session_cookie,
    subprocess_env,
)


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


@pytest.fixture
def daphne(tmp_path: Path) -> Iterator[Callable[..., DaphneServer]]:
    """``daphne(layers=None, overrides=None, constants=None, django_settings=None)`` starts a
    server; all stop at teardown."""
    servers: list[DaphneServer] = []

    def start(
        layers: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        port: int | None = None,
        constants: dict[str, Any] | None = None,
        django_settings: dict[str, Any] | None = None,
    ) -> DaphneServer:
        server = DaphneServer(
            subprocess_env(layers, overrides, constants, django_settings),
            port or free_port(),
            tmp_path / f"daphne{len(servers)}.log",
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            pass
    except OSError:
        need(False, "no Redis server on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


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


@pytest.fixture
def layers_for(redis_url: str):
    made: list[dict[str, Any]] = []

    def make(backend: str, **config: Any) -> dict[str, Any]:
        layers = redis_layers(redis_url, backend=backend, **config)
        made.append(layers)
        return layers

    yield make
    for layers in made:
        forget_prefix(layers)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    import shutil

    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = PrivateRedis().start()
    yield server
    server.kill()


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    """A real SMTP server on a free loopback port (tests/smtp_sink.py); stopped at teardown."""
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink(free_port()).start()
    yield sink
    sink.stop()
