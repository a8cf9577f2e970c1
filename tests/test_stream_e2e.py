"""The stream against a real Daphne on a real socket."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async

from sse_notify.api import send_notification
from tests.sse_client import SSEStream
from tests.support import run_manage, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_live_delivery_then_exact_replay_on_reconnect(daphne, user):
    server = daphne()
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as s:
        assert s.status == 200
        assert s.response.headers["content-type"].startswith("text/event-stream")
        ready = await s.next_event()
        assert ready.event == "ready" and ready.json() == {"cursor": 0, "unread": 0}
        await sync_to_async(send_notification)(user, "first")
        first = await s.next_event()
        assert (first.event, first.id, first.json()["title"]) == ("notification", "1", "first")
    # Sent while disconnected: exactly these two are replayed, in order.
    await sync_to_async(send_notification)(user, "second")
    await sync_to_async(send_notification)(user, "third", body="line1\nline2")
    async with SSEStream(server.url(), cookie=cookie, headers={"Last-Event-ID": "1"}) as s:
        await s.next_event()  # ready
        replayed = await s.events(2, kind="notification")
        assert [(e.id, e.json()["title"]) for e in replayed] == [("2", "second"), ("3", "third")]
        assert replayed[1].json()["body"] == "line1\nline2"
        assert await s.silence(0.5, kind="notification") == []


async def test_notification_from_another_process_arrives(daphne, user):
    """In-memory layer: the management command's process cannot reach Daphne's layer;
    the hub's database poll delivers it within POLL_INTERVAL."""
    server = daphne(overrides={"POLL_INTERVAL": 0.2})
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url(), cookie=cookie) as s:
        await s.next_event()
        proc = await asyncio.to_thread(
            run_manage,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; from sse_notify.api import send_notification; "
            "send_notification(User.objects.get(username='alice'), 'from cron')",
        )
        assert proc.returncode == 0, proc.stderr
        event = await s.next_event(timeout=5)
        assert event.event == "notification" and event.json()["title"] == "from cron"


async def test_works_under_uvicorn_too(user, tmp_path):
    """The view is plain ASGI Django: another server (uvicorn) streams it the same way."""
    import subprocess
    import sys

    from tests.support import ROOT, free_port, subprocess_env

    port = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "tests.asgi:application"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        cookie = await sync_to_async(session_cookie)(user)
        url = f"http://127.0.0.1:{port}/notifications/stream/?cursor=0"
        for _ in range(200):
            try:
                async with SSEStream(url, cookie=cookie) as s:
                    assert s.status == 200
                    assert (await s.next_event()).event == "ready"
                    await sync_to_async(send_notification)(user, "via uvicorn")
                    event = await s.next_event()
                    assert event.json()["title"] == "via uvicorn"
                    break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)  # not listening yet
        else:
            pytest.fail("uvicorn never answered")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def test_signing_out_ends_that_sessions_streams_only(daphne, user):
    """Sign-out in one tab: the session's streams end now (the client reconnects, gets
    403 and stops), not after MAX_STREAM_LIFETIME; the user's other sessions go on."""
    server = daphne()
    leaving = await sync_to_async(session_cookie)(user)
    staying = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url(), cookie=leaving) as gone, SSEStream(server.url(), cookie=staying) as kept:
        assert (await gone.next_event()).event == "ready"
        assert (await kept.next_event()).event == "ready"
        async with httpx.AsyncClient() as client:
            response = await client.post(server.url("/test-logout/"), headers={"Cookie": f"sessionid={leaving}"})
        assert response.status_code == 200 and response.text == "signed out"
        with pytest.raises(StopAsyncIteration):
            await gone.next_event(timeout=5)  # the stream ended
        await sync_to_async(send_notification)(user, "still signed in elsewhere")
        assert (await kept.next_event()).json()["title"] == "still signed in elsewhere"
    async with SSEStream(server.url(), cookie=leaving) as again:
        assert again.status == 403
