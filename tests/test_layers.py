"""The delivery contract, run against every channel layer the app supports.

One suite, three layers (in-memory, channels_redis core, channels_redis pub/sub;
the Redis ones on the real server with a unique prefix), as Django runs one
session test mixin per backend. The stream's database poll is set to 30 s, so
within these tests' waits only the layer can deliver: an event that arrives
proves the layer path. Streams run in-process through Django's ASGI handler;
sends, read-state changes and sign-out go through the public API and Django's
own ``logout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.test import Client, override_settings

from sse_notify import send_notification
from sse_notify.hub import get_hub, reset_hub
from sse_notify.models import Notification
from tests.support import AsgiStream, forget_prefix, http_scope, redis_layers, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LAYERS = [
    pytest.param(None, id="memory"),
    pytest.param("channels_redis.core.RedisChannelLayer", id="redis-core", marks=pytest.mark.redis),
    pytest.param("channels_redis.pubsub.RedisPubSubChannelLayer", id="redis-pubsub", marks=pytest.mark.redis),
]
#: Seconds a live event may take through the layer (the poll would take 30 s).
LIVE = 5.0


@pytest.fixture(params=LAYERS)
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """This process's hub on the layer under test, with the database poll out of reach."""
    backend = request.param
    layers = IN_MEMORY if backend is None else redis_layers(request.getfixturevalue("redis_url"), backend=backend)
    with override_settings(CHANNEL_LAYERS=layers, SSE_NOTIFY={"POLL_INTERVAL": 30.0, "HEARTBEAT": 15.0}):
        channel_layers.backends.clear()
        await reset_hub()
        try:
            yield get_hub()
        finally:
            await reset_hub()
            channel_layers.backends.clear()
            if backend is not None:
                forget_prefix(layers)


async def connect(user: Any, cookie: str | None = None) -> AsgiStream:
    """An open stream of ``user`` from the present, its ``ready`` event read."""
    cookie = cookie or await sync_to_async(session_cookie)(user)
    s = await AsgiStream(http_scope(cookie=cookie)).start()
    assert s.status == 200
    await s.read_until(lambda st: bool(st.events("ready")))
    return s


def titles(s: AsgiStream) -> list[str]:
    return [e.json()["title"] for e in s.notifications()]


async def test_a_send_reaches_the_open_stream_live(hub: Any, make_user: Any) -> None:
    alice = await sync_to_async(make_user)("alice")
    s = await connect(alice)
    await sync_to_async(send_notification)(alice, "hello", body="through the layer")
    await s.read_until(lambda st: len(st.notifications()) == 1, within=LIVE)
    event = s.notifications()[0]
    assert (event.id, event.json()["title"], event.json()["unread"]) == ("1", "hello", 1)
    await s.disconnect()


@pytest.mark.parametrize("count", [3, 20], ids=["per-user-groups", "broadcast"])
async def test_a_send_to_several_users_reaches_each_with_only_their_own(hub: Any, make_user: Any, count: int) -> None:
    """3 recipients travel as per-user messages, 20 (above the threshold of 16) as one broadcast."""
    users = [await sync_to_async(make_user)() for _ in range(count)]
    outsider = await sync_to_async(make_user)("outsider")
    streams = [await connect(u) for u in users]
    lone = await connect(outsider)
    rows = await sync_to_async(send_notification)(users, "to several")
    ids = {row.recipient_id: row.pk for row in rows}
    for user, s in zip(users, streams, strict=True):
        await s.read_until(lambda st: len(st.notifications()) == 1, within=LIVE)
        assert s.notifications()[0].json()["id"] == ids[user.pk]
    assert await lone.quiet_for(0.3) and lone.notifications() == []
    for s in [*streams, lone]:
        await s.disconnect()


async def test_read_state_reaches_every_stream_of_that_user_only(hub: Any, make_user: Any) -> None:
    alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
    tab1, tab2, bobs = await connect(alice), await connect(alice), await connect(bob)
    await sync_to_async(send_notification)([alice, bob], "read me")
    for s in (tab1, tab2, bobs):
        await s.read_until(lambda st: len(st.notifications()) == 1, within=LIVE)
    await sync_to_async(lambda: Notification.objects.filter(recipient=alice).mark_read())()
    for s in (tab1, tab2):
        await s.read_until(lambda st: bool(st.events("read")), within=LIVE)
        data = s.events("read")[0].json()
        assert (data["read"], data["unread"]) == (True, 0)
    assert await bobs.quiet_for(0.3) and bobs.events("read") == []
    for s in (tab1, tab2, bobs):
        await s.disconnect()


async def test_signing_out_ends_that_sessions_streams_only(hub: Any, make_user: Any) -> None:
    alice = await sync_to_async(make_user)("alice")
    laptop, phone = await sync_to_async(session_cookie)(alice), await sync_to_async(session_cookie)(alice)
    on_laptop, on_phone = await connect(alice, laptop), await connect(alice, phone)

    def log_out(session_key: str) -> None:
        client = Client()
        client.cookies["sessionid"] = session_key
        client.logout()  # Django's logout(): fires user_logged_out for this session

    await sync_to_async(log_out)(laptop)
    await on_laptop.read_to_end(within=LIVE)
    assert on_laptop.ended
    await sync_to_async(send_notification)(alice, "after sign-out")
    await on_phone.read_until(lambda st: titles(st) == ["after sign-out"], within=LIVE)
    assert titles(on_laptop) == []
    await on_phone.disconnect()


async def test_a_user_keeps_receiving_while_any_of_their_streams_is_open(hub: Any, make_user: Any) -> None:
    """Group membership follows the streams: leaving one tab keeps the group, leaving all then coming back rejoins."""
    alice = await sync_to_async(make_user)("alice")
    first, second = await connect(alice), await connect(alice)
    await first.disconnect()
    await sync_to_async(send_notification)(alice, "one tab left")
    await second.read_until(lambda st: titles(st) == ["one tab left"], within=LIVE)
    await second.disconnect()
    again = await connect(alice)
    await sync_to_async(send_notification)(alice, "back again")
    await again.read_until(lambda st: titles(st) == ["back again"], within=LIVE)
    await again.disconnect()
