"""Two Daphne processes joined by nothing but Redis; a third process sends.

``POLL_INTERVAL`` is 30 s on both servers and each wait below is at most 5 s,
so every event that arrives came through the channel layer, i.e. within the
layer's latency (milliseconds), not the database poll's. No timed assertion.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.sse_client import SSEStream
from tests.support import BACKENDS, LAYER_ONLY, need, run_manage, send_from_other_process, session_cookie

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def open_streams(urls_cookies: list[tuple[str, str]]) -> list[SSEStream]:
    streams = [SSEStream(url, cookie=cookie) for url, cookie in urls_cookies]
    await asyncio.gather(*(s.__aenter__() for s in streams))
    for s in streams:
        assert (await s.next_event()).event == "ready"
    return streams


async def titles(stream: SSEStream, count: int) -> list[str]:
    return [e.json()["title"] for e in await stream.events(count, kind="notification", timeout=5)]


@pytest.mark.parametrize("backend", BACKENDS, ids=["core", "pubsub"])
async def test_two_processes_share_redis(daphne, layers_for, django_user_model, backend):
    layers: dict[str, Any] = layers_for(backend)
    one = daphne(layers=layers, overrides=LAYER_ONLY)
    two = daphne(layers=layers, overrides=LAYER_ONLY)

    def setup() -> list[str]:
        users = django_user_model.objects.bulk_create([django_user_model(username=f"p{i}") for i in range(20)])
        return [session_cookie(u) for u in users]

    cookies = await sync_to_async(setup)()
    url = "/notifications/stream/?cursor=0"
    # p0 on both servers, p1 on one, p2 on two; p3..p19 have no stream.
    a_one, a_two, b_one, c_two = streams = await open_streams(
        [(one.url(url), cookies[0]), (two.url(url), cookies[0]), (one.url(url), cookies[1]), (two.url(url), cookies[2])]
    )
    try:
        # A send to a few users goes through their user groups (the management command).
        proc = await asyncio.to_thread(
            run_manage,
            "sse_notify_send",
            "--user",
            "p0",
            "--user",
            "p1",
            "--user",
            "p2",
            "--title",
            "few",
            layers=layers,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "publish to channel layer failed" not in proc.stderr, proc.stderr
        for s in streams:
            assert await titles(s, 1) == ["few"]
        # A send to more than GROUP_SEND_THRESHOLD (16) users goes once to the broadcast group.
        await send_from_other_process(layers, "send_notification(User.objects.all(), 'everyone')")
        for s in streams:
            assert await titles(s, 1) == ["everyone"]
        # Personal content to many users travels as one batched message and is not mixed up.
        await send_from_other_process(
            layers,
            "Notification.objects.bulk_create([Notification(recipient=u, title='for ' + u.username) "
            "for u in User.objects.order_by('pk')])",
        )
        assert await titles(a_one, 1) == ["for p0"]
        assert await titles(a_two, 1) == ["for p0"]
        assert await titles(b_one, 1) == ["for p1"]
        assert await titles(c_two, 1) == ["for p2"]
        # Exactly once each, in seq order, on both processes.
        for s in streams:
            ids = [e.id for e in s.parser.events if e.event == "notification"]
            assert ids == ["1", "2", "3"]
        # Mark-as-read in another process reaches the user's open streams in both processes.
        await send_from_other_process(layers, "Notification.objects.filter(recipient__username='p0').mark_read()")
        for s in (a_one, a_two):
            read = await s.next_event(timeout=5)
            assert read.event == "read" and (read.json()["read"], read.json()["unread"]) == (True, 0)
    finally:
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


async def test_open_streams_hold_no_os_thread(daphne, django_user_model):
    """Django keeps a one-thread executor per request for its life; the stream
    releases it once streaming, so 40 open streams add no 40 threads."""
    need(sys.platform == "linux", "counts threads in /proc (Linux)")
    server = daphne()
    assert server.proc is not None

    def setup() -> list[str]:
        users = django_user_model.objects.bulk_create([django_user_model(username=f"t{i}") for i in range(41)])
        return [session_cookie(u) for u in users]

    cookies = await sync_to_async(setup)()
    url = server.url("/notifications/stream/?cursor=0")
    warm = await open_streams([(url, cookies[0])])  # database threads and hub started
    try:
        before = threads_of(server.proc.pid)
        streams = await open_streams([(url, c) for c in cookies[1:]])
        try:
            await asyncio.sleep(0.2)  # released executors' threads exit
            assert threads_of(server.proc.pid) - before < 5
            # ...and the streams still deliver.
            await send_from_other_process(
                {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
                "send_notification(User.objects.filter(username='t7'), 'still here')",
            )
            assert await titles(streams[6], 1) == ["still here"]
        finally:
            await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
    finally:
        await asyncio.gather(*(s.close() for s in warm), return_exceptions=True)
