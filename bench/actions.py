"""What the benchmark asks of the database and the sending side (sync, Django configured).

Used in-process by the in-memory target (bench/urls.py) and by bench/sender.py,
the separate sending process of the Redis target. Every notification carries
its send time in ``data["t"]`` so the client measures send -> event parsed.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from sse_notify import publish
from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification

_published: list[float] = []
_real_publish = publish._publish


def _timed_publish(sends: Any) -> None:
    _published.append(time.time())  # the transaction has committed
    _real_publish(sends)


publish._publish = _timed_publish


def setup(n: int) -> dict[str, Any]:
    """Users bench0..bench{n-1} (created once) and a fresh signed-in session for each."""
    User = get_user_model()
    have = set(User.objects.filter(username__startswith="bench").values_list("username", flat=True))
    missing = [User(username=f"bench{i}", password="!") for i in range(n) if f"bench{i}" not in have]
    User.objects.bulk_create(missing, batch_size=1000)
    users = list(User.objects.filter(username__in=[f"bench{i}" for i in range(n)]))
    users.sort(key=lambda u: int(u.username[5:]))
    Session.objects.all().delete()
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    sessions = []
    for u in users:
        data = {
            SESSION_KEY: str(u.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: u.get_session_auth_hash(),
        }
        sessions.append(Session(session_key=uuid.uuid4().hex, session_data=store.encode(data), expire_date=expire))
    Session.objects.bulk_create(sessions, batch_size=1000)
    return {"users": [[u.pk, s.session_key] for u, s in zip(users, sessions, strict=False)]}


def cursors(ids: list[int]) -> dict[str, Any]:
    found = dict(Inbox.objects.filter(user_id__in=ids).values_list("user_id", "last_seq"))
    return {"cursors": {str(uid): found.get(uid, 0) for uid in ids}}


def _timed(fn: Any) -> dict[str, Any]:
    _published.clear()
    t0 = time.time()
    fn(t0)
    return {"t0": t0, "t_pub": _published[0] if _published else None, "t_end": time.time()}


def fanout(ids: list[int]) -> dict[str, Any]:
    """One personal notification to each user (distinct data: one row and frame each)."""
    return _timed(
        lambda t0: Notification.objects.bulk_create(
            [Notification(recipient_id=uid, title="bench fan-out", data={"t": t0, "u": uid}) for uid in ids],
            batch_size=1000,
        )
    )


def broadcast(ids: list[int]) -> dict[str, Any]:
    """The same notification to every user, through the public API."""
    User = get_user_model()
    return _timed(lambda t0: send_notification(User.objects.filter(pk__in=ids), "bench broadcast", data={"t": t0}))


def burst(uid: int, m: int) -> dict[str, Any]:
    """``m`` notifications to one user in one transaction."""
    return _timed(
        lambda t0: Notification.objects.bulk_create(
            [Notification(recipient_id=uid, title="bench burst", data={"t": t0, "i": i}) for i in range(m)],
            batch_size=1000,
        )
    )


def handle(cmd: dict[str, Any]) -> dict[str, Any]:
    op = cmd.pop("op")
    return {"setup": setup, "cursors": cursors, "fanout": fanout, "broadcast": broadcast, "burst": burst}[op](**cmd)
