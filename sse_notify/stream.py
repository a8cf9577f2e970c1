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
- Heartbeats are timed on the stream's own queue with ``asyncio.wait``; the
  pending ``get()`` is reused across heartbeats, not cancelled.
- Streams end after ``MAX_STREAM_LIFETIME`` or ``MAX_STREAM_BYTES`` sent: the
  browser reconnects with ``Last-Event-ID`` and replays. That bounds what a
  client that stops reading can make Daphne buffer (Daphne has no
  backpressure) and lets deploys and permission changes take effect.
- No ``Connection`` header (forbidden in HTTP/2); an empty
  ``Content-Encoding`` keeps GZipMiddleware from buffering the stream.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from . import db
from .conf import app_settings
from .cors import cors_headers
from .cursor import parse_cursor
from .events import HEARTBEAT, encode_common, notification_frame, ready_frame, reset_frame
from .hub import StreamLimitExceeded, get_hub
from .models import Inbox, Notification
from .publish import session_hash
from .sse import encode_comment, encode_event

logger = logging.getLogger("sse_notify")

#: Bytes after which a stream ends and the client resumes on a new connect: bounds
#: what a client that stops reading can make the server buffer (Daphne applies no
#: backpressure). None: no budget.
MAX_STREAM_BYTES: int | None = 4 * 1024 * 1024
#: Most notifications replayed on connect; a client further behind is told to reload.
REPLAY_LIMIT = 1000
CATCH_UP_PAGE = 500
MAX_BATCH = 512


def _frames(rows: list[Notification], unread: int) -> list[tuple[int, bytes]]:
    return [(n.seq, notification_frame(encode_common(n.common_fields()), n.pk, n.seq, unread)) for n in rows]


def connect_state(user_id: int, cursor: int | None, invalid: bool) -> dict[str, Any]:
    """Everything a stream needs on connect, in one trip to the database threads."""
    # Inbox.unread is kept by every path that changes read state (mark_read, sends,
    # deletes), so the connect costs one query here, not a COUNT over the user's rows.
    last_seq, pruned_seq, unread = Inbox.objects.filter(user_id=user_id).values_list(
        "last_seq", "pruned_seq", "unread"
    ).first() or (0, 0, 0)
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
    return {"cursor": cursor, "unread": unread, "reset": None, "frames": _frames(rows, unread)}


def catch_up(user_id: int, cursor: int) -> tuple[list[tuple[int, bytes]], int]:
    """The next page after ``cursor``, and the user's last seq read *before* it.

    If no row comes after the cursor, every seq up to that last seq was deleted
    (admin, prune): the poll must stop sending the stream here for them.
    """
    last_seq, unread = Inbox.objects.filter(user_id=user_id).values_list("last_seq", "unread").first() or (0, 0)
    rows = list(Notification.objects.filter(recipient_id=user_id).after(cursor).select_related("actor")[:CATCH_UP_PAGE])
    return (_frames(rows, unread) if rows else []), last_seq


async def event_stream(
    user_id: int, ip: str | None, raw_cursor: str | None, session: str | None = None
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    get_task: asyncio.Task[Any] | None = None
    # Subscribed here, not in the view: if the client leaves before Django starts
    # iterating the body, nothing was registered, so nothing can leak.
    try:
        sub = await get_hub().subscribe(user_id, ip, session)
    except StreamLimitExceeded as exc:
        # Requests that raced past the view's check together: the status is sent
        # already, so end at once and ask the browser to wait before retrying.
        yield encode_comment(exc.code) + encode_event(retry=int(app_settings.RETRY_MS) * 10)
        return
    try:
        # Whatever middleware opened in this request's own thread is released now.
        await sync_to_async(db.close_request_connections, thread_sensitive=True)()
        # ...and so is the request's own thread: an open stream holds no OS thread.
        db.release_request_thread()
        cursor = parse_cursor(raw_cursor)
        invalid = raw_cursor is not None and raw_cursor != "" and cursor is None
        if invalid:
            logger.info(
                "sse_notify: user %s sent an invalid cursor %r; starting from the present",
                sub.user_id,
                (raw_cursor or "")[:40],
            )
        try:
            state = await db.run(connect_state, sub.user_id, cursor, invalid)
        except Exception as exc:
            db.log_error("stream connect", exc)
            return  # the client reconnects and replays once the database is back
        max_bytes = MAX_STREAM_BYTES
        budget = float("inf") if max_bytes is None else int(max_bytes)
        cursor = state["cursor"]
        head = [ready_frame(cursor, state["unread"], int(app_settings.RETRY_MS))]
        if state["reset"]:
            if state["reset"] not in ("invalid_cursor",):
                logger.info("sse_notify: user %s cursor %s: %s", sub.user_id, raw_cursor, state["reset"])
            head.append(reset_frame(cursor, state["unread"], state["reset"]))
        sent = sum(map(len, head))
        for replayed, (seq, frame) in enumerate(state["frames"]):
            if sent >= budget and replayed:
                break  # over the byte budget: end after this chunk; the client resumes from here
            head.append(frame)
            sent += len(frame)
            cursor = seq
        sub.cursor = cursor
        yield b"".join(head)
        if sent >= budget:
            return

        lifetime = float(app_settings.MAX_STREAM_LIFETIME) * random.uniform(0.9, 1.0)
        deadline = loop.time() + lifetime
        heartbeat = float(app_settings.HEARTBEAT)
        horizon = 0  # highest seq known to be deleted: the poll need not look for it
        while True:
            if loop.time() >= deadline or sub.ended:
                return  # lifetime over, or the session signed out: the client reconnects
            need_db = sub.behind
            out: list[bytes] = []
            if not need_db:
                if get_task is None:
                    get_task = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait((get_task,), timeout=min(heartbeat, max(0.0, deadline - loop.time())))
                if not done:
                    if loop.time() >= deadline:
                        return
                    yield HEARTBEAT
                    continue
                items = [get_task.result()]
                get_task = None
                while len(items) < MAX_BATCH:
                    try:
                        items.append(sub.queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                for item in items:
                    seq, frame = item
                    if frame is None:  # SYNC: check the database
                        need_db = True
                    elif seq is None:
                        out.append(frame)
                    elif seq <= cursor:
                        continue  # already sent (replay seam, catch-up, other path)
                    elif seq == cursor + 1 and not need_db:
                        out.append(frame)
                        cursor = seq
                    else:
                        need_db = True  # a gap: something was dropped on the way
            if need_db:
                sub.behind = False
                try:
                    # One page per turn, cut at the byte budget, so a stream far behind
                    # never holds more than a page (or the budget) in memory at once.
                    page, last_seq = await db.run(catch_up, sub.user_id, cursor)
                    room = budget - sent - sum(map(len, out))
                    taken = 0
                    for seq, frame in page:
                        if seq <= cursor:
                            continue
                        if room <= 0 and taken:
                            break
                        out.append(frame)
                        room -= len(frame)
                        cursor = seq
                        taken += 1
                    if len(page) >= CATCH_UP_PAGE:
                        sub.behind = True  # more to read on the next turn
                    if not page:
                        horizon = max(horizon, last_seq)  # seqs up to here were deleted
                except Exception as exc:
                    db.log_error("stream catch-up", exc)
                    sub.behind = True
                    await asyncio.sleep(min(heartbeat, float(app_settings.POLL_INTERVAL)))
                    out.append(HEARTBEAT)  # keeps proxies from cutting a stream waiting on the database
            sub.cursor = max(cursor, horizon)
            if out:
                chunk = b"".join(out)
                sent += len(chunk)
                yield chunk
                if sent >= budget:
                    return
    finally:
        if get_task is not None:
            get_task.cancel()
        sub.close()


def _session_user(request: HttpRequest) -> Any:
    from django.contrib.auth import get_user

    user = getattr(request, "_cached_user", None) or get_user(request)
    request.user = request._cached_user = request._acached_user = user  # type: ignore[attr-defined]
    return user


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@require_GET
async def stream(request: HttpRequest) -> HttpResponseBase:
    """``GET`` → ``text/event-stream`` of the signed-in user's notifications."""
    if not isinstance(request, ASGIRequest):
        logger.error("sse_notify: the stream needs an ASGI server (Daphne, uvicorn); this request came through WSGI")
        return JsonResponse(
            {"error": "asgi_required", "detail": "The notification stream is served only over ASGI (e.g. Daphne)."},
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
        return JsonResponse(
            {"error": "unavailable", "detail": "Notifications are unavailable for a moment; retry."},
            status=503,
            headers={**headers, "Retry-After": str(max(1, int(app_settings.RETRY_MS) // 1000))},
        )
    if not user.is_authenticated:
        return JsonResponse(
            {"error": "not_authenticated", "detail": "Sign in to receive notifications."}, status=403, headers=headers
        )
    raw_cursor = request.headers.get("Last-Event-ID")
    if raw_cursor is None:
        raw_cursor = request.GET.get("cursor")
    ip = client_ip(request)
    try:
        get_hub().check_limits(user.pk, ip)
    except StreamLimitExceeded as exc:
        return JsonResponse(
            {"error": exc.code, "detail": exc.detail},
            status=exc.status,
            headers={**headers, "Retry-After": str(max(1, int(app_settings.RETRY_MS) // 1000) * 10)},
        )
    response = StreamingHttpResponse(
        event_stream(user.pk, ip, raw_cursor, session_hash(getattr(request.session, "session_key", None))),
        content_type="text/event-stream; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    response["Content-Encoding"] = ""
    for name, value in headers.items():
        response[name] = value
    return response
