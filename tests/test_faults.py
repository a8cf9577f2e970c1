"""Faults survived, against real components: Daphne killed, Redis stopped, layer messages
dropped, the database gone for a moment, bursts. Every test counts what each client got:
every notification meant for it, once after de-duplication by seq, in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from sse_notify.api import send_notification
from sse_notify.models import Notification
from tests.sse_client import SSEStream
from tests.support import (
    ROOT,
    Browser,
    assert_complete,
    expected_for,
    postgres_only,
    redis_layers,
    session_cookie,
    subprocess_env,
    wait_for,
)

#: Layer operations in the Daphne processes give up after 0.5 s (see ``publish.PUBLISH_TIMEOUT``).
LAYER_TIMEOUT_HALF_SECOND = {"sse_notify.publish.PUBLISH_TIMEOUT": 0.5}

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


# -- a client that behaves like a browser's EventSource -------------------------------------------


# -- Daphne killed ----------------------------------------------------------------------------------


async def test_daphne_sigkilled_and_restarted_while_sending(daphne, make_user):
    server = daphne(overrides={"POLL_INTERVAL": 0.2, "RETRY_MS": 100})
    users = [await sync_to_async(make_user)(f"k{i}") for i in range(3)]
    browsers: dict[Any, list[Browser]] = {}
    for i, user in enumerate(users):
        cookie = await sync_to_async(session_cookie)(user)
        tabs = 2 if i == 0 else 1  # the first user has two tabs open
        browsers[user] = [Browser(server.base, cookie, f"{user.username}#{t}").start() for t in range(tabs)]
    await wait_for(lambda: all(b.connects for bs in browsers.values() for b in bs), 10, "first connects")

    stop = asyncio.Event()

    async def sender() -> None:
        i = 0
        while not stop.is_set():
            targets = [users[i % 3]] if i % 4 else users  # every 4th goes to all three
            await sync_to_async(send_notification)(targets, f"n{i}")
            i += 1
            await asyncio.sleep(0.02)

    def every_tab_connected(times: int) -> Callable[[], bool]:
        return lambda: all(b.connects >= times for bs in browsers.values() for b in bs)

    sending = asyncio.ensure_future(sender())
    try:
        for kill in range(2):
            # Each kill cuts a live stream of every tab: wait (on the event, not a clock) until
            # every tab is connected to the server that is running now, as under load it may lag.
            await wait_for(every_tab_connected(kill + 1), 20, f"every tab connected before kill {kill + 1}")
            await asyncio.sleep(0.5)  # sends arrive live
            server.kill()
            await asyncio.sleep(0.3)  # sends keep committing while no server runs
            server.start()
        await wait_for(every_tab_connected(3), 20, "every tab reconnected after the second kill")
        await asyncio.sleep(0.5)
        stop.set()
        await sending
        await assert_complete(browsers)
    finally:
        stop.set()
        await sending  # the sender ends after its current send (its errors surface here)
        for bs in browsers.values():
            for b in bs:
                await b.stop()


# -- Redis stopped ----------------------------------------------------------------------------------


SENDER = """
import json, sys, time
from django.contrib.auth.models import User
from sse_notify.api import send_notification
from sse_notify.models import Notification
user = User.objects.get(username=sys.argv[1])
report = []
for title in sys.argv[2:]:
    started = time.monotonic()
    error = None
    try:
        send_notification(user, title)
    except Exception as exc:
        error = repr(exc)
    report.append({"title": title, "seconds": time.monotonic() - started, "error": error})
    time.sleep(0.05)
report.append({"committed": list(Notification.objects.filter(recipient=user, title__in=sys.argv[2:])
                                 .values_list("title", flat=True))})
print("REPORT " + json.dumps(report))
"""


async def send_from_process(layers: dict[str, Any], username: str, titles: list[str], publish_timeout: float) -> Any:
    """Send from a separate process (a worker, a cron job) using ``layers``; return its report."""
    env = subprocess_env(layers, constants={"sse_notify.publish.PUBLISH_TIMEOUT": publish_timeout})
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "import django; django.setup(); exec(open(0).read())", username, *titles],
        input=SENDER,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :]), proc.stderr


@pytest.mark.redis
@pytest.mark.parametrize(
    "backend",
    ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"],
    ids=["core", "pubsub"],
)
async def test_redis_stopped_while_sending_then_back(daphne, private_redis, make_user, backend):
    """Daphne ``a`` polls the database every 0.2 s; ``b`` effectively never (1 h), so ``b``
    can only learn of a notification through the channel layer (or the nudge its hub
    gives every stream when it rejoins the layer)."""
    layers = redis_layers(private_redis.url, backend=backend)
    a = daphne(layers=layers, overrides={"POLL_INTERVAL": 0.2}, constants=LAYER_TIMEOUT_HALF_SECOND)
    b = daphne(layers=layers, overrides={"POLL_INTERVAL": 3600.0}, constants=LAYER_TIMEOUT_HALF_SECOND)
    alice = await sync_to_async(make_user)("alice")
    cookie = await sync_to_async(session_cookie)(alice)
    timeout = 0.5
    async with (
        SSEStream(a.url("/notifications/stream/?cursor=0"), cookie=cookie) as sa,
        SSEStream(b.url("/notifications/stream/?cursor=0"), cookie=cookie) as sb,
    ):
        assert (await sa.next_event()).event == "ready" and (await sb.next_event()).event == "ready"

        # 1. Redis up: the fast path reaches b.
        await send_from_process(layers, "alice", ["up"], timeout)
        assert (await sb.next_event(timeout=10)).json()["title"] == "up"
        assert (await sa.next_event(timeout=10)).json()["title"] == "up"

        # 2. Redis frozen (SIGSTOP), then killed: senders commit and never see an error;
        #    a publish to a hung Redis is cut off by PUBLISH_TIMEOUT.
        assert private_redis.proc is not None
        private_redis.proc.send_signal(signal.SIGSTOP)
        report, stderr = await send_from_process(layers, "alice", ["frozen1", "frozen2"], timeout)
        private_redis.kill()
        report2, stderr2 = await send_from_process(layers, "alice", ["down1", "down2", "down3"], timeout)
        for rep in (report, report2):
            sends, committed = rep[:-1], rep[-1]["committed"]
            assert all(s["error"] is None for s in sends), sends
            assert sorted(committed) == sorted(s["title"] for s in sends)
            assert max(s["seconds"] for s in sends) < timeout + 3.0, sends
        assert "publish to channel layer failed" in stderr + stderr2  # logged, not raised
        outage = ["frozen1", "frozen2", "down1", "down2", "down3"]
        got = [e.json()["title"] for e in await sa.events(5, timeout=15, kind="notification")]
        assert got == outage, "the database poll kept a's stream delivering"

        # 3. Redis back on the same port, empty. b polls hourly, so anything new it gets now
        #    came through the layer: the fast path resumed without restarting Daphne. (The
        #    core layer's hub sees the outage, rejoins and nudges its streams; the pub/sub
        #    layer resubscribes by itself and the first live message reveals the gap.)
        private_redis.start()
        sent_after: list[str] = []
        got_b: list[str] = []
        for attempt in range(10):
            sent_after.append(f"after{attempt}")
            await send_from_process(layers, "alice", sent_after[-1:], timeout)
            got_b += [e.json()["title"] for e in await sb.silence(2.0, kind="notification")]
            if any(t.startswith("after") for t in got_b):
                break
        assert any(t.startswith("after") for t in got_b), f"b never heard from the layer again: {got_b}"
        want = outage + sent_after
        if len(got_b) < len(want):
            got_b += [
                e.json()["title"] for e in await sb.events(len(want) - len(got_b), timeout=10, kind="notification")
            ]
        assert got_b == want, "b caught up on the outage, in order, once"
        got_a = [e.json()["title"] for e in await sa.events(len(sent_after), timeout=10, kind="notification")]
        assert got_a == sent_after
        assert await sb.silence(0.3, kind="notification") == [], "no duplicates"
        if backend.endswith("core.RedisChannelLayer"):
            assert "channel layer is back" in b.output()
    assert b.proc is not None and b.proc.poll() is None


# -- a layer message dropped -------------------------------------------------------------------------


@pytest.mark.redis
async def test_layer_at_capacity_one_loses_nothing(daphne, redis_url, make_user):
    """RedisChannelLayer with capacity=1: concurrent senders overfill the hub's channel and
    the layer drops messages. Gaps in seq send the stream to the database; the poll
    (POLL_INTERVAL) covers a lost tail."""
    from channels.layers import channel_layers
    from django.test import override_settings

    layers = redis_layers(redis_url, capacity=1)
    server = daphne(layers=layers, overrides={"POLL_INTERVAL": 0.5})
    alice = await sync_to_async(make_user)("alice")
    cookie = await sync_to_async(session_cookie)(alice)
    threads, per_thread = 6, 15
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as s:
        await s.next_event()
        with override_settings(CHANNEL_LAYERS=layers):
            channel_layers.backends.clear()
            try:
                # Each send is its own transaction and its own layer message, all at once.
                await asyncio.gather(
                    *(
                        asyncio.to_thread(
                            lambda t=t: [send_notification(alice, f"t{t} n{i}") for i in range(per_thread)]
                        )
                        for t in range(threads)
                    )
                )
            finally:
                channel_layers.backends.clear()
        total = threads * per_thread
        got = await s.events(total, timeout=20, kind="notification")
        assert [int(e.id) for e in got] == list(range(1, total + 1))
        expected = await sync_to_async(expected_for)(alice)
        assert [(int(e.id), e.json()["title"]) for e in got] == expected
        assert await s.silence(0.6, kind="notification") == []


# -- the database unavailable -------------------------------------------------------------------------


def _admin_sql(*statements: str) -> None:
    import psycopg

    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"], port=params["PORT"], user=params["USER"], dbname="postgres", autocommit=True
    ) as admin:
        for sql in statements:
            admin.execute(sql)


def _backend_pid() -> int | None:
    """This thread's PostgreSQL backend pid, read without a query (no async-safety issue)."""
    raw = connections["default"].connection
    return raw.info.backend_pid if raw is not None else None


@pytest.fixture
def reopen_db() -> Iterator[None]:
    """After the outage: drop this thread's terminated connections before pytest-django flushes."""
    yield
    for conn in connections.all(initialized_only=True):
        conn.close()


@postgres_only  # stops the database's connections with pg_terminate_backend
async def test_database_unavailable_for_a_moment(daphne, make_user, reopen_db):
    name = connection.settings_dict["NAME"]
    server = daphne(overrides={"POLL_INTERVAL": 0.2, "RETRY_MS": 100})
    users = [await sync_to_async(make_user)(f"d{i}") for i in range(2)]
    browsers = {}
    for user in users:
        cookie = await sync_to_async(session_cookie)(user)
        browsers[user] = [Browser(server.base, cookie, user.username).start()]
    await wait_for(lambda: all(b.connects for bs in browsers.values() for b in bs), 10, "first connects")
    for i in range(3):
        await sync_to_async(send_notification)(users, f"before {i}")
    await wait_for(lambda: all(len(b.unique()) == 3 for bs in browsers.values() for b in bs), 10, "before")

    # Daphne's connections go and no new ones are allowed (superusers ignore CONNECTION LIMIT,
    # not ALLOW_CONNECTIONS). This test process keeps its own: pytest-django needs them.
    mine = {pid for pid in [_backend_pid(), await sync_to_async(_backend_pid)()] if pid}
    keep = ", ".join(str(pid) for pid in mine) or "0"
    outage = [
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        f"AND pid <> pg_backend_pid() AND pid NOT IN ({keep})",
    ]
    try:
        await asyncio.to_thread(_admin_sql, *outage)
        # A page opened during the outage: its connects fail (no session lookup) until the end.
        cookie = await sync_to_async(session_cookie)(users[0])
        browsers[users[0]].append(Browser(server.base, cookie, "opened during the outage").start())
        await asyncio.sleep(1.5)  # several polls, catch-ups and connects fail meanwhile
    finally:
        await asyncio.to_thread(_admin_sql, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    for i in range(3):
        await sync_to_async(send_notification)(users, f"after {i}")
    try:
        await assert_complete(browsers)
    finally:
        for bs in browsers.values():
            for b in bs:
                await b.stop()
    log = server.output()
    assert server.proc is not None and server.proc.poll() is None
    assert "failed" in log, "the outage went unnoticed: the test did not test anything"
    assert log.count("Traceback") <= 2, log[-3000:]


# -- bursts -------------------------------------------------------------------------------------------


async def read_ids(reader: asyncio.StreamReader, count: int, within: float) -> list[int]:
    """Read a raw chunked SSE response; return the ``id:`` of each notification event."""
    ids: list[int] = []
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(ids) < count:
        chunk = await asyncio.wait_for(reader.read(1 << 16), max(0.01, deadline - loop.time()))
        if not chunk:
            break
        buffer += chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if b"\nevent: notification\n" in event:
                line = event[event.index(b"id: ") + 4 :]
                ids.append(int(line[: line.index(b"\n")]))
    return ids


async def open_raw(port: int, cookie: str, path: str = "/notifications/stream/?cursor=0") -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # HTTP/1.0: no chunked framing in the body, so events can be split on blank lines.
    writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: sessionid={cookie}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    return reader, writer


async def test_burst_of_10000_to_one_user(daphne, make_user):
    server = daphne(overrides={"POLL_INTERVAL": 0.2})
    alice = await sync_to_async(make_user)("alice")
    cookie = await sync_to_async(session_cookie)(alice)
    reader, writer = await open_raw(server.port, cookie)
    try:

        @sync_to_async
        def send_all() -> None:
            for batch in range(10):
                with transaction.atomic():
                    Notification.objects.bulk_create(
                        [Notification(recipient=alice, title=f"b{batch * 1000 + i}") for i in range(1000)]
                    )

        sending = asyncio.ensure_future(send_all())
        ids = await read_ids(reader, 10_000, within=60)
        await sending
        assert len(ids) == 10_000
        assert ids == list(range(1, 10_001)), "each exactly once, in order"
        # Nothing more comes after the count (no duplicates trailing).
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_ids(reader, 1, within=5), 0.5)
    finally:
        writer.close()


async def test_one_notification_to_each_of_1000_users(daphne):
    server = daphne(overrides={"POLL_INTERVAL": 0.2, "DB_THREADS": 4})
    User = get_user_model()
    tag = uuid.uuid4().hex[:6]

    @sync_to_async
    def make_users() -> list[tuple[Any, str]]:
        User.objects.bulk_create([User(username=f"m{tag}{i}") for i in range(1000)])
        users = list(User.objects.filter(username__startswith=f"m{tag}").order_by("pk"))
        return [(u, session_cookie(u)) for u in users]

    pairs = await make_users()
    streams: list[Any] = []
    try:
        for start in range(0, 1000, 100):  # connect in waves so Daphne's accept queue never overflows
            streams += await asyncio.gather(
                *(open_raw(server.port, cookie) for _, cookie in pairs[start : start + 100])
            )
        # Every stream is registered (its ready event arrived) before the send.
        await asyncio.gather(*(r.readuntil(b"event: ready") for r, _ in streams))
        await sync_to_async(send_notification)([u for u, _ in pairs], "to everyone")
        results = await asyncio.gather(*(read_ids(r, 1, within=60) for r, _ in streams))
        assert [ids for ids in results] == [[1]] * 1000
        more = await asyncio.gather(
            *(asyncio.wait_for(read_ids(r, 1, within=1), 1.2) for r, _ in streams[:50]), return_exceptions=True
        )
        assert all(isinstance(x, (TimeoutError, asyncio.TimeoutError)) for x in more), "a duplicate arrived"
    finally:
        for _, w in streams:
            w.close()
