"""Helpers shared by the test modules; fixtures live in conftest.py.

Test modules import helpers from here (or from ``tests.sse_client``, the SSE
client), never from each other, so a test module can move or be split freely.

- Real components: ``DaphneServer`` (and ``subprocess_env``/``run_manage`` for
  child processes on the test database), ``PrivateRedis``, ``redis_layers``,
  ``need`` (skip on a developer machine, fail in CI).
- In-process streams: ``AsgiStream``, ``http_scope``, ``open_stream``,
  ``sse_settings``, ``settle``.
- Clients that behave like a browser: ``Browser``, ``assert_complete``.
- Layers: ``join``/``receive_or_none`` (read a layer as a hub would),
  ``send_from_other_process``, ``forget_prefix``.
- Internal constants: ``override_constants``/``apply_constants``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.asgi import get_asgi_application
from django.test import Client, override_settings

from tests.apps import apply_constants, constant
from tests.sse_client import SSEParser, SSEStream

ROOT = Path(__file__).resolve().parent.parent


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when a real component is missing on a developer machine; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


#: The suite runs on PostgreSQL (``SSE_NOTIFY_TEST_DB=postgres``; CI runs it on both databases).
ON_POSTGRES = os.environ.get("SSE_NOTIFY_TEST_DB") == "postgres"


def postgres_only(test: Any) -> Any:
    """Mark a test that needs PostgreSQL: it runs in CI's PostgreSQL pass (.ci/run), and
    skips (with the ``postgres`` marker, so ``-m "not postgres"`` deselects it) on SQLite."""
    skip = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only (SSE_NOTIFY_TEST_DB=postgres)")
    return pytest.mark.postgres(skip(test))


def sqlite_only(test: Any) -> Any:
    """Mark a test of a SQLite-only path: it runs in CI's SQLite pass and skips on PostgreSQL."""
    return pytest.mark.skipif(ON_POSTGRES, reason="a SQLite-only path (the suite runs on PostgreSQL)")(test)


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
    django_settings: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment for a child process (Daphne, manage.py) on the test database.

    ``overrides`` are ``SSE_NOTIFY`` settings; ``constants`` internal constants by
    dotted path (``{"sse_notify.hub.QUEUE_SIZE": 2}``), applied by tests/apps.py;
    ``django_settings`` other Django settings of the child (``SECRET_KEY``...).
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
    if django_settings:
        env["SSE_NOTIFY_TEST_SETTINGS"] = json.dumps(django_settings)
    return env


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


def redis_layers(url: str, backend: str = "channels_redis.core.RedisChannelLayer", **config: Any) -> dict[str, Any]:
    """A CHANNEL_LAYERS dict with a unique prefix, so concurrent runs cannot meet."""
    prefix = f"sse_notify_test_{uuid.uuid4().hex[:8]}"
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [url], "prefix": prefix, **config}}}


BASE = {"POLL_INTERVAL": 0.2, "HEARTBEAT": 15.0}


def sse_settings(**overrides: Any) -> override_settings:
    return override_settings(SSE_NOTIFY={**BASE, **overrides})


def http_scope(
    path: str = "/notifications/stream/",
    *,
    cookie: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    method: str = "GET",
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> dict[str, Any]:
    all_headers = [(b"host", b"testserver"), *(headers or [])]
    if cookie:
        all_headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": all_headers,
        "client": client,
        "server": ("testserver", 80),
    }


class AsgiStream:
    """One stream request through Django's ASGI handler, read message by message."""

    def __init__(self, scope: dict[str, Any], body: bytes = b"") -> None:
        self.comm = ApplicationCommunicator(get_asgi_application(), scope)
        self.body = body
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.raw = b""
        self.ended = False
        self.parser = SSEParser()

    async def start(self, within: float = 5.0) -> AsgiStream:
        await self.comm.send_input({"type": "http.request", "body": self.body, "more_body": False})
        start = await self.comm.receive_output(within)
        assert start["type"] == "http.response.start", start
        self.status = start["status"]
        self.headers = dict(start["headers"])
        return self

    async def chunk(self, within: float = 5.0) -> bytes:
        """The next body message's bytes (raises ``TimeoutError`` if none in time)."""
        message = await self.comm.receive_output(within)
        assert message["type"] == "http.response.body", message
        data: bytes = message.get("body", b"")
        self.raw += data
        self.parser.feed(data.decode())
        if not message.get("more_body", False):
            self.ended = True
        return data

    async def read_until(self, predicate: Any, within: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(self):
            if self.ended:
                raise AssertionError(f"stream ended early; got {self.raw[-500:]!r}")
            await self.chunk(max(0.01, deadline - loop.time()))

    async def read_to_end(self, within: float = 5.0) -> bytes:
        while not self.ended:
            await self.chunk(within)
        return self.raw

    async def quiet_for(self, seconds: float) -> bool:
        """True if the app sends nothing for ``seconds`` (without cancelling it, as a
        ``receive_output`` timeout would)."""
        await asyncio.sleep(seconds)
        return self.comm.output_queue.empty()

    def events(self, kind: str | None = None) -> list[Any]:
        return [e for e in self.parser.events if kind is None or e.event == kind]

    def notifications(self) -> list[Any]:
        return self.events("notification")

    async def disconnect(self) -> None:
        await self.comm.send_input({"type": "http.disconnect"})
        with contextlib.suppress(asyncio.CancelledError):
            await self.comm.wait(timeout=5)


async def open_stream(user: Any, *, cursor: str | None = "0", **kw: Any) -> AsgiStream:
    cookie = await sync_to_async(session_cookie)(user)
    query = f"cursor={cursor}".encode() if cursor is not None else b""
    return await AsgiStream(http_scope(cookie=cookie, query=query, **kw)).start()


async def settle(hub: Any) -> None:
    """Let membership changes and cancellations finish."""
    for _ in range(20):
        await asyncio.sleep(0.01)
        if hub.membership_settled():
            break


async def join(layer: Any, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def receive_or_none(layer: Any, channel: str, timeout: float = 0.3) -> Any:
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        return None


BACKENDS = ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"]


#: Long enough that the database poll cannot deliver anything during a test.
LAYER_ONLY = {"POLL_INTERVAL": 30.0}


def forget_prefix(layers: dict[str, Any]) -> None:
    """Delete this test's keys (group sets live for group_expiry, 24 h by default)."""
    import redis

    config = layers["default"]["CONFIG"]
    host = config["hosts"][0]
    url = host["address"] if isinstance(host, dict) else host
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=config["prefix"] + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def send_from_other_process(layers: dict[str, Any], code: str) -> None:
    """Run ``code`` in ``django shell`` with ``User``, ``send_notification`` and ``Notification`` imported."""
    prelude = (
        "from django.contrib.auth.models import User\n"
        "from sse_notify.api import send_notification\n"
        "from sse_notify.models import Notification\n"
    )
    proc = await asyncio.to_thread(run_manage, "shell", "-c", prelude + code, layers=layers, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "publish to channel layer failed" not in proc.stderr, proc.stderr


class Browser:
    """Reconnects after any error or end of stream, sending ``Last-Event-ID`` = last id seen."""

    def __init__(self, base: str, cookie: str, name: str = "") -> None:
        self.base, self.cookie, self.name = base, cookie, name
        self.last_id: str | None = None
        self.got: list[tuple[int, str]] = []  # (seq, title) in arrival order, duplicates kept
        self.resets: list[Any] = []
        self.connects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Browser:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Only the cancellation is expected: a crash of the client loop (a bug in the
            # test or a malformed event) surfaces here instead of passing as a slow client.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            headers = {"Last-Event-ID": self.last_id} if self.last_id is not None else {}
            url = self.base + "/notifications/stream/" + ("" if self.last_id is not None else "?cursor=0")
            try:
                async with SSEStream(url, cookie=self.cookie, headers=headers) as s:
                    if s.status != 200:
                        await asyncio.sleep(0.1)
                        continue
                    self.connects += 1
                    while True:
                        event = await s.next_event(timeout=3600)
                        if event.event == "notification":
                            self.got.append((int(event.id), event.json()["title"]))
                            self.last_id = event.id
                        elif event.event == "reset":
                            self.resets.append(event.json())
                            self.last_id = event.id
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, StopAsyncIteration, OSError, TimeoutError):
                pass
            await asyncio.sleep(0.1)  # the browser's retry delay, shortened

    def unique(self) -> list[tuple[int, str]]:
        """Arrivals de-duplicated by seq (keeping the first), as a client would."""
        seen: set[int] = set()
        out = []
        for seq, title in self.got:
            if seq not in seen:
                seen.add(seq)
                out.append((seq, title))
        return out


async def wait_for(predicate: Any, within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def expected_for(user: Any) -> list[tuple[int, str]]:
    from sse_notify.models import Notification

    return list(Notification.objects.filter(recipient=user).order_by("seq").values_list("seq", "title"))


async def assert_complete(browsers: dict[Any, list[Browser]], within: float = 20.0) -> None:
    """Every browser ends with exactly its user's notifications, in order, once after de-dup."""
    expected = {user: await sync_to_async(expected_for)(user) for user in browsers}
    await wait_for(
        lambda: all(len(b.unique()) >= len(expected[u]) for u, bs in browsers.items() for b in bs),
        within,
        "every browser to catch up",
    )
    for user, bs in browsers.items():
        for b in bs:
            assert b.unique() == expected[user], b.name
            seqs = [seq for seq, _ in b.unique()]
            assert seqs == sorted(seqs) and seqs == list(range(1, len(seqs) + 1)), b.name
            assert b.resets == [], f"{b.name} was told to reload: {b.resets}"


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port (never the shared one)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


def csrf_client(user: Any) -> tuple[Client, str]:
    """A test client signed in as ``user`` that enforces CSRF like a browser, and the
    token the inbox page gave it (what the bundled JS sends as ``X-CSRFToken``)."""
    from django.urls import reverse

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(reverse("sse_notify:inbox"))
    assert page.status_code == 200
    return client, page.cookies["csrftoken"].value


def render(source: str, user: Any) -> str:
    """``source`` rendered after ``{% load sse_notify %}`` for a request by ``user``."""
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/somewhere/")
    request.user = user
    return Template("{% load sse_notify %}" + source).render(Context({"request": request}))


@contextlib.contextmanager
def override_constants(constants: Mapping[str, Any]) -> Iterator[None]:
    """Like ``override_settings``, for the internal constants of ``sse_notify`` modules."""
    saved = {path: getattr(*constant(path)) for path in constants}
    apply_constants(constants)
    try:
        yield
    finally:
        apply_constants(saved)


def titles(html: str) -> list[str]:
    """The inbox rows' titles, in page order (not a substring search: CSRF tokens are random text)."""
    return re.findall(r'class="sse-notify-inbox__title"[^>]*>(?:<span[^>]*>[^<]*</span>)?(?:<a [^>]*>)?([^<]*)<', html)
