"""The stream: an async view that sends one user's notifications as SSE.

Order of work on connect: register with the hub (so live messages queue up),
read the user's state and missed notifications from the database, send them,
then go live. Live messages carry per-user seqs with no gaps, so a queued
message at or below the cursor is a duplicate of the replay (skipped) and one
beyond ``cursor + 1`` reveals a loss (the stream reads the database). Either
way each notification reaches the client exactly once, in seq order.

Deliberate choices:

- The user comes from the session only; no request parameter selects whose
  stream this is.
- A live stream sleeps on one future its subscription resolves (no task, no
  ``asyncio.wait`` per item); heartbeats and the lifetime ring one timer per
  stream, moved only when it would ring too late, so a busy stream creates no
  timer per write.
- Streams end after ``MAX_STREAM_LIFETIME`` or ``MAX_STREAM_BYTES`` sent: the
  browser reconnects with ``Last-Event-ID`` and replays. That bounds what a
  client that stops reading can make Daphne buffer (Daphne has no
  backpressure) and lets deploys and permission changes take effect.
- No ``Connection`` header (forbidden in HTTP/2); an empty
  ``Content-Encoding`` keeps GZipMiddleware from buffering the stream.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError
from django.db.models import Exists
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext

from . import compat, db
from .compat import ConnectionProbe
from .conf import app_settings
from .cors import cors_headers
from .cursor import parse_cursor
from .events import HEARTBEAT, encode_common, notification_frame, ready_frame, reset_frame
from .hub import StreamLimitExceeded, Subscription, get_hub
from .models import Inbox, Notification
from .protocol import Batch, Item, Notify, Push
from .sessions import still_signed_in, stored_sessions
from .signin import Claim, verify
from .sse import encode_comment, encode_event
from .views import json_methods

logger = logging.getLogger("sse_notify")

#: Bytes after which a stream ends and the client resumes on a new connect: bounds
#: what a client that stops reading can make the server buffer (Daphne applies no
#: backpressure). None: no budget.
MAX_STREAM_BYTES: int | None = 4 * 1024 * 1024
#: Most notifications replayed on connect; a client further behind is told to reload.
REPLAY_LIMIT = 1000
#: Bytes one connect replays: past it the stream ends after the replay and the
#: client continues on its next connect (losing nothing). With MAX_STREAMS_PER_USER
#: it bounds what a user's never-reading connections can make the server hold.
REPLAY_BYTES = 256 * 1024
#: Bytes one live chunk carries at most, and (with a connection probe) how far
#: behind its client a live stream may get before it stops writing until the
#: client reads: the missed events are read from the database later.
WRITE_BYTES = 256 * 1024
#: Seconds between checks of a connection that is that far behind.
BACKPRESSURE_WAIT = 0.5
#: Without ``sse_notify.asgi.StreamRoute`` under Daphne: seconds an ended stream
#: keeps its place in the caps (Twisted keeps an idle keep-alive connection 60 s,
#: then gives it 15 s to close).
LINGER_WITHOUT_PROBE = 75.0
CATCH_UP_PAGE = 500
MAX_BATCH = 512
#: Chunks above this size are followed by an empty one (see ``StreamLife.body``).
SMALL_CHUNK = 16 * 1024
#: A timer may ring this much early (the event loop's clock resolution).
_EARLY = 0.005


def _frame(n: Notification, unread: int) -> bytes:
    """The row's frame; empty (sent as nothing, the cursor still moves past it) if its
    content cannot be encoded: one bad row never stops its stream."""
    try:
        return notification_frame(encode_common(n.common_fields()), n.pk, n.seq, unread)
    except (UnicodeError, ValueError, TypeError) as exc:
        logger.error(
            "sse_notify: notification %s (user %s, seq %s) cannot be encoded: %s", n.pk, n.recipient_id, n.seq, exc
        )
        return b""


def _frames(rows: list[Notification], unread: int) -> list[tuple[int, bytes]]:
    return [(n.seq, _frame(n, unread)) for n in rows]


def connect_state(
    user_id: int,
    cursor: int | None,
    invalid: bool,
    budget: float = float("inf"),
    session_key: str | None = None,
    claim: Claim | None = None,
) -> dict[str, Any]:
    """Everything a stream needs on connect, in one trip to the database threads.

    First the session is checked again: the stream is registered with the hub by
    now, so a sign-out from here on reaches it, and one before is seen here. With
    a ``claim`` (``asgi.StreamRoute``: the session row read, the user not yet) the
    user is checked here too, in the same query as the inbox row
    (``signin.verify``); the route hands a refused connect to the view.

    Frames are built up to ``budget`` bytes (at least one): the rest comes on the
    client's next connect, so one connect never holds more than the budget.
    """
    if claim is not None:
        inbox = verify(claim)
        if inbox is None:
            return {"signed_out": True}
        last_seq, pruned_seq, unread = inbox
    else:
        # Inbox.unread is kept by every path that changes read state (mark_read, sends,
        # deletes), so the connect costs one query here, not a COUNT over the user's rows;
        # with a database-backed session engine the same query re-checks the session.
        query = Inbox.objects.filter(user_id=user_id)
        stored = stored_sessions(session_key) if session_key is not None else None
        if stored is not None:
            query = query.annotate(signed_in=Exists(stored))
        row = query.values_list(
            "last_seq", "pruned_seq", "unread", *(["signed_in"] if stored is not None else [])
        ).first()
        if session_key is None:
            signed = True
        elif stored is not None and row is not None:
            signed = bool(row[3])
        else:
            signed = still_signed_in(session_key, user_id)  # no inbox row yet, or sessions not in the database
        if not signed:
            return {"signed_out": True}
        last_seq, pruned_seq, unread = row[:3] if row is not None else (0, 0, 0)
    reason = None
    if invalid:
        reason = "invalid_cursor"
    elif cursor is not None and cursor > last_seq:
        reason = "unknown_cursor"
    elif cursor is not None and cursor < pruned_seq:
        reason = "expired"
    elif cursor is not None and last_seq - cursor > REPLAY_LIMIT:
        reason = "too_far_behind"
    if cursor is None or reason is not None:
        return {"cursor": last_seq, "unread": unread, "reset": reason, "frames": []}
    if cursor == last_seq:  # nothing was sent after the cursor: skip the empty replay query
        return {"cursor": cursor, "unread": unread, "reset": None, "frames": []}
    rows = list(Notification.objects.filter(recipient_id=user_id).after(cursor).select_related("actor")[:REPLAY_LIMIT])
    frames: list[tuple[int, bytes]] = []
    size = 0
    for n in rows:
        if size >= budget and frames:
            break
        frame = _frame(n, unread)
        frames.append((n.seq, frame))
        size += len(frame)
    return {"cursor": cursor, "unread": unread, "reset": None, "frames": frames, "more": len(frames) < len(rows)}


def catch_up(user_id: int, cursor: int) -> tuple[list[tuple[int, bytes]], int]:
    """The next page after ``cursor``, and the user's last seq read *before* it.

    If no row comes after the cursor, every seq up to that last seq was deleted
    (admin, prune): the poll must stop sending the stream here for them.
    """
    last_seq, unread = Inbox.objects.filter(user_id=user_id).values_list("last_seq", "unread").first() or (0, 0)
    rows = list(Notification.objects.filter(recipient_id=user_id).after(cursor).select_related("actor")[:CATCH_UP_PAGE])
    return (_frames(rows, unread) if rows else []), last_seq


class State(enum.Enum):
    CONNECTING = "connecting"  # registering with the hub, reading the connect state
    REPLAYING = "replaying"  # sending what the client missed (one budget per connect)
    LIVE = "live"  # hub items, catch-up pages and heartbeats
    ENDING = "ending"  # the last bytes are out; the client reconnects (or stops on 403)
    ENDED = "ended"  # left the hub


class StreamLife:
    """One stream from connect to end, as an object: caps, budgets, sign-out and
    shutdown each have one place here, and it runs without a server (iterate ``body()``).

    What was sent is not kept: chunks are built, yielded and dropped; the replay
    and catch-up pages live only inside the call that builds them.
    """

    def __init__(
        self,
        user_id: int,
        *,
        ip: str | None = None,
        session_key: str | None = None,
        raw_cursor: str | None = None,
        probe: ConnectionProbe | None = None,
        linger: float = 0.0,
        request_thread: bool = True,
        claim: Claim | None = None,
    ) -> None:
        self.user_id = user_id
        #: ``asgi.StreamRoute``: the session's claim, checked against the user once registered.
        self.claim = claim
        #: Served through Django's handler, which keeps a thread (and maybe a database
        #: connection) for the request: released on connect. ``asgi.StreamRoute`` has none.
        self.request_thread = request_thread
        self.probe = probe
        self.linger = linger
        self.ip = ip
        self.session_key = session_key
        self.raw_cursor = raw_cursor
        self.state = State.CONNECTING
        self.sub: Subscription | None = None
        #: Last seq sent to the client.
        self.cursor = 0
        #: Bytes sent so far (the stream ends past ``MAX_STREAM_BYTES``).
        self.sent = 0
        #: Why the stream ended (``lifetime``, ``bytes``, ``signed_out``, ``database``, a cap code...).
        self.end_reason: str | None = None
        #: The stream's one timer (heartbeat, lifetime), while it sleeps or after.
        self._timer: asyncio.TimerHandle | None = None
        self._heartbeat = 15.0
        #: When the stream last wrote (a heartbeat is due ``HEARTBEAT`` after).
        self._quiet_since = 0.0
        #: At least the bytes its connection holds unread (see ``_client_behind``).
        self._unread_bound = 0
        self._deadline = 0.0
        self._budget = float("inf")
        #: Highest seq known to be deleted: the poll need not look for it.
        self._horizon = 0
        #: True once the server ended the response (its client may not have read it all).
        self._server_ended = False
        #: True once connected: registered, signed in, the first chunk built.
        self._opened = False

    async def open(self) -> bytes | None:
        """Connect before anything is sent (``asgi.StreamRoute``): the first chunk, or
        None if this stream is not served (it left the hub; the view answers the
        request instead: signed out, refused, over a cap, stopping, database down).
        Then send ``body(first)``."""
        try:
            chunk = await self._connect()
        except BaseException:
            self.close()
            raise
        if chunk is None or not self._opened:
            self.close()
            return None
        return chunk

    async def body(self, first: bytes | None = None) -> AsyncIterator[bytes]:
        """The response body (after ``open()``: give its chunk as ``first``).
        Chunks are dropped once yielded (an idle stream holds none)."""
        try:
            chunk = first if first is not None else await self._connect()
            while chunk is not None:
                big = len(chunk) > SMALL_CHUNK
                yield chunk
                chunk = None
                if big:
                    # Django's response loop keeps the last part it sent until the next
                    # one: hand it an empty one (nothing on the wire) to let go of this.
                    yield b""
                chunk = await self._next()
            self._server_ended = True
        finally:
            self.close()

    def close(self) -> None:
        """Leave the hub. Idempotent; safe from ``finally`` during cancellation."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.sub is not None:
            self.sub.close(unread=self._server_ended)
        self.state = State.ENDED

    def _end(self, reason: str) -> None:
        self.state = State.ENDING
        self.end_reason = reason

    # -- connecting and replaying ----------------------------------------------------------------

    async def _connect(self) -> bytes | None:
        # Subscribed here, not in the view: if the client leaves before Django starts
        # iterating the body, nothing was registered, so nothing can leak.
        try:
            self.sub = sub = await get_hub().subscribe(self.user_id, self.ip, self.session_key, self.probe, self.linger)
        except StreamLimitExceeded as exc:
            # Requests that raced past the view's check together (or the server began to
            # stop): the status is sent already, so end at once and say when to retry.
            self._end(exc.code)
            return encode_comment(exc.code) + encode_event(retry=exc.retry_ms())
        if self.request_thread:
            # Whatever middleware opened in this request's own thread is released now.
            await sync_to_async(db.close_request_connections, thread_sensitive=True)()
            # ...and so is the request's own thread: an open stream holds no OS thread.
            db.release_request_thread()
        raw_cursor = self.raw_cursor
        cursor = parse_cursor(raw_cursor)
        invalid = raw_cursor is not None and raw_cursor != "" and cursor is None
        if invalid:
            logger.info(
                "sse_notify: user %s sent an invalid cursor %r; starting from the present",
                self.user_id,
                (raw_cursor or "")[:40],
            )
        max_bytes = MAX_STREAM_BYTES
        self._budget = float("inf") if max_bytes is None else int(max_bytes)
        try:
            replay = min(self._budget, REPLAY_BYTES)
            state = await db.run(connect_state, self.user_id, cursor, invalid, replay, self.session_key, self.claim)
        except DatabaseError as exc:
            db.log_error("stream connect", exc)
            self._end("database")
            return None  # the client reconnects and replays once the database is back
        if sub.ended:
            self._end(sub.ended)  # signed out (or stopping) while connecting
            return None
        if state.get("signed_out"):
            # Signed out between the view's check and the registration: the reconnect gets 403.
            self._end("signed_out")
            return None
        self.state = State.REPLAYING
        self._opened = True
        cursor = state["cursor"]
        head = [ready_frame(cursor, state["unread"], int(app_settings.RETRY_MS))]
        if state["reset"]:
            if state["reset"] not in ("invalid_cursor",):
                logger.info("sse_notify: user %s cursor %s: %s", self.user_id, raw_cursor, state["reset"])
            head.append(reset_frame(cursor, state["unread"], state["reset"]))
        sent = sum(map(len, head))
        for seq, frame in state["frames"]:
            head.append(frame)
            sent += len(frame)
            cursor = seq
        more = state.get("more", False)
        del state
        self.cursor = sub.cursor = cursor
        self.sent = self._unread_bound = sent
        self._quiet_since = asyncio.get_running_loop().time()
        if more:
            self._end("replay_budget")  # the client continues on its next connect
        elif sent >= self._budget:
            self._end("bytes")
        else:
            self.state = State.LIVE
            loop = asyncio.get_running_loop()
            self._deadline = loop.time() + float(app_settings.MAX_STREAM_LIFETIME) * random.uniform(0.9, 1.0)
        return b"".join(head)

    # -- live ------------------------------------------------------------------------------------

    async def _next(self) -> bytes | None:
        """The next chunk to send (a heartbeat when idle), or None at the end."""
        if self.state is not State.LIVE:
            return None
        sub = self.sub
        assert sub is not None
        loop = asyncio.get_running_loop()
        self._heartbeat = float(app_settings.HEARTBEAT)
        while True:
            if sub.ended:
                self._end(sub.ended)
                return None  # signed out: the client reconnects and is refused; shutdown: resumes elsewhere
            now = loop.time()
            if now >= self._deadline:
                self._end("lifetime")
                return None
            if self._client_behind():
                # Its client is that far behind: write nothing more until it reads. The
                # queue may overflow meanwhile; the stream reads the database after.
                await asyncio.sleep(BACKPRESSURE_WAIT)
                continue
            need_db = sub.behind
            out: list[bytes] = []
            if not need_db:
                if not sub.items:
                    await self._sleep(sub, loop)
                    if sub.ended:
                        # Woken to end (signed out, stopping): send nothing more, not even
                        # what was queued or what the database holds.
                        self._end(sub.ended)
                        return None
                    if not sub.items:
                        if sub.behind:
                            continue
                        now = loop.time()
                        if now >= self._deadline:
                            continue
                        if now - self._quiet_since >= self._heartbeat - _EARLY:
                            return self._sent(HEARTBEAT, now)
                        continue  # woken early (its timer was set before the last write)
                items = sub.take(MAX_BATCH)
                need_db = self._take(items, out)
                del items
            if need_db:
                await self._catch_up(out)
            sub.cursor = max(self.cursor, self._horizon)
            if out:
                chunk = b"".join(out) if len(out) > 1 else out[0]
                if self.sent + len(chunk) >= self._budget:
                    self._end("bytes")
                return self._sent(chunk, loop.time())

    def _sent(self, chunk: bytes, now: float) -> bytes:
        """Count ``chunk`` as written (bytes budget, heartbeat, pending bound) and return it."""
        self.sent += len(chunk)
        self._quiet_since = now
        self._unread_bound += len(chunk)
        return chunk

    def _client_behind(self) -> bool:
        """True if the connection holds more than ``WRITE_BYTES`` its client has not taken.

        The probe (a syscall) runs only when it could be true: what it last found
        plus what was written since is an upper bound of what is pending now.
        """
        if self.probe is None or self._unread_bound <= WRITE_BYTES:
            return False
        pending = self.probe.pending()
        self._unread_bound = pending
        return pending > WRITE_BYTES

    async def _sleep(self, sub: Subscription, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until an item comes, the stream must end, or it is time for a heartbeat
        (or the end of its lifetime). Returns early at times: the caller checks why."""
        waiter = sub.waiter = loop.create_future()
        # One timer per stream, moved only when it would ring too late: a busy stream
        # creates no timer per wake-up (the timer finds it was written to, and waits on).
        due = min(self._quiet_since + self._heartbeat, self._deadline)
        timer = self._timer
        if timer is None or timer.when() > due:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(due, self._ring)
        try:
            await waiter
        finally:
            if sub.waiter is waiter:
                sub.waiter = None

    def _ring(self) -> None:
        """The stream's timer: wake it if its heartbeat (or lifetime) is due, else wait on."""
        self._timer = None
        sub = self.sub
        if sub is None or self.state is not State.LIVE:
            return
        loop = asyncio.get_running_loop()
        due = min(self._quiet_since + self._heartbeat, self._deadline)
        if loop.time() < due - _EARLY:
            self._timer = loop.call_at(due, self._ring)
            return
        sub.wake()

    def _take(self, items: list[Item], out: list[bytes]) -> bool:
        """Append the frames of hub items to ``out``; True if the database must be read."""
        need_db = False
        cursor = self.cursor
        for item in items:
            if isinstance(item, Batch):
                assert self.sub is not None
                self.sub.queued_bytes -= item.size
                notes: tuple[Notify, ...] = item.notes
            elif isinstance(item, Notify):
                notes = (item,)
            elif isinstance(item, Push):
                out.append(item.frame)
                continue
            else:  # Sync (End arrives as sub.ended plus a Sync)
                need_db = True
                continue
            for note in notes:
                if note.seq <= cursor:
                    continue  # already sent (replay seam, catch-up, other path)
                if note.seq == cursor + 1 and not need_db:
                    out.append(note.frame)
                    cursor = note.seq
                else:
                    need_db = True  # a gap: something was dropped on the way
        self.cursor = cursor
        return need_db

    async def _catch_up(self, out: list[bytes]) -> None:
        """Read one page after the cursor, cut at the byte budget, into ``out``."""
        sub = self.sub
        assert sub is not None
        sub.behind = False
        try:
            # One page per turn, cut at the byte budget, so a stream far behind never
            # holds more than a page (or the budget) in memory at once.
            page, last_seq = await db.run(catch_up, self.user_id, self.cursor)
        except DatabaseError as exc:
            db.log_error("stream catch-up", exc)
            sub.behind = True
            await asyncio.sleep(min(float(app_settings.HEARTBEAT), float(app_settings.POLL_INTERVAL)))
            out.append(HEARTBEAT)  # keeps proxies from cutting a stream waiting on the database
            return
        room = min(self._budget - self.sent, WRITE_BYTES) - sum(map(len, out))
        taken = 0
        cut = False
        for seq, frame in page:
            if seq <= self.cursor:
                continue
            if room <= 0 and taken:
                cut = True
                break
            out.append(frame)
            room -= len(frame)
            self.cursor = seq
            taken += 1
        full, empty = len(page) >= CATCH_UP_PAGE, not page
        del page
        if cut or full:
            sub.behind = True  # more to read on the next turn
        if empty:
            self._horizon = max(self._horizon, last_seq)  # seqs up to here were deleted


def stream_life(
    user_id: int,
    ip: str | None,
    raw_cursor: str | None,
    session_key: str | None,
    probe: ConnectionProbe | None = None,
    request_thread: bool = True,
    claim: Claim | None = None,
) -> StreamLife:
    """One stream, for the view and for ``asgi.StreamRoute`` (one code path)."""
    return StreamLife(
        user_id,
        ip=ip,
        session_key=session_key,
        raw_cursor=raw_cursor,
        probe=probe,
        # Without a probe under Daphne, an ended stream's unread bytes stay until
        # Twisted's idle timeout: count it that long. Other servers apply backpressure.
        linger=0.0 if probe is not None or not compat.served_by_twisted() else LINGER_WITHOUT_PROBE,
        request_thread=request_thread,
        claim=claim,
    )


def stream_body(
    user_id: int,
    ip: str | None,
    raw_cursor: str | None,
    session_key: str | None,
    probe: ConnectionProbe | None = None,
    request_thread: bool = True,
) -> AsyncIterator[bytes]:
    """The body of one stream (the view's)."""
    return stream_life(user_id, ip, raw_cursor, session_key, probe, request_thread).body()


def _session_user(request: HttpRequest) -> Any:
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser

    if not request.COOKIES.get(settings.SESSION_COOKIE_NAME, "").isprintable():
        # No session engine issues such a key; PostgreSQL would refuse the lookup (a NUL),
        # which must not pass for a database outage ("unavailable" and a warning).
        user: Any = AnonymousUser()
        request.user = user
        return user
    user = get_user(request)
    request.user = user  # what later code in this request reads, without a second query
    return user


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def come_back_later(code: str, retry_ms: int, headers: dict[str, str]) -> HttpResponse:
    """200 ``text/event-stream`` that ends at once and asks for a reconnect in ``retry_ms``.

    Any other status (429, 503) ends a native ``EventSource`` for good, so the
    server's "not now" must be a valid, empty stream: a comment naming why and a
    ``retry:``. It is tiny and takes no slot, so it cannot be used to pin memory.
    """
    response = HttpResponse(
        encode_comment(code) + encode_event(retry=retry_ms), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache, no-store"
    response["Retry-After"] = str(max(1, retry_ms // 1000))
    for name, value in headers.items():
        response[name] = value
    return response


#: Scope key of the connection probe set by ``asgi.StreamRoute`` (see there).
CONNECTION = "sse_notify.connection"


@login_not_required  # answers 403 itself; LoginRequiredMiddleware's redirect would be read as a stream
@json_methods("GET")
async def stream(request: HttpRequest) -> HttpResponseBase:
    """``GET`` → ``text/event-stream`` of the signed-in user's notifications."""
    if not isinstance(request, ASGIRequest):
        logger.error("sse_notify: the stream needs an ASGI server (Daphne, uvicorn); this request came through WSGI")
        return JsonResponse(
            {
                "error": "asgi_required",
                "detail": gettext("The notification stream is served only over ASGI (e.g. Daphne)."),
            },
            status=501,
        )
    headers = cors_headers(request)
    # Session and user are read on the shared database threads: in this request's
    # own thread every connect would open (and close) a new database connection.
    try:
        user = await db.run(_session_user, request)
    except DatabaseError as exc:
        # Database down: every client reconnecting would log a traceback (a storm); say
        # it once per 10 s and ask the client to come back (it replays from its cursor).
        db.log_error("stream sign-in check", exc)
        return come_back_later("unavailable", int(app_settings.RETRY_MS), headers)
    if not user.is_authenticated:
        return JsonResponse(
            {"error": "not_authenticated", "detail": gettext("Sign in to receive notifications.")},
            status=403,
            headers=headers,
        )
    raw_cursor = request.headers.get("Last-Event-ID")
    if raw_cursor is None:
        raw_cursor = request.GET.get("cursor")
    ip = client_ip(request)
    try:
        get_hub().check_limits(user.pk, ip)
    except StreamLimitExceeded as exc:
        return come_back_later(exc.code, exc.retry_ms(), headers)
    body = stream_body(
        user.pk,
        ip,
        raw_cursor,
        getattr(getattr(request, "session", None), "session_key", None),
        request.scope.get(CONNECTION),
    )
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    response["Content-Encoding"] = ""
    for name, value in headers.items():
        response[name] = value
    return response
