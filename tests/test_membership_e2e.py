"""After a Redis stall or outage, live delivery and sign-out come back for every user
(issue 9, item 4), against a private redis-server and real Daphne.

Daphne polls the database hourly and re-checks sessions hourly here, so a
notification or a sign-out that arrives came through the channel layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.test import override_settings

from sse_notify.api import send_notification
from tests.sse_client import SSEStream
from tests.support import redis_layers, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LAYER_ONLY = {"POLL_INTERVAL": 3600.0}
NO_SESSION_POLL = {"sse_notify.hub.SESSION_CHECK_INTERVAL": 3600.0}


@contextlib.contextmanager
def sending_through(layers: dict[str, Any]) -> Iterator[None]:
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends.clear()
        try:
            yield
        finally:
            channel_layers.backends.clear()


async def wait_until(predicate: Any, within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await asyncio.to_thread(predicate):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def sign_out(server: Any, cookie: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(server.url("/test-logout/"), headers={"Cookie": f"sessionid={cookie}"})


async def test_core_layer_stalled_while_users_connect(daphne, private_redis, make_user):
    layers = redis_layers(private_redis.url)
    # Reads cut at 3 s (the README's advice is above the layer's 5 s blocking read; a
    # short one makes a stall of 8 s outlast it, as a 16 s stall outlasts 10 s).
    layers["default"]["CONFIG"]["hosts"] = [{"address": private_redis.url, "socket_timeout": 3}]
    prefix = layers["default"]["CONFIG"]["prefix"]
    server = daphne(layers=layers, overrides=LAYER_ONLY, constants=NO_SESSION_POLL)
    users = [await sync_to_async(make_user)() for _ in range(5)]
    cookies = [await sync_to_async(session_cookie)(u) for u in users]
    client = redis.Redis.from_url(private_redis.url)

    def groups_held() -> bool:
        keys = [f"{prefix}:group:sse_notify.user.{u.pk}" for u in users] + [f"{prefix}:group:sse_notify.broadcast"]
        return all(client.zcard(k) > 0 for k in keys)

    assert private_redis.proc is not None
    first = await sync_to_async(make_user)()
    streams = [
        SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=await sync_to_async(session_cookie)(first))
    ]
    await streams[0].__aenter__()
    assert (await streams[0].next_event(timeout=15)).event == "ready"  # the hub started, Redis fine
    private_redis.proc.send_signal(signal.SIGSTOP)  # frozen while the others connect
    streams = [SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=c) for c in cookies] + streams
    try:
        await asyncio.gather(*(s.__aenter__() for s in streams[:-1]))
        for s in streams[:-1]:
            assert (await s.next_event(timeout=15)).event == "ready"
        await asyncio.sleep(8.0)  # joins fail (time out) meanwhile: they must be retried
        private_redis.proc.send_signal(signal.SIGCONT)

        await wait_until(groups_held, 20, "every user's group (and the broadcast group) in Redis")
        with sending_through(layers):
            for u in users:
                await sync_to_async(send_notification)(u, f"for {u.pk}")
        for u, s in zip(users, streams[:-1], strict=True):
            event = await s.next_event(timeout=10)
            assert event.json()["title"] == f"for {u.pk}", "live delivery came back through the layer"

        with sending_through(layers):
            await sign_out(server, cookies[0])
        with pytest.raises(StopAsyncIteration):
            await streams[0].next_event(timeout=10)  # the layer carried the sign-out
    finally:
        with contextlib.suppress(Exception):
            private_redis.proc.send_signal(signal.SIGCONT)
        for s in streams:
            await s.close()
        client.close()
    assert "channel layer group" in server.output(), "the stall went unnoticed: the test tested nothing"


async def test_pubsub_layer_down_when_the_hub_starts(daphne, private_redis, make_user):
    layers = redis_layers(private_redis.url, backend="channels_redis.pubsub.RedisPubSubChannelLayer")
    private_redis.kill()  # down before the first stream starts the hub
    server = daphne(layers=layers, overrides=LAYER_ONLY, constants=NO_SESSION_POLL)
    alice = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(alice)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as s:
        assert (await s.next_event(timeout=15)).event == "ready"
        private_redis.start()  # back, on the same port, empty
        got: list[str] = []
        sent: list[str] = []
        for attempt in range(15):
            sent.append(f"try {attempt}")
            with sending_through(layers):
                await sync_to_async(send_notification)(alice, sent[-1])
            got += [e.json()["title"] for e in await s.silence(1.5, kind="notification")]
            if got:
                break
        assert got, "the hub never started receiving once Redis was back"
        if len(got) < len(sent):
            got += [e.json()["title"] for e in await s.events(len(sent) - len(got), timeout=10, kind="notification")]
        assert got == sent, "what was sent before it was back arrives too, in order, once"

        with sending_through(layers):
            await sign_out(server, cookie)
        with pytest.raises(StopAsyncIteration):
            await s.next_event(timeout=10)
