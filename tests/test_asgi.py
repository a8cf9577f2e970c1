"""sse_notify.asgi.StreamRoute: what it serves itself, what it leaves to Django.

In-process ASGI (asgiref's ApplicationCommunicator) with a stand-in for the
Django application that records the requests handed to it: a request the route
serves never reaches it; every other one reaches it untouched.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.test import override_settings

from sse_notify.asgi import StreamRoute
from tests.support import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/notifications/stream/"


class Recorder:
    """Stands in for Django: answers 418 and remembers the request."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


def scope(path: str = STREAM, method: str = "GET", cookie: str | None = None, **headers: str) -> dict[str, Any]:
    raw = [(b"host", b"testserver")]
    if cookie:
        raw.append((b"cookie", f"sessionid={cookie}".encode()))
    raw += [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"cursor=0",
        "headers": raw,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def start(app: Any, sc: dict[str, Any]) -> tuple[ApplicationCommunicator, dict[str, Any]]:
    comm = ApplicationCommunicator(app, sc)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    return comm, await comm.receive_output(timeout=5)


async def signed_in(make_user: Any, **extra: Any) -> tuple[Any, str]:
    user = await sync_to_async(make_user)(**extra)
    return user, await sync_to_async(session_cookie)(user)


async def test_a_signed_in_get_is_served_without_django(fresh_hub, make_user):
    recorder = Recorder()
    user, cookie = await signed_in(make_user)
    comm, start_msg = await start(StreamRoute(recorder), scope(cookie=cookie))
    assert start_msg["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start_msg["headers"]
    body = await comm.receive_output(timeout=5)
    assert body["body"].startswith(b"retry:") or b"event: ready" in body["body"]
    assert recorder.seen == []
    assert fresh_hub.streams_of(user.pk) == 1
    # The client leaves: the stream is cancelled and leaves the hub.
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(timeout=5)
    assert fresh_hub.streams_of(user.pk) == 0


@pytest.mark.parametrize(
    "case",
    ["anonymous", "post", "other path", "origin", "bad host", "unknown session", "password changed", "inactive"],
)
async def test_everything_else_goes_to_django(fresh_hub, make_user, case):
    recorder = Recorder()
    user, cookie = await signed_in(make_user)
    sc = scope(cookie=cookie)
    if case == "anonymous":
        sc = scope()
    elif case == "post":
        sc = scope(method="POST", cookie=cookie)
    elif case == "other path":
        sc = scope(path="/notifications/api/unread/", cookie=cookie)
    elif case == "origin":
        sc = scope(cookie=cookie, origin="https://elsewhere.example")
    elif case == "bad host":
        sc["headers"][0] = (b"host", b"evil.example")
    elif case == "unknown session":
        sc = scope(cookie="0" * 32)
    elif case == "password changed":

        def change() -> None:
            user.set_password("new")
            user.save()

        await sync_to_async(change)()
    elif case == "inactive":
        await sync_to_async(type(user).objects.filter(pk=user.pk).update)(is_active=False)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        _comm, start_msg = await start(StreamRoute(recorder), sc)
    assert start_msg["status"] == 418, case
    assert recorder.seen == [sc["path"]]
    assert fresh_hub.count == 0


async def test_over_the_per_user_cap_goes_to_django(fresh_hub, make_user):
    recorder = Recorder()
    _user, cookie = await signed_in(make_user)
    app = StreamRoute(recorder)
    with override_settings(SSE_NOTIFY={"MAX_STREAMS_PER_USER": 1, "POLL_INTERVAL": 0.2}):
        first, msg = await start(app, scope(cookie=cookie))
        assert msg["status"] == 200
        ready = await first.receive_output(timeout=5)  # the first stream holds its slot now
        assert b"event: ready" in ready["body"]
        _second, msg2 = await start(app, scope(cookie=cookie))
        assert msg2["status"] == 418  # the view gives the cap's documented answer
    await first.send_input({"type": "http.disconnect"})
    await first.wait(timeout=5)


async def test_without_the_app_urls_everything_goes_to_django(fresh_hub, make_user):
    recorder = Recorder()
    _, cookie = await signed_in(make_user)
    with override_settings(ROOT_URLCONF="tests.urls_without_app"):
        _comm, msg = await start(StreamRoute(recorder), scope(cookie=cookie))
    assert msg["status"] == 418
