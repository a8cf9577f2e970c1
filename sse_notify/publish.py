"""After-commit publishing to the channel layer: the fast path, never the truth.

Each process's hub is in the broadcast group and in the group of every user it
has a stream for. A send to a few users goes to their groups; a send to many
goes once to the broadcast group carrying the per-user ids, and every hub keeps
only the users it serves, so a broadcast crosses the layer once per process.

Failure here is logged, never raised: the rows are committed and the hubs'
database poll delivers them (see ``POLL_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync

from .conf import app_settings
from .events import dumps, encode_common
from .protocol import (
    BROADCAST_GROUP,
    Deliver,
    DeliverMany,
    Message,
    PreferencesChanged,
    ReadChange,
    SignOut,
    user_group,
)
from .signals import notification_sent

if TYPE_CHECKING:
    from .models import Notification

logger = logging.getLogger("sse_notify")

#: Seconds a round of layer operations (a publish, a hub's group join) may take
#: before it is given up: the rows are committed, and the hubs' database poll
#: delivers what the layer did not bring.
PUBLISH_TIMEOUT = 2.0
#: Recipients above which a send crosses the layer once, through the broadcast
#: group, instead of once per user group. 0 turns per-user groups off: every
#: process receives every send (the benchmark's ``redis-all`` target).
GROUP_SEND_THRESHOLD = 16
#: Seconds between two warnings of failed publishes in one process: a sender in a
#: loop would otherwise log every send of a Redis outage (the hubs' own warnings
#: and the database's errors are limited alike).
WARN_INTERVAL = 10.0
_quiet_until = 0.0
_unlogged = 0

Send = tuple[str, dict[str, Any]]


def get_layer() -> Any:
    from channels.layers import get_channel_layer

    try:
        return get_channel_layer(app_settings.CHANNEL_LAYER)
    except Exception:  # a misconfigured layer is reported by the system checks
        logger.warning("sse_notify: channel layer %r unusable", app_settings.CHANNEL_LAYER, exc_info=True)
        return None


def deliveries(notifications: Iterable[Notification]) -> list[Deliver]:
    """Group notifications by their shared content: one message per distinct send."""
    shared = getattr(notifications, "shared_content", None)
    if shared is not None:  # one set-based send (models.SentNotifications): content encoded once, not per row
        return [Deliver(encode_common(common), tuple((u, p, s, n) for u, p, s, n in items)) for common, items in shared]
    by_common: dict[str, list[tuple[int, int, int, int]]] = {}
    shells: dict[tuple[Any, ...], tuple[str, str] | None] = {}
    for n in notifications:
        common = _encode_row(n, shells)
        unread = getattr(n, "_unread_after", 0)
        by_common.setdefault(common, []).append((n.recipient_id, n.pk, n.seq, unread))
    return [Deliver(common, tuple(rows)) for common, rows in by_common.items()]


#: ``Notification.common_fields()``'s keys, in order, around the two that differ per row
#: in a personal send (``data``, ``created``).
_HEAD = ("title", "body", "level", "url", "href")
_TAIL = ("actor", "category", "group", "in_app", "desktop")
_LAYOUT = [*_HEAD, "data", "created", *_TAIL]


def _encode_row(n: Notification, shells: dict[tuple[Any, ...], tuple[str, str] | None]) -> str:
    """``encode_common(n.common_fields())``, with what rows of one send share encoded once.

    A personal send (``bulk_create`` with per-user ``data``) differs per row only in
    ``data`` and ``created``: the rest is encoded once per distinct value and the
    row's two fields are spliced in (the same text: JSON of a dict is the JSON of its
    members in order). Falls back to the whole encode if the fields' layout changes.
    """
    key = (n.title, n.body, n.level, n.url, n.actor_id, n.category, n.group_key, n.in_app, n.desktop)
    if key not in shells:
        fields = n.common_fields()
        if list(fields) != _LAYOUT:
            shells[key] = None
        else:
            head = encode_common({k: fields[k] for k in _HEAD})
            tail = encode_common({k: fields[k] for k in _TAIL})
            shells[key] = (head, tail)
    shell = shells[key]
    if shell is None:
        return encode_common(n.common_fields())
    head, tail = shell
    # isoformat() is ASCII digits and separators: nothing in it needs escaping.
    return f'{head},"data":{dumps(n.data)},"created":"{n.created_at.isoformat()}",{tail}'


def deliver_messages(notifications: Iterable[Notification]) -> list[dict[str, Any]]:
    """The encoded deliver messages for ``notifications`` (as the layer carries them)."""
    return [d.encode() for d in deliveries(notifications)]


def sends_for(message: Message) -> list[Send]:
    """Where ``message`` goes: each recipient's group, or once to the broadcast group
    when it has more than ``GROUP_SEND_THRESHOLD`` recipients (or must reach every process)."""
    users = sorted(message.recipients())
    if message.BROADCAST or len(users) > GROUP_SEND_THRESHOLD:
        return [(BROADCAST_GROUP, message.encode())]
    if len(users) == 1:
        return [(user_group(users[0]), message.encode())]
    return [(user_group(uid), message.only(uid).encode()) for uid in users]


async def _send_all(layer: Any, sends: list[Send]) -> None:
    async def _go() -> None:
        for group, message in sends:
            await layer.group_send(group, message)

    await asyncio.wait_for(_go(), PUBLISH_TIMEOUT)


def _publish(sends: list[Send]) -> None:
    if not sends:
        return
    layer = get_layer()
    if layer is None:
        logger.warning("sse_notify: no channel layer; streams will find new notifications in the database")
        return
    try:
        async_to_sync(_send_all)(layer, sends)
    except Exception as exc:
        _warn_failed(exc)


def _warn_failed(exc: Exception) -> None:
    global _quiet_until, _unlogged
    now = time.monotonic()
    if now < _quiet_until:
        _unlogged += 1
        return
    _quiet_until = now + WARN_INTERVAL
    more, _unlogged = _unlogged, 0
    logger.warning(
        "sse_notify: publish to channel layer failed (%s: %s); streams will find the notifications in the database%s",
        type(exc).__name__,
        str(exc) or f"no answer within {PUBLISH_TIMEOUT} s",  # a timeout's own text is empty
        f" ({more} more failed publish(es) since the last warning)" if more else "",
    )


def created_sends(notifications: Iterable[Notification]) -> list[Send]:
    """The layer sends for newly created notifications.

    Up to ``GROUP_SEND_THRESHOLD`` recipients: one message per user group (several
    notifications to one user travel together). More: everything goes in one
    message to the broadcast group, even when each user's notification differs
    (``DeliverMany``), so a 10,000-user send is one layer message per process
    instead of 10,000 (which would overflow the hub's channel capacity and leave
    delivery to the database poll).
    """
    parts = deliveries(notifications)
    if len(parts) == 1:
        return sends_for(parts[0])
    many = DeliverMany(tuple(parts))
    recipients = many.recipients()
    if len(recipients) > GROUP_SEND_THRESHOLD:
        return [(BROADCAST_GROUP, many.encode())]
    if len(recipients) == 1:  # a burst to one user: the whole message is theirs
        return [(user_group(next(iter(recipients))), many.encode())]
    # A burst to a few users: one message per user group, not one per notification.
    return [(user_group(uid), many.only(uid).encode()) for uid in sorted(recipients)]


def publish_created(notifications: Sequence[Notification]) -> None:
    """Called on commit: wake the recipients' streams, then tell integrators."""
    _publish(created_sends(notifications))
    for receiver, result in notification_sent.send_robust(
        sender=notifications[0].__class__, notifications=notifications
    ):
        if isinstance(result, Exception):
            logger.error("sse_notify: notification_sent receiver %r failed", receiver, exc_info=result)


def publish_read(changes: Mapping[int, tuple[int, list[int] | None]], *, read: bool) -> None:
    """Called on commit of a read-state change: ``{user_id: (unread, ids or None)}``."""
    message = ReadChange(
        read, tuple((uid, unread, None if ids is None else tuple(ids)) for uid, (unread, ids) in changes.items())
    )
    _publish(sends_for(message))


def session_hash(session_key: str | None) -> str | None:
    """A stand-in for a session key on the layer: streams match it, nobody can use it."""
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def publish_signout(user_id: int, session_key: str | None) -> None:
    """End this session's open streams in every process (all the user's if no key).

    Called when a user signs out: the client reconnects, is refused with 403 and stops,
    instead of streaming until ``MAX_STREAM_LIFETIME``.
    """
    _publish(sends_for(SignOut(((user_id, session_hash(session_key)),))))


def publish_preferences(user_id: int, preferences: list[dict[str, Any]]) -> None:
    """Called on commit of a preference change: the user's open tabs update at once."""
    _publish(sends_for(PreferencesChanged(((user_id, tuple(preferences)),))))
