"""The hub's group membership against a layer that stalls mid-call (in-process).

A join sent to a Redis frozen with SIGSTOP times out on our side and is applied
by Redis once it resumes. If the user's streams end before a retry succeeds, the
hub must still leave that group: otherwise Redis keeps sending this process the
user's messages until ``group_expiry`` (a day). Found by an outside attack.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from sse_notify.protocol import user_group
from sse_notify.stream import StreamLife
from tests.support import override_constants, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


class StallingLayer:
    """The in-memory layer, except that while ``stalled`` a user-group join is applied
    and then answers with a timeout, as a join to a Redis frozen mid-call does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stalled = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def group_add(self, group: str, channel: str) -> None:
        await self.inner.group_add(group, channel)
        if self.stalled and group.startswith("sse_notify.user."):
            raise TimeoutError("Timeout reading from redis (stalled)")


async def test_a_join_that_timed_out_but_landed_is_left_when_the_streams_end(fresh_hub, user, monkeypatch):
    from asgiref.sync import sync_to_async

    layer = StallingLayer(get_channel_layer())
    monkeypatch.setattr("sse_notify.hub.get_layer", lambda: layer)
    key = await sync_to_async(session_cookie)(user)
    with override_constants({"sse_notify.publish.PUBLISH_TIMEOUT": 0.2}):
        life = StreamLife(user.pk, session_key=key, raw_cursor=None)
        body = life.body()
        assert b"event: ready" in await asyncio.wait_for(body.__anext__(), 5)
        group = user_group(user.pk)
        channel = fresh_hub.channel
        assert channel in layer.inner.groups.get(group, {}), "the stalled join reached the layer"
        await body.aclose()  # the user's last stream ends during the stall
        layer.stalled = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while channel in layer.inner.groups.get(group, {}):
            assert loop.time() < deadline, "the hub never left the group it may have joined"
            await asyncio.sleep(0.05)
    assert fresh_hub.streams_of(user.pk) == 0


def test_a_subscription_hands_its_items_over_oldest_first_in_bounded_takes():
    from sse_notify.hub import Hub, Subscription
    from sse_notify.protocol import Push

    sub = Subscription(Hub(), 1, None, 10)
    for i in range(12):
        sub.offer(Push(b"%d" % i))
    assert sub.behind, "past its size it catches up from the database instead"
    assert [p.frame for p in sub.take(4)] == [b"0", b"1", b"2", b"3"]  # type: ignore[union-attr]
    assert [p.frame for p in sub.take(100)] == [b"%d" % i for i in range(4, 10)]  # type: ignore[union-attr]
    assert sub.take(100) == []


class ForeverCleanupLayer:
    """The in-memory layer, except that a cancelled ``receive`` cleans up forever, and so
    does a group leave: channels_redis's pub/sub layer unsubscribes when its ``receive``
    is cancelled, and that can wait for a connection that never comes (channels_redis#319).
    A second cancel interrupts the clean-up, as it does there."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cleanups_started = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _clean_up_forever(self) -> None:
        self.cleanups_started += 1
        await asyncio.Event().wait()

    async def receive(self, channel: str) -> Any:
        try:
            return await self.inner.receive(channel)
        except asyncio.CancelledError:
            await self._clean_up_forever()
            raise

    async def group_discard(self, group: str, channel: str) -> None:
        await self.inner.group_discard(group, channel)
        await self._clean_up_forever()


async def test_a_hub_stops_even_when_the_layers_clean_up_never_ends(fresh_hub, user, monkeypatch):
    """A stopping process (and a test's teardown) hung on a pub/sub layer's clean-up."""
    from asgiref.sync import sync_to_async

    layer = ForeverCleanupLayer(get_channel_layer())
    monkeypatch.setattr("sse_notify.hub.get_layer", lambda: layer)
    key = await sync_to_async(session_cookie)(user)
    life = StreamLife(user.pk, session_key=key, raw_cursor=None)
    body = life.body()
    assert b"event: ready" in await asyncio.wait_for(body.__anext__(), 5)
    stopping = asyncio.ensure_future(fresh_hub.shutdown())
    done, _ = await asyncio.wait({stopping}, timeout=20)  # a hang, not a speed: it takes about 5 s
    assert stopping in done, "the hub waited forever for the layer's clean-up"
    stopping.result()
    assert layer.cleanups_started >= 2  # its receive loop and its leaves were cancelled
    await body.aclose()
