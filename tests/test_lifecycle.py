"""The stream's lifecycle as an object, driven without a server or Django's handler:
states, typed hub items, budgets and sign-out, and nothing kept once sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from sse_notify.api import send_notification
from sse_notify.events import HEARTBEAT
from sse_notify.protocol import End, Push
from sse_notify.publish import session_hash
from sse_notify.stream import State, StreamLife
from tests.sse_client import parse
from tests.support import override_constants, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BASE = {"POLL_INTERVAL": 60, "HEARTBEAT": 15.0}


async def next_chunk(body: Any, within: float = 5.0) -> bytes:
    chunk: bytes = await asyncio.wait_for(body.__anext__(), within)
    while chunk == b"":  # the empty part that lets Django drop a large chunk
        chunk = await asyncio.wait_for(body.__anext__(), within)
    return chunk


async def test_states_from_connect_to_sign_out(fresh_hub, user):
    hub = fresh_hub
    await sync_to_async(send_notification)(user, "before")
    key = await sync_to_async(session_cookie)(user)
    life = StreamLife(user.pk, session_key=key, raw_cursor="0")
    assert life.state is State.CONNECTING
    body = life.body()
    first = parse(await next_chunk(body))
    assert [e.event for e in first] == ["ready", "notification"]
    assert life.state is State.LIVE and life.cursor == 1 and hub.count == 1

    # A seq-less item passes without moving the cursor; another session's sign-out is ignored.
    life.sub.offer(Push(b"event: read\ndata: {}\n\n"))
    assert await next_chunk(body) == b"event: read\ndata: {}\n\n"
    assert life.cursor == 1
    life.sub.offer(End("another session"))
    await sync_to_async(send_notification)(user, "live")
    assert [e.json()["title"] for e in parse(await next_chunk(body))] == ["live"]

    life.sub.offer(End(session_hash(key)))
    with pytest.raises(StopAsyncIteration):
        await next_chunk(body)
    assert life.end_reason == "signed_out"
    assert life.state is State.ENDED and hub.count == 0 and hub.users == {}


async def test_heartbeat_then_lifetime_end(fresh_hub, user):
    with override_settings(SSE_NOTIFY={**BASE, "HEARTBEAT": 0.05, "MAX_STREAM_LIFETIME": 0.3}):
        life = StreamLife(user.pk, raw_cursor=None)
        body = life.body()
        await next_chunk(body)
        assert await next_chunk(body) == HEARTBEAT
        with pytest.raises(StopAsyncIteration):
            while True:
                await next_chunk(body)
        assert life.end_reason == "lifetime" and life.state is State.ENDED


async def test_byte_budget_ends_after_replay_and_the_rest_comes_on_reconnect(fresh_hub, user):
    for i in range(30):
        await sync_to_async(send_notification)(user, f"n{i}", body="x" * 200)
    with override_constants({"sse_notify.stream.MAX_STREAM_BYTES": 2000}):
        seen: list[int] = []
        cursor = "0"
        for _ in range(30):
            life = StreamLife(user.pk, raw_cursor=cursor)
            body = life.body()
            events = parse(await next_chunk(body))
            seen += [int(e.id) for e in events if e.event == "notification"]
            if life.state is State.LIVE:
                await body.aclose()
                break
            with pytest.raises(StopAsyncIteration):
                await next_chunk(body)
            assert life.end_reason in ("replay_budget", "bytes")
            cursor = str(seen[-1])
        assert seen == list(range(1, 31)), "each notification once, in order, across reconnects"
    assert fresh_hub.count == 0


async def test_settings_changes_reset_the_pool_size_and_idle_hubs(fresh_hub, settings):
    """``setting_changed`` drops what was built from the old values, no reaching into internals."""
    from sse_notify import db
    from sse_notify.hub import get_hub

    await db.run(lambda: None)
    assert db.pool_size() == 4
    settings.SSE_NOTIFY = {"DB_THREADS": 2}
    assert db.pool_size() is None  # the next query builds a pool of 2
    await db.run(lambda: None)
    assert db.pool_size() == 2

    await fresh_hub._ensure_started()
    assert get_hub() is fresh_hub
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert get_hub() is not fresh_hub, "an idle hub on the old layer was kept"


async def test_a_busy_stream_moves_no_timer_per_item_and_still_beats_after_its_last_write(fresh_hub, user):
    """Items wake the stream through its subscription: no timer is created per item
    (the one timer, set before the writes, moves once it finds them), and the
    heartbeat still comes once the stream is quiet."""
    with override_settings(SSE_NOTIFY={**BASE, "HEARTBEAT": 0.3}):
        life = StreamLife(user.pk, raw_cursor=None)
        body = life.body()
        await next_chunk(body)
        loop = asyncio.get_running_loop()
        timers: list[float] = []
        real = loop.call_at

        def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(callback, "__self__", None) is life:
                timers.append(when)
            return real(when, callback, *args, **kwargs)

        loop.call_at = counting  # type: ignore[method-assign]
        try:
            for i in range(40):
                frame = b'event: read\ndata: {"i":%d}\n\n' % i
                life.sub.offer(Push(frame))
                assert await next_chunk(body) == frame
                await asyncio.sleep(0.01)
            assert await next_chunk(body) == HEARTBEAT
        finally:
            del loop.call_at
        assert len(timers) <= 3, f"{len(timers)} timers for 40 items"
        await body.aclose()
    assert fresh_hub.count == 0


class CountingProbe:
    """A connection whose client has not read ``unread`` bytes; counts the probes."""

    def __init__(self) -> None:
        self.unread = 0
        self.calls = 0

    def pending(self) -> int:
        self.calls += 1
        return self.unread

    def holds_bytes(self) -> bool:
        return False

    def closed(self) -> bool:
        return False


async def test_the_connection_is_probed_only_when_it_could_be_write_bytes_behind(fresh_hub, user):
    """What the probe last found plus what was written since bounds what the connection
    holds: below WRITE_BYTES no syscall is made; past it, a client that reads nothing
    stops the stream's writes (the rest comes from the database later)."""
    probe = CountingProbe()
    with override_constants({"sse_notify.stream.WRITE_BYTES": 4000, "sse_notify.stream.BACKPRESSURE_WAIT": 0.05}):
        life = StreamLife(user.pk, raw_cursor=None, probe=probe)  # type: ignore[arg-type]
        body = life.body()
        await next_chunk(body)
        frame = b'event: read\ndata: {"x":"' + b"x" * 980 + b'"}\n\n'
        for _ in range(3):
            life.sub.offer(Push(frame))
            await next_chunk(body)
        assert probe.calls == 0, "probed while the stream could not be WRITE_BYTES behind"
        life.sub.offer(Push(frame))
        await next_chunk(body)  # now past 4000 bytes written since the last probe
        probe.unread = 10_000  # the client reads nothing
        life.sub.offer(Push(frame))
        with pytest.raises(TimeoutError):
            await next_chunk(body, within=0.5)  # nothing is written while it is that far behind
        assert probe.calls >= 1
        assert life.state is State.ENDED  # (the wait above cancelled it)
        probe.unread = 0  # it read everything
        calls = probe.calls
        life2 = StreamLife(user.pk, raw_cursor=None, probe=probe)  # type: ignore[arg-type]
        body2 = life2.body()
        await next_chunk(body2)
        life2.sub.offer(Push(frame))
        assert await next_chunk(body2) == frame
        assert probe.calls == calls
        await body2.aclose()
    assert fresh_hub.count == 0
