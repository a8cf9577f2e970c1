"""The stream's fast route: an ASGI wrapper that opens streams without Django's request cycle.

``application = StreamRoute(get_asgi_application())`` serves ``GET`` on the
stream's URL itself and hands every other request to the Django application.
A connect through Django costs a thread hop per middleware, a request and a
response object and the URL resolver before the view runs; after a deploy,
every client of a process reconnects at once, so that cost is the time until
all of them are back (measured in ``bench/``). Here a connect costs two indexed
queries on the database threads (PostgreSQL, MySQL, SQLite; ``sse_notify.signin``): the
session row, then, once the stream is registered with the hub, the user, the
inbox and the session again in one; then the same stream the view serves (``stream.StreamLife``): one
code path for what is sent.

Deliberate choices:

- Only the plain success path is served here: a signed-in user from the
  session cookie, a host in ``ALLOWED_HOSTS``, no ``Origin`` header (CORS), room
  under the caps. Anything else (anonymous, over a cap, cross-origin, a bad
  host) goes to the Django view, which gives the documented answer. A project
  that authenticates by other means than Django's session (a token middleware)
  keeps working through the view, just without the fast route.
- The session and the user are checked with the rules of
  ``django.contrib.auth.get_user`` (the same backends, ``is_active`` rules and
  session-hash check as the middleware): in plain SQL for the ``db`` and
  ``cached_db`` session engines on PostgreSQL, MySQL and SQLite, through the engine and
  ``get_user`` otherwise
  (see ``sse_notify.signin``). Nothing is sent until the user is checked, so a
  connect that is not served goes to the view. The route never writes a
  session: one that ``get_user`` would flush (its hash no longer matches) or
  renew (only a ``SECRET_KEY_FALLBACKS`` secret verifies it) is the view's, and
  Django's middleware sends the new cookie. Middleware of the project does not
  run for the stream (it sends nothing a page would render);
  ``SESSION_SAVE_EVERY_REQUEST`` does not refresh the session's expiry on
  stream connects.
- The route owns ``receive()``: a client that goes away (``http.disconnect``)
  cancels the stream at once, as Django's handler does.
- **Caps count what the server holds.** Daphne applies no backpressure and keeps
  the bytes a client has not read after the response ends, until the socket
  closes, and tells the application nothing then. The route gives every stream
  (its own and the view's, through ``scope["sse_notify.connection"]``) a probe
  of its connection: a stream that ended keeps its place in the caps while its
  connection still holds unsent bytes, and a live stream stops writing while
  its client is ``stream.WRITE_BYTES`` behind (it catches up from the database).
- **A clean stop.** On SIGINT/SIGTERM Daphne cancels each request's task, which
  would orphan Django's inner tasks (a pending ``receive()`` destroyed at
  interpreter teardown segfaulted Python 3.11.7). Each request runs in a task
  of its own that the route lets finish: the hub ends every stream at once
  (responses end properly, clients resume elsewhere) and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger("sse_notify")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Scope key of the connection probe (``sse_notify.compat.ConnectionProbe``).
CONNECTION = "sse_notify.connection"
#: Seconds a cancelled request is given to end by itself before it is told the
#: client left (streams end within milliseconds once the hub stops them).
STOP_GRACE = 3.0

#: Response headers of every stream (the view sets the same ones).
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _repeated(scope: Scope, names: tuple[bytes, ...]) -> bool:
    """Whether one of ``names`` comes more than once (Django joins repeats with ","; the view decides)."""
    seen: set[bytes] = set()
    for key, _value in scope.get("headers", ()):
        if key in names:
            if key in seen:
                return True
            seen.add(key)
    return False


def _stream_path() -> str | None:
    """The stream's path (without the script prefix), or None if the app's URLs are not included."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("sse_notify:stream")
    except NoReverseMatch:
        return None


class StreamRoute:
    """ASGI application: the notification stream served directly, the rest by ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._path: str | bool | None = False  # False: not looked up yet

    def _is_stream(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") != "GET":
            return False
        if self._path is False:
            self._path = _stream_path()
        if not self._path:
            return False
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path == self._path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        from . import compat

        probe = compat.connection_probe(send)
        if probe is not None:
            scope = {**scope, CONNECTION: probe}
        inner = asyncio.ensure_future(self._handle(scope, receive, send))
        try:
            await asyncio.shield(inner)
        except asyncio.CancelledError:
            # The server gave up on this request (stopping, or its close timeout). Let
            # it end its own work instead of orphaning Django's tasks.
            if not inner.done():
                await asyncio.wait((inner,), timeout=STOP_GRACE)
            if not inner.done() and compat.tell_client_left(receive):
                await asyncio.wait((inner,), timeout=STOP_GRACE)
            if not inner.done():
                inner.cancel()
                with contextlib.suppress(BaseException):
                    await inner
            raise

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._is_stream(scope) and await self._serve(scope, receive, send):
            return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Serve the stream; return False (having sent nothing) to leave it to the view."""
        from django.db import DatabaseError

        from . import db
        from .hub import StreamLimitExceeded, get_hub
        from .signin import route_sign_in
        from .stream import stream_life

        if _header(scope, b"origin") is not None:
            return False  # CORS: the view decides
        if _repeated(scope, (b"host", b"cookie", b"last-event-id")):
            return False  # read as Django reads them (joined), by the view
        if settings.USE_X_FORWARDED_HOST and _header(scope, b"x-forwarded-host") is not None:
            return False  # the host Django validates is that one
        domain, _port = split_domain_port(_header(scope, b"host") or "")
        if not domain or not validate_host(domain, _allowed_hosts()):
            return False  # Django answers 400 (DisallowedHost)
        cookie = _header(scope, b"cookie")
        session_key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME) if cookie else None
        if not session_key or not session_key.isprintable():
            return False
        try:
            sign_in = await db.run(route_sign_in, session_key)
        except DatabaseError:
            return False  # the view answers 503 and logs it once per interval
        except Exception as exc:
            # Not ours to answer (a session cache that is down, session data get_user
            # cannot read): Django's handler does, with its logging and its 500 page.
            db.log_error("stream route sign-in", exc)
            return False
        if sign_in is None:
            return False
        client = scope.get("client")
        ip = client[0] if client else None
        try:
            get_hub().check_limits(sign_in.user_id, ip)
        except StreamLimitExceeded:
            return False
        raw_cursor = _header(scope, b"last-event-id")
        if raw_cursor is None:
            raw_cursor = QueryDict(scope.get("query_string", b"")).get("cursor")
        life = stream_life(sign_in.user_id, ip, raw_cursor, session_key, scope.get(CONNECTION), False, sign_in.claim)
        # Registered and checked before the status goes out: a connect that is not
        # served (signed out meanwhile, the user refused, a cap) is the view's to answer.
        first = await life.open()
        if first is None:
            return False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await _pump(life.body(first), receive, send)
        finally:
            life.close()  # also if the body never started (the client left at once)
        return True


async def _pump(body: Any, receive: Receive, send: Send) -> None:
    """Send ``body``'s chunks until it ends or the client disconnects (which cancels it)."""

    async def write() -> None:
        try:
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await body.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    writer = asyncio.ensure_future(write())
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait((writer, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (writer, watcher):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
