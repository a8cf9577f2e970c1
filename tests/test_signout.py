"""Signing out, a password change, a deleted session or a deactivated user end that
session's streams, always (issue 9, item 3).

- No window at sign-out: the stream is registered with the hub before its session
  is checked again, and the hub remembers signed-out sessions for a while.
- What changes without a sign-out signal is found by the hub's periodic session
  check (``hub.SESSION_CHECK_INTERVAL``, 5 s; shortened here).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session

from sse_notify.api import send_notification
from sse_notify.stream import StreamLife
from tests.support import override_constants, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTS = 100


async def read_to_eof(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes (HTTP/1.0), or raise TimeoutError."""
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - loop.time()))
        if not chunk:
            return data
        data += chunk


@pytest.mark.e2e
async def test_connects_in_flight_at_sign_out_all_end(daphne, user):
    server = daphne(overrides={"POLL_INTERVAL": 0.5})
    cookie = await sync_to_async(session_cookie)(user)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET /notifications/stream/ HTTP/1.0\r\nHost: x\r\nCookie: sessionid={cookie}\r\n\r\n".encode())
        await writer.drain()
        return reader, writer

    async def logout() -> None:
        await asyncio.sleep(0.05)  # some connects checked, some registered, some neither
        async with httpx.AsyncClient() as client:
            await client.post(server.url("/test-logout/"), headers={"Cookie": f"sessionid={cookie}"})

    results = await asyncio.gather(*(connect() for _ in range(CONNECTS)), logout())
    connections = results[:CONNECTS]
    await sync_to_async(send_notification)(user, "SECRET after logout")
    try:
        # Every connection ends: at once (refused with 403, or its stream ended), and
        # well before the periodic session check could be what ended it.
        bodies = await asyncio.gather(*(read_to_eof(r, within=4.0) for r, _ in connections), return_exceptions=True)
    finally:
        for _, w in connections:
            w.close()
    still_open = [b for b in bodies if isinstance(b, BaseException)]
    assert still_open == [], f"{len(still_open)} of {CONNECTS} streams stayed open after sign-out"
    assert not any(b"SECRET after logout" in b for b in bodies if isinstance(b, bytes))
    statuses = {b.split(b" ", 2)[1] for b in bodies if isinstance(b, bytes)}
    assert statuses <= {b"200", b"403"}, statuses


async def open_life(user: Any, session_key: str) -> tuple[StreamLife, Any]:
    life = StreamLife(user.pk, session_key=session_key, raw_cursor=None)
    body = life.body()
    first = await asyncio.wait_for(body.__anext__(), 5)
    assert b"event: ready" in first
    return life, body


async def ends_within(body: Any, seconds: float) -> None:
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(body.__anext__(), seconds)


@pytest.mark.parametrize("change", ["password", "session_deleted", "deactivated"])
async def test_session_ended_without_sign_out_ends_the_stream(fresh_hub, make_user, settings, change):
    settings.SSE_NOTIFY = {"POLL_INTERVAL": 0.1, "HEARTBEAT": 15.0}
    alice = await sync_to_async(make_user)()
    bob = await sync_to_async(make_user)()
    key = await sync_to_async(session_cookie)(alice)
    other = await sync_to_async(session_cookie)(bob)
    with override_constants({"sse_notify.hub.SESSION_CHECK_INTERVAL": 0.3}):
        life, body = await open_life(alice, key)
        _, bob_body = await open_life(bob, other)

        @sync_to_async
        def apply() -> None:
            if change == "password":
                alice.set_password("new secret")
                alice.save()
            elif change == "session_deleted":
                Session.objects.filter(session_key=key).delete()
            else:
                alice.is_active = False
                alice.save()

        await apply()
        await ends_within(body, 3.0)
        assert life.end_reason == "signed_out"
        # The other user's stream is untouched.
        await sync_to_async(send_notification)(bob, "still here")
        chunk = await asyncio.wait_for(bob_body.__anext__(), 5)
        assert b"still here" in chunk
        await bob_body.aclose()
    assert fresh_hub.count == 0


@pytest.mark.parametrize("change", ["password", "deactivated"])
async def test_a_password_change_or_deactivation_ends_streams_before_the_next_send(
    fresh_hub, make_user, settings, change
):
    """Found by an outside attack: with the periodic check the only way to notice, a
    notification sent right after the change still reached the session's open streams
    (live, through the layer). Now the save itself ends them, in order before that send."""
    settings.SSE_NOTIFY = {"POLL_INTERVAL": 30.0, "HEARTBEAT": 15.0}
    alice = await sync_to_async(make_user)()
    key = await sync_to_async(session_cookie)(alice)
    # The periodic check cannot be what ends it here.
    with override_constants({"sse_notify.hub.SESSION_CHECK_INTERVAL": 3600.0}):
        life, body = await open_life(alice, key)

        @sync_to_async
        def change_then_send() -> None:
            if change == "password":
                alice.set_password("new secret")
                alice.save()
            else:
                alice.is_active = False
                alice.save()
            send_notification(alice, "after the change")

        await change_then_send()
        rest = b""
        with pytest.raises(StopAsyncIteration):
            while True:
                rest += await asyncio.wait_for(body.__anext__(), 10)
        assert life.end_reason == "signed_out"
        assert b"after the change" not in rest
    # Saving other fields (a login's last_login) ends nothing.
    bob = await sync_to_async(make_user)()
    bob_key = await sync_to_async(session_cookie)(bob)
    _, bob_body = await open_life(bob, bob_key)

    @sync_to_async
    def touch_then_send() -> None:
        bob.first_name = "Bob"
        bob.save()
        bob.save(update_fields=["last_login"])
        send_notification(bob, "still here")

    await touch_then_send()
    chunk = await asyncio.wait_for(bob_body.__anext__(), 5)
    assert b"still here" in chunk
    await bob_body.aclose()


async def test_a_connect_that_checked_before_sign_out_and_registers_after_ends(fresh_hub, user):
    """The hub heard the sign-out before this stream registered: it ends at once."""
    from sse_notify.protocol import SignOut
    from sse_notify.publish import session_hash

    key = await sync_to_async(session_cookie)(user)
    await fresh_hub._ensure_started()
    fresh_hub.dispatch(SignOut(((user.pk, session_hash(key)),)).encode())
    life = StreamLife(user.pk, session_key=key, raw_cursor=None)
    chunks = [c async for c in life.body()]
    assert chunks == [] and life.end_reason == "signed_out"


async def test_a_sign_out_the_layer_never_brought_leaks_nothing_from_the_database(fresh_hub, make_user, settings):
    """Redis stalled while the session signed out: no sign-out message, and the next
    notification reaches this process only through the database poll. The poll checks
    the session of every stream it is about to send to the database, so the stream ends
    without the notification (long before the periodic session check)."""
    settings.SSE_NOTIFY = {"POLL_INTERVAL": 0.1, "HEARTBEAT": 15.0}
    alice = await sync_to_async(make_user)()
    key = await sync_to_async(session_cookie)(alice)
    with override_constants({"sse_notify.hub.SESSION_CHECK_INTERVAL": 3600.0}):
        life, body = await open_life(alice, key)

        @sync_to_async
        def sign_out_and_send_without_the_layer() -> None:
            from unittest import mock

            Session.objects.filter(session_key=key).delete()  # what logout does; no message
            with mock.patch("sse_notify.publish.get_layer", return_value=None):  # the layer is down
                send_notification(alice, "SECRET after sign-out")

        await sign_out_and_send_without_the_layer()
        chunks: list[bytes] = []
        with pytest.raises(StopAsyncIteration):
            while True:
                chunks.append(await asyncio.wait_for(body.__anext__(), 3.0))
        assert not any(b"SECRET" in c for c in chunks), chunks
        assert life.end_reason == "signed_out"
