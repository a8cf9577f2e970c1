"""The stream at the ASGI level, in-process: bytes, disconnect, timers, overflow.

The stream is driven through ``django.core.asgi.get_asgi_application()`` with
``channels.testing.ApplicationCommunicator``, the same messages Daphne would send.
``AsgiStream`` and friends are in tests/support.py.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from sse_notify import publish
from sse_notify.api import send_notification
from sse_notify.events import encode_common
from sse_notify.models import Notification
from sse_notify.protocol import user_group
from tests.support import AsgiStream, http_scope, open_stream, override_constants, session_cookie, settle, sse_settings

pytestmark = pytest.mark.django_db(transaction=True)


def other_tasks(baseline: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t not in baseline and t is not current and not t.done()}


async def test_first_frames_are_byte_exact(fresh_hub, user):
    with sse_settings(RETRY_MS=2500):
        await sync_to_async(send_notification)(user, "waiting", body="a\nb")
        s = await open_stream(user, cursor="0")
        assert s.status == 200
        assert s.headers[b"Content-Type"] == b"text/event-stream; charset=utf-8"
        assert s.headers[b"Cache-Control"] == b"no-cache, no-store"
        assert s.headers[b"X-Accel-Buffering"] == b"no"
        assert b"Connection" not in s.headers
        first = await s.chunk()
        n = await Notification.objects.aget(recipient=user)
        common = encode_common(n.common_fields())
        assert first == (
            b'event: ready\nretry: 2500\ndata: {"cursor":0,"unread":1}\n\n'
            + b'id: 1\nevent: notification\ndata: {"id":%d,"seq":1,"unread":1,%s}\n\n' % (n.pk, common.encode())
        )
        assert b'"body":"a\\nb"' in first  # the newline is escaped JSON, never a new SSE line
        await s.disconnect()


async def test_disconnect_cancels_the_generator_and_leaves_the_hub(fresh_hub, user):
    hub = fresh_hub
    await hub._ensure_started()
    baseline = set(asyncio.all_tasks())
    s = await open_stream(user)
    await s.chunk()  # ready
    assert hub.count == 1 and set(hub.users) == {user.pk}
    assert hub.channel in hub.layer.groups[user_group(user.pk)], "the hub joined the user's group"
    assert other_tasks(baseline), "the stream runs in tasks of its own while open"
    await s.disconnect()
    await settle(hub)
    assert hub.count == 0
    assert hub.users == {}
    assert dict(hub.per_ip) == {}
    assert other_tasks(baseline) == set(), "a task outlived the stream"
    # And the hub left the user's group: the layer no longer routes the user's sends to this process.
    assert hub.channel not in hub.layer.groups.get(user_group(user.pk), {})


async def test_many_connect_disconnect_cycles_leave_nothing_behind(fresh_hub, make_user):
    hub = fresh_hub
    await hub._ensure_started()
    baseline = set(asyncio.all_tasks())
    users = [await sync_to_async(make_user)() for _ in range(3)]
    for i in range(60):
        s = await open_stream(users[i % 3])
        await s.chunk()
        await s.disconnect()
    await settle(hub)
    gc.collect()
    assert (hub.count, hub.users, dict(hub.per_ip)) == (0, {}, {})
    assert other_tasks(baseline) == set()


async def test_heartbeat_comment_after_heartbeat_interval(fresh_hub, user):
    with sse_settings(HEARTBEAT=0.05):
        s = await open_stream(user)
        await s.chunk()
        assert await s.chunk() == b": ping\n\n"
        assert await s.chunk() == b": ping\n\n"
        assert s.parser.comments == ["ping", "ping"]
        await s.disconnect()


async def test_max_stream_lifetime_ends_the_stream(fresh_hub, user):
    hub = fresh_hub
    with sse_settings(MAX_STREAM_LIFETIME=0.2, HEARTBEAT=0.05):
        s = await open_stream(user)
        await s.read_to_end(within=3)
        assert s.ended and s.events("ready")
        await s.comm.wait(timeout=5)
    await settle(hub)
    assert hub.count == 0 and hub.users == {}


async def test_max_stream_bytes_ends_the_stream_and_the_client_resumes(fresh_hub, user):
    with override_constants({"sse_notify.stream.MAX_STREAM_BYTES": 2000}):
        s = await open_stream(user)
        await s.chunk()
        sent = 0
        while not s.ended and sent < 40:
            sent += 1
            await sync_to_async(send_notification)(user, f"n{sent}", body="x" * 200)
            await s.read_until(lambda st, n=sent: st.ended or len(st.notifications()) >= n, within=3)
        assert s.ended, "the byte budget did not end the stream"
        assert len(s.raw) < 2000 + 600, "the stream ended soon after its byte budget"
        # Nothing is lost: the client resumes from the last id it saw and gets the rest.
        for i in range(3):
            await sync_to_async(send_notification)(user, f"later {i}")
        last = s.parser.last_event_id
        s2 = await open_stream(user, cursor=None, headers=[(b"last-event-id", last.encode())])
        await s2.read_until(lambda st: len(st.notifications()) >= sent + 3 - int(last))
        seqs = [int(e.id) for e in s.notifications() + s2.notifications()]
        assert seqs == list(range(1, sent + 4))
        await s2.disconnect()


async def test_queue_overflow_loses_nothing(fresh_hub, user):
    """A queue of 2 and 50 messages handed to the hub at once: the stream catches up from the DB."""
    hub = fresh_hub
    with sse_settings(POLL_INTERVAL=60), override_constants({"sse_notify.hub.QUEUE_SIZE": 2}):
        s = await open_stream(user)
        await s.chunk()

        @sync_to_async
        def send_many() -> list[Notification]:
            from django.db import transaction

            with transaction.atomic():
                return [n for i in range(50) for n in send_notification(user, f"burst {i}")]

        rows = await send_many()
        await settle(hub)
        # Dispatch directly and synchronously as the hub's receive loop would, so the
        # queue overflows for certain (the layer's own deliveries are duplicates).
        for message in publish.deliver_messages(rows):
            hub.dispatch(message)
        await s.read_until(lambda st: len(st.notifications()) >= 50, within=5)
        assert [int(e.id) for e in s.notifications()] == list(range(1, 51))
        assert [e.json()["title"] for e in s.notifications()] == [f"burst {i}" for i in range(50)]
        assert await s.quiet_for(0.4), "a duplicate followed"
        await s.disconnect()


def burst(user: Any, count: int) -> list[Notification]:
    """``count`` notifications to ``user`` in one transaction: one layer message."""
    return Notification.objects.bulk_create(
        [Notification(recipient=user, title=f"burst {i}", data={"i": i}) for i in range(count)]
    )


async def test_a_burst_to_one_user_is_written_at_once_not_read_back_from_the_database(fresh_hub, user, monkeypatch):
    """600 notifications in one send exceed the queue's 256 slots; they travel as one
    queue item, so the stream writes them without a catch-up query."""
    from sse_notify import stream

    reads: list[int] = []
    real = stream.catch_up
    monkeypatch.setattr(stream, "catch_up", lambda uid, cursor: reads.append(cursor) or real(uid, cursor))
    with sse_settings(POLL_INTERVAL=60):
        s = await open_stream(user)
        await s.chunk()
        await sync_to_async(burst)(user, 600)
        await s.read_until(lambda st: len(st.notifications()) >= 600, within=10)
        assert [int(e.id) for e in s.notifications()] == list(range(1, 601))
        assert reads == [], "the burst was read back from the database"
        assert fresh_hub.users[user.pk].copy().pop().queued_bytes == 0
        await s.disconnect()


async def test_a_burst_over_the_queued_bytes_bound_comes_from_the_database(fresh_hub, user):
    """A slow stream pins at most QUEUE_BYTES of batched frames; the rest is read later."""
    with sse_settings(POLL_INTERVAL=60), override_constants({"sse_notify.hub.QUEUE_BYTES": 4096}):
        s = await open_stream(user)
        await s.chunk()
        sub = next(iter(fresh_hub.users[user.pk]))
        await sync_to_async(burst)(user, 200)
        await s.read_until(lambda st: len(st.notifications()) >= 200, within=10)
        assert sub.queued_bytes == 0
        await asyncio.sleep(0.3)
        while not s.comm.output_queue.empty():
            await s.chunk()
        assert [int(e.id) for e in s.notifications()] == list(range(1, 201)), "each once, in order"
        await s.disconnect()


async def test_a_dropped_layer_message_is_recovered_from_the_database(fresh_hub, user):
    """Seq 2 never reaches the hub; seq 3 does: the gap sends the stream to the database."""
    hub = fresh_hub
    with sse_settings(POLL_INTERVAL=60):
        s = await open_stream(user)
        await s.chunk()
        layer = publish.get_layer()

        rows: list[Notification] = []
        for i in range(3):
            rows += await sync_to_async(send_notification)(user, f"n{i + 1}") if i != 1 else []
            if i == 1:
                # Sent with the layer turned off: the message is lost.
                with sse_settings(POLL_INTERVAL=60, CHANNEL_LAYER="nonexistent"):
                    await sync_to_async(send_notification)(user, "n2")
            await asyncio.sleep(0.05)
        assert layer is not None
        await s.read_until(lambda st: len(st.notifications()) >= 3, within=3)
        assert [(e.id, e.json()["title"]) for e in s.notifications()] == [("1", "n1"), ("2", "n2"), ("3", "n3")]
        await s.disconnect()
    await settle(hub)


def test_wsgi_request_is_refused_with_501(client, user):
    client.force_login(user)
    response = client.get("/notifications/stream/")
    assert response.status_code == 501
    assert response.json()["error"] == "asgi_required"


async def test_disconnect_while_joining_the_layer_group_leaves_nothing(fresh_hub, user, monkeypatch):
    """The client leaves while the hub is still joining the user's group (a slow layer)."""
    hub = fresh_hub
    await hub._ensure_started()
    layer = publish.get_layer()
    joining = asyncio.Event()
    original = layer.group_add

    async def slow_group_add(group: str, channel: str) -> None:
        if group.startswith("sse_notify.user."):
            joining.set()
            await asyncio.sleep(0.5)
        await original(group, channel)

    monkeypatch.setattr(layer, "group_add", slow_group_add)
    cookie = await sync_to_async(session_cookie)(user)
    s = AsgiStream(http_scope(cookie=cookie, query=b"cursor=0"))
    await s.start()
    await asyncio.wait_for(joining.wait(), 5)
    await s.disconnect()
    await asyncio.sleep(0.7)
    await settle(hub)
    assert (hub.count, hub.users) == (0, {}), "a stream cancelled while subscribing stayed in the hub"


async def test_a_deleted_notification_does_not_make_the_poll_query_forever(fresh_hub, user, monkeypatch):
    """The user's newest notification was deleted (admin, prune): its seq never arrives.
    The poll must not send the stream to the database on every POLL_INTERVAL for it."""
    from sse_notify import stream as stream_module

    await sync_to_async(send_notification)(user, "kept")
    await sync_to_async(send_notification)(user, "deleted")
    await Notification.objects.filter(recipient=user, title="deleted").adelete()
    calls = []
    real = stream_module.catch_up

    def counting(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(stream_module, "catch_up", counting)
    with sse_settings(POLL_INTERVAL=0.05):
        s = await open_stream(user, cursor="0")
        await s.read_until(lambda st: len(st.notifications()) == 1)
        await asyncio.sleep(0.6)  # a dozen polls
        assert len(calls) <= 2, f"{len(calls)} catch-up queries for a seq that no longer exists"
        await sync_to_async(send_notification)(user, "next")
        await s.read_until(lambda st: len(st.notifications()) == 2)
        assert [(e.id, e.json()["title"]) for e in s.notifications()] == [("1", "kept"), ("3", "next")]
        await s.disconnect()
