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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync

from .conf import app_settings
from .events import encode_common

if TYPE_CHECKING:
    from .models import Notification

logger = logging.getLogger("sse_notify")

BROADCAST_GROUP = "sse_notify.broadcast"
DELIVER = "sse_notify.deliver"
#: Several deliver messages in one layer message: ``{"type": DELIVER_MANY,
#: "messages": [[common, items], ...]}``. A send to many users with per-user
#: content (distinct ``data``) crosses the layer once instead of once per user.
DELIVER_MANY = "sse_notify.deliver_many"
READ = "sse_notify.read"
#: A session signed out: ``{"type": SIGNOUT, "users": [[user_id, session_hash or None]]}``.
SIGNOUT = "sse_notify.signout"
#: A user changed preferences: ``{"type": PREFERENCES, "users": [[user_id, preferences]]}``.
PREFERENCES = "sse_notify.preferences"

#: Seconds a round of layer operations (a publish, a hub's group join) may take
#: before it is given up: the rows are committed, and the hubs' database poll
#: delivers what the layer did not bring.
PUBLISH_TIMEOUT = 2.0
#: Recipients above which a send crosses the layer once, through the broadcast
#: group, instead of once per user group. 0 turns per-user groups off: every
#: process receives every send (the benchmark's ``redis-all`` target).
GROUP_SEND_THRESHOLD = 16


def user_group(user_id: int) -> str:
    return f"sse_notify.user.{int(user_id)}"


def get_layer() -> Any:
    from channels.layers import get_channel_layer

    try:
        return get_channel_layer(app_settings.CHANNEL_LAYER)
    except Exception:  # a misconfigured layer is reported by the system checks
        logger.warning("sse_notify: channel layer %r unusable", app_settings.CHANNEL_LAYER, exc_info=True)
        return None


def deliver_messages(notifications: Iterable[Notification]) -> list[dict[str, Any]]:
    """Group notifications by their shared content: one message per distinct send."""
    shared = getattr(notifications, "shared_content", None)
    if shared is not None:  # one set-based send (models.SentNotifications): content encoded once, not per row
        return [{"type": DELIVER, "common": encode_common(common), "items": items} for common, items in shared]
    by_common: dict[str, list[list[int]]] = {}
    for n in notifications:
        common = encode_common(n.common_fields())
        unread = getattr(n, "_unread_after", 0)
        by_common.setdefault(common, []).append([n.recipient_id, n.pk, n.seq, unread])
    return [{"type": DELIVER, "common": common, "items": items} for common, items in by_common.items()]


def _targets(message: dict[str, Any], users: Iterable[int]) -> list[tuple[str, dict[str, Any]]]:
    users = sorted(set(users))
    if len(users) > GROUP_SEND_THRESHOLD:
        return [(BROADCAST_GROUP, message)]
    if len(users) == 1:
        return [(user_group(users[0]), message)]
    key = "items" if message["type"] == DELIVER else "users"
    return [(user_group(uid), {**message, key: [item for item in message[key] if item[0] == uid]}) for uid in users]


async def _send_all(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    async def _go() -> None:
        for group, message in sends:
            await layer.group_send(group, message)

    await asyncio.wait_for(_go(), PUBLISH_TIMEOUT)


def _publish(sends: list[tuple[str, dict[str, Any]]]) -> None:
    if not sends:
        return
    layer = get_layer()
    if layer is None:
        logger.warning("sse_notify: no channel layer; streams will find new notifications in the database")
        return
    try:
        async_to_sync(_send_all)(layer, sends)
    except Exception as exc:
        logger.warning(
            "sse_notify: publish to channel layer failed (%s: %s); streams will find the notifications in the database",
            type(exc).__name__,
            exc,
        )


def created_sends(notifications: Iterable[Notification]) -> list[tuple[str, dict[str, Any]]]:
    """The layer sends for newly created notifications.

    Up to ``GROUP_SEND_THRESHOLD`` recipients: one message per user group (several
    notifications to one user travel together). More:
    everything goes in one message to the broadcast group, even when each user's
    notification differs (``DELIVER_MANY``), so a 10,000-user send is one layer
    message per process instead of 10,000 (which would overflow the hub's
    channel capacity and leave delivery to the database poll).
    """
    messages = deliver_messages(notifications)
    recipients = {item[0] for message in messages for item in message["items"]}
    if len(messages) > 1 and len(recipients) > GROUP_SEND_THRESHOLD:
        batch = {"type": DELIVER_MANY, "messages": [[m["common"], m["items"]] for m in messages]}
        return [(BROADCAST_GROUP, batch)]
    if len(messages) > 1:
        # A burst to a few users: one message per user group, not one per notification.
        per_user: dict[int, list[list[Any]]] = {}
        for m in messages:
            for item in m["items"]:
                per_user.setdefault(item[0], []).append([m["common"], [item]])
        return [(user_group(uid), {"type": DELIVER_MANY, "messages": batch}) for uid, batch in sorted(per_user.items())]
    sends: list[tuple[str, dict[str, Any]]] = []
    for message in messages:
        sends.extend(_targets(message, (item[0] for item in message["items"])))
    return sends


def publish_created(notifications: Sequence[Notification]) -> None:
    """Called on commit: wake the recipients' streams, then tell integrators."""
    from .signals import notification_sent

    _publish(created_sends(notifications))
    for receiver, result in notification_sent.send_robust(
        sender=notifications[0].__class__, notifications=notifications
    ):
        if isinstance(result, Exception):
            logger.error("sse_notify: notification_sent receiver %r failed", receiver, exc_info=result)


def publish_read(changes: Mapping[int, tuple[int, list[int] | None]], *, read: bool) -> None:
    """Called on commit of a read-state change: ``{user_id: (unread, ids or None)}``."""
    message = {
        "type": READ,
        "read": read,
        "users": [[uid, unread, ids] for uid, (unread, ids) in changes.items()],
    }
    _publish(_targets(message, changes))


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
    message = {"type": SIGNOUT, "users": [[user_id, session_hash(session_key)]]}
    _publish(_targets(message, [user_id]))


def publish_preferences(user_id: int, preferences: list[dict[str, Any]]) -> None:
    """Called on commit of a preference change: the user's open tabs update at once."""
    message = {"type": PREFERENCES, "users": [[user_id, preferences]]}
    _publish(_targets(message, [user_id]))
