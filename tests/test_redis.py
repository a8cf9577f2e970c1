"""channels_redis on a real Daphne and Redis: what redis-py 8 does to it (read timeouts,
its connection pool). Delivery across processes is test_multiprocess_e2e.py; the
contract every layer keeps, in-process, is test_layers.py.

Daphne runs with ``POLL_INTERVAL`` at 30 s, so within these tests' timeouts
only the channel layer can deliver: an event that arrives proves the layer
path, not the database poll. Notifications are sent from a separate process
(``django shell``), as a cron job or worker would.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from tests.sse_client import SSEStream
from tests.support import BACKENDS, LAYER_ONLY, send_from_other_process, session_cookie

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_stream_survives_redis_read_timeouts(daphne, layers_for, make_user):
    """redis-py 8 cuts the core layer's 5 s blocking read with its 5 s default
    socket_timeout ("Timeout reading from ..."). Same failure, shortened: a
    0.5 s socket_timeout times out the hub's receive three times while the
    stream waits; the stream stays open and the next notification still
    arrives through the layer."""
    url = "redis://127.0.0.1:6379/0"
    layers = layers_for(BACKENDS[0])
    layers["default"]["CONFIG"]["hosts"] = [{"address": url, "socket_timeout": 0.5}]
    server = daphne(layers=layers, overrides=LAYER_ONLY)
    alice = await sync_to_async(make_user)("alice")
    cookie = await sync_to_async(session_cookie)(alice)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as s:
        assert (await s.next_event()).event == "ready"
        # Three read timeouts go by. (A plain sleep: SSEStream.silence() cancels the
        # pending read when it times out, which closes httpx's body iterator.)
        await asyncio.sleep(1.6)
        await send_from_other_process(layers, "send_notification(User.objects.get(username='alice'), 'after timeouts')")
        event = await s.next_event(timeout=10)
        assert event.json()["title"] == "after timeouts"
        await asyncio.sleep(1.1)
        await send_from_other_process(layers, "send_notification(User.objects.get(username='alice'), 'still live')")
        assert (await s.next_event(timeout=10)).json()["title"] == "still live"
    log = server.output()
    assert "receive timed out" in log  # the timeouts really happened...
    assert "receive failed" not in log  # ...and were not treated as a layer outage


async def test_many_users_connecting_at_once_all_join_their_groups(daphne, layers_for, django_user_model):
    """150 users connect at once: their group joins must not exceed redis-py 8's
    default pool of 100 connections (which raises "Too many connections"), or
    those users would get nothing live. Each then gets a personal notification
    sent to their own group."""
    layers = layers_for(BACKENDS[0])
    server = daphne(layers=layers, overrides=LAYER_ONLY)
    count = 150

    def setup() -> list[str]:
        users = django_user_model.objects.bulk_create([django_user_model(username=f"storm{i}") for i in range(count)])
        return [session_cookie(u) for u in users]

    cookies = await sync_to_async(setup)()
    streams = [SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=c) for c in cookies]
    try:
        await asyncio.gather(*(s.__aenter__() for s in streams))
        readies = await asyncio.gather(*(s.next_event(timeout=20) for s in streams))
        assert {e.event for e in readies} == {"ready"}
        await send_from_other_process(
            layers,
            f"for i in range({count}):\n    send_notification(User.objects.get(username=f'storm{{i}}'), f'hi {{i}}')\n",
        )
        events = await asyncio.gather(*(s.next_event(timeout=10) for s in streams))
        assert [e.json()["title"] for e in events] == [f"hi {i}" for i in range(count)]
    finally:
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
    assert "Too many connections" not in server.output()
