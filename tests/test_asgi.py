"""sse_notify.asgi.StreamRoute: what it serves itself, what it leaves to Django.

In-process ASGI (asgiref's ApplicationCommunicator) with a stand-in for the
Django application that records the requests handed to it: a request the route
serves never reaches it; every other one reaches it untouched.
"""

from __future__ import annotations

import asyncio
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
    [
        "anonymous",
        "post",
        "other path",
        "origin",
        "bad host",
        "unknown session",
        "password changed",
        "inactive",
        # Found by an outside attack: the route read the first of repeated headers, where
        # Django joins them (a second cookie or host the view would refuse).
        "second cookie header",
        "second host header",
        "forwarded host",
        "control character in the key",
        "session data get_user cannot read",
    ],
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
    elif case == "second cookie header":
        sc["headers"].append((b"cookie", b"sessionid=" + b"0" * 32))
    elif case == "second host header":
        sc["headers"].append((b"host", b"evil.example"))
    elif case == "forwarded host":
        sc["headers"].append((b"x-forwarded-host", b"evil.example"))
    elif case == "control character in the key":
        sc = scope(cookie=cookie[:10] + "\x01" + cookie[11:])
    elif case == "session data get_user cannot read":
        from django.contrib.sessions.backends.db import SessionStore

        def odd() -> None:
            store = SessionStore(cookie)
            store["_auth_user_id"] = [user.pk]  # not an id: a session cache or engine could raise anything
            store.save()

        await sync_to_async(odd)()
    settings_for_case = {"USE_X_FORWARDED_HOST": True} if case == "forwarded host" else {}
    with override_settings(ALLOWED_HOSTS=["testserver"], **settings_for_case):
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


# -- the sign-in check of a connect (sse_notify.signin) ---------------------------------------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def make_session(
    user: Any,
    engine: str = "django.contrib.sessions.backends.db",
    backend: str = MODEL_BACKEND,
    auth_hash: str | None = "current",
    expired: bool = False,
) -> str:
    """A session of ``engine`` that signs ``user`` in through ``backend``; ``auth_hash``:
    "current", "old secret" (verified by SECRET_KEY_FALLBACKS=["old secret"] only), or a literal."""
    from datetime import timedelta
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(engine).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = backend
    if auth_hash == "current":
        auth_hash = user.get_session_auth_hash()
    elif auth_hash == "old secret":
        auth_hash = user._get_session_auth_hash(secret="old secret")
    if auth_hash is not None:
        store[HASH_SESSION_KEY] = auth_hash
    if expired:
        store.set_expiry(timedelta(seconds=-10))
    store.save()
    assert store.session_key
    return str(store.session_key)


def count_connect_queries(monkeypatch: Any) -> list[str]:
    """The SQL of the connect's trips to the database threads (not the hub's poll)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from sse_notify import db
    from sse_notify.signin import route_sign_in
    from sse_notify.stream import connect_state

    seen: list[str] = []
    real = db._call

    def counting(fn: Any, *args: Any) -> Any:
        if fn not in (route_sign_in, connect_state):
            return real(fn, *args)
        with CaptureQueriesContext(connections["default"]) as queries:
            result = real(fn, *args)
        seen.extend(q["sql"] for q in queries.captured_queries)
        return result

    monkeypatch.setattr(db, "_call", counting)
    return seen


async def serve(sc: dict[str, Any], **settings: Any) -> tuple[Recorder, int, ApplicationCommunicator]:
    recorder = Recorder()
    with override_settings(ALLOWED_HOSTS=["testserver"], **settings):
        comm, start_msg = await start(StreamRoute(recorder), sc)
        if start_msg["status"] == 200:
            ready = await comm.receive_output(timeout=5)
            assert b"event: ready" in ready["body"]
    return recorder, start_msg["status"], comm


async def leave(comm: ApplicationCommunicator) -> None:
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(timeout=5)


async def test_a_connect_is_two_queries(fresh_hub, make_user, monkeypatch):
    """The session row before registering; then the user, the inbox and the session again in one."""
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_session)(user)
    queries = count_connect_queries(monkeypatch)
    recorder, status, comm = await serve(scope(cookie=key))
    assert status == 200 and recorder.seen == []
    assert len(queries) == 2, queries
    assert "django_session" in queries[0] and "auth_user" not in queries[0]
    assert all(table in queries[1] for table in ("auth_user", "sse_notify_inbox", "django_session")), queries[1]
    assert fresh_hub.streams_of(user.pk) == 1
    await leave(comm)
    # With an inbox row (the user has been sent something) it is the same two queries.
    from sse_notify.api import send_notification

    await sync_to_async(send_notification)(user, "hello")
    queries.clear()
    last = await sync_to_async(lambda: user.sse_notify_inbox.last_seq)()
    sc = scope(cookie=key)
    sc["query_string"] = f"cursor={last}".encode()
    _, status, comm = await serve(sc)
    assert status == 200 and len(queries) == 2, queries
    await leave(comm)


@pytest.mark.parametrize(
    "case",
    [
        "expired session",
        "backend not configured",
        "no hash in the session",
        "hash of another password",
        "hash of an old secret",
        "user deleted",
        "custom backend refuses",
        "custom backend, hash of an old secret",
    ],
)
async def test_what_get_user_refuses_or_would_write_goes_to_django(fresh_hub, make_user, case):
    """The route serves no session ``get_user`` would refuse, and writes none: a session only
    an old secret verifies (Django cycles its key) or a wrong hash (Django flushes it) is the view's."""
    from django.contrib.sessions.models import Session

    settings: dict[str, Any] = {"SECRET_KEY_FALLBACKS": ["old secret"]}
    user = await sync_to_async(make_user)()
    kw: dict[str, Any] = {}
    if case == "expired session":
        kw["expired"] = True
    elif case == "backend not configured":
        kw["backend"] = "tests.backends.NoBlockedUsersBackend"
    elif case == "no hash in the session":
        kw["auth_hash"] = None
    elif case == "hash of another password":
        kw["auth_hash"] = "0" * 64
    elif case == "hash of an old secret":
        kw["auth_hash"] = "old secret"
    elif case.startswith("custom backend"):
        kw["backend"] = "tests.backends.NoBlockedUsersBackend"
        settings["AUTHENTICATION_BACKENDS"] = ["tests.backends.NoBlockedUsersBackend"]
        if case == "custom backend refuses":
            await sync_to_async(type(user).objects.filter(pk=user.pk).update)(username="blocked-" + user.username)
        else:
            kw["auth_hash"] = "old secret"
    key = await sync_to_async(make_session)(user, **kw)
    stored = await sync_to_async(lambda: Session.objects.filter(session_key=key).values_list("session_data"))()
    before = await sync_to_async(list)(stored)
    if case == "user deleted":
        await sync_to_async(user.delete)()
    recorder, status, _ = await serve(scope(cookie=key), **settings)
    assert status == 418 and recorder.seen == [STREAM], case
    assert fresh_hub.count == 0
    # Nothing written: the session is as it was (the view's middleware decides what to do with it).
    assert await sync_to_async(list)(stored) == before


@pytest.mark.parametrize(
    "engine",
    [
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.signed_cookies",
    ],
)
@pytest.mark.parametrize("inactive", [False, True], ids=["active", "inactive"])
async def test_every_session_engine_is_served_with_get_users_rules(fresh_hub, make_user, engine, inactive):
    """db and cached_db take the two-query path (PostgreSQL), the others the engine's load and ``get_user``;
    an inactive user is refused by both."""
    user = await sync_to_async(make_user)(is_active=not inactive)
    with override_settings(SESSION_ENGINE=engine):
        key = await sync_to_async(make_session)(user, engine=engine)
        recorder, status, comm = await serve(scope(cookie=key))
    if inactive:
        assert status == 418 and recorder.seen == [STREAM]
        assert fresh_hub.count == 0
        return
    assert status == 200 and recorder.seen == []
    assert fresh_hub.streams_of(user.pk) == 1
    await leave(comm)


@pytest.mark.parametrize(
    "backend",
    [MODEL_BACKEND, "django.contrib.auth.backends.AllowAllUsersModelBackend", "tests.backends.NoBlockedUsersBackend"],
)
async def test_each_backend_decides_whom_it_accepts(fresh_hub, make_user, backend):
    """A ModelBackend's own ``user_can_authenticate`` (AllowAllUsers accepts inactive users);
    a backend with its own ``get_user`` is asked (the generic path)."""
    active = await sync_to_async(make_user)()
    inactive = await sync_to_async(make_user)(is_active=False)
    blocked = await sync_to_async(make_user)("blocked" + active.username)
    backends = [
        MODEL_BACKEND,
        "django.contrib.auth.backends.AllowAllUsersModelBackend",
        "tests.backends.NoBlockedUsersBackend",
    ]
    served = {}
    for who in (active, inactive, blocked):
        key = await sync_to_async(make_session)(who, backend=backend)
        _, status, comm = await serve(scope(cookie=key), AUTHENTICATION_BACKENDS=backends)
        served[who.pk] = status == 200
        if status == 200:
            await leave(comm)
    assert served[active.pk]
    assert served[inactive.pk] == (backend == "django.contrib.auth.backends.AllowAllUsersModelBackend")
    assert served[blocked.pk] == (backend != "tests.backends.NoBlockedUsersBackend")


@pytest.mark.parametrize("change", [None, "epoch", "inactive", "password"])
async def test_a_custom_user_model_is_read_as_the_orm_reads_it(fresh_hub, change, monkeypatch):
    """Its own table (a name that needs quoting), columns, converters and session hash."""
    from tests.models import EmailUser

    with override_settings(AUTH_USER_MODEL="sse_notify_tests.EmailUser"):
        user = await sync_to_async(EmailUser.objects.create_user)("ann@example.com", "pw", profile={"epoch": 1})
        key = await sync_to_async(make_session)(user)
        if change == "epoch":
            user.profile = {"epoch": 2}
        elif change == "inactive":
            user.is_active = False
        elif change == "password":
            user.set_password("other")
        await sync_to_async(user.save)()
        queries = count_connect_queries(monkeypatch)
        recorder, status, comm = await serve(scope(cookie=key))
        if change is None:
            assert status == 200 and recorder.seen == []
            assert len(queries) == 2 and "sse_notify_tests email user" in queries[1], queries
            assert fresh_hub.streams_of(user.pk) == 1
            await leave(comm)
        else:
            assert status == 418 and recorder.seen == [STREAM]
            assert fresh_hub.count == 0


# -- the same on real Daphne (tests.asgi: StreamRoute in front of Django) --------------------------------


async def http_get_stream(port: int, key: str, within: float = 5.0) -> tuple[int, dict[str, str], bytes, Any, Any]:
    """Status, headers and the body up to the ``ready`` event (or the end) of one stream
    request, and its reader and writer (close it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {STREAM}?cursor=0 HTTP/1.0\r\nHost: x\r\nCookie: sessionid={key}\r\n\r\n".encode())
    await writer.drain()
    data = b""
    async with asyncio.timeout(within):
        while b"\r\n\r\n" not in data or (b"event: ready" not in data and not reader.at_eof()):
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), "")
        headers[name.strip().lower()] += value.strip()
    return int(lines[0].split()[1]), headers, body, reader, writer


@pytest.mark.e2e
async def test_on_daphne_a_session_of_a_rotated_secret_is_renewed_by_the_view_then_served(daphne, make_user):
    """SECRET_KEY rotated, the old one in SECRET_KEY_FALLBACKS: Django renews such a session
    (new key, new hash) and sends the new cookie. The route leaves it to the view, which
    does; the new session is then served by the route, and the user stays signed in."""
    from django.contrib.sessions.models import Session

    from sse_notify.api import send_notification

    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_session)(user)  # this process's SECRET_KEY: the server's old one
    server = daphne(django_settings={"SECRET_KEY": "rotated", "SECRET_KEY_FALLBACKS": ["tests-only"]})
    status, headers, body, _, writer = await http_get_stream(server.port, key)
    writer.close()
    assert status == 200 and b"event: ready" in body, (status, headers, body)
    cookie = headers.get("set-cookie", "")
    assert cookie.startswith("sessionid="), headers
    new_key = cookie.split("=", 1)[1].split(";", 1)[0]
    assert new_key != key
    keys = await sync_to_async(lambda: set(Session.objects.values_list("session_key", flat=True)))()
    assert key not in keys and new_key in keys
    # The renewed session: served by the route (no cookie to send), and delivered to.
    status, headers, body, reader, writer = await http_get_stream(server.port, new_key)
    try:
        assert status == 200 and b"event: ready" in body and "set-cookie" not in headers, (status, headers)
        await sync_to_async(send_notification)(user, "still signed in")
        async with asyncio.timeout(5):
            while b"still signed in" not in body:
                body += await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["password changed", "session expired", "user deactivated", "backend removed"])
async def test_on_daphne_a_session_get_user_refuses_gets_djangos_answer(daphne, make_user, case):
    """403 from the view; a session whose hash no longer matches is flushed, as Django does."""
    from django.contrib.sessions.models import Session

    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_session)(user, expired=case == "session expired")
    django_settings = None
    if case == "password changed":
        user.set_password("new secret")
        await sync_to_async(user.save)()
    elif case == "user deactivated":
        await sync_to_async(type(user).objects.filter(pk=user.pk).update)(is_active=False)
    elif case == "backend removed":
        django_settings = {"AUTHENTICATION_BACKENDS": ["tests.backends.NoBlockedUsersBackend"]}
    server = daphne(django_settings=django_settings)
    status, _headers, body, _, writer = await http_get_stream(server.port, key)
    writer.close()
    assert status == 403 and b"not_authenticated" in body, (status, body)
    still = await sync_to_async(Session.objects.filter(session_key=key).exists)()
    assert still == (case in ("user deactivated", "backend removed", "session expired"))
