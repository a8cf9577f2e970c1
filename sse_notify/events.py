"""The stream's events: names, payloads and their SSE frames.

Event kinds (the ``event:`` field):

``ready``         first event of every stream: ``{"cursor": N, "unread": n}``.
``notification``  ``id:`` is the recipient's seq (the resume cursor); data is the
                  notification plus the user's unread count after it.
``read``          read state changed elsewhere (another tab or device):
                  ``{"ids": [...] | null (all), "read": bool, "unread": n}``. No ``id:``,
                  so it never moves the browser's Last-Event-ID.
``preferences``   the user changed their preferences (another tab, device or an
                  email's unsubscribe link): ``{"preferences": [...]}`` as
                  ``preferences.user_preferences`` returns it. No ``id:``.
``reset``         the client's list is stale (cursor unknown, expired or too far
                  behind): reload it. ``id:`` moves the cursor to the present.

A send to many users shares everything but ``id``, ``seq`` and ``unread``; the
shared part is JSON-encoded once per send and spliced into each user's frame.
"""

from __future__ import annotations

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .sse import encode_comment, encode_event

HEARTBEAT = encode_comment("ping")

#: Characters some SSE clients take for line breaks (httpx-sse, Python's
#: ``str.splitlines``): escaped in the JSON, which stays valid and equal.
_LINE_LIKE = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


_ENCODE = DjangoJSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """Compact JSON for the wire: non-ASCII kept (smaller), line-like characters escaped."""
    text = _ENCODE(value)
    # ``isascii`` is a flag check: most payloads skip the (per-character) translate.
    return text if text.isascii() else text.translate(_LINE_LIKE)


def encode_common(fields: dict[str, Any]) -> str:
    """Encode the shared fields as a JSON object body without its braces."""
    return dumps(fields)[1:-1]


#: A notification's frame: ``FRAME % (seq, pk, seq, unread, common as UTF-8)``. One
#: bytes format per event; the shared part is encoded once per send.
FRAME = b'id: %d\nevent: notification\ndata: {"id":%d,"seq":%d,"unread":%d,%b}\n\n'


def notification_frame(common: str, pk: int, seq: int, unread: int) -> bytes:
    # ``dumps`` never emits a raw CR, LF, U+0085, U+2028 or U+2029: the data is one
    # line for every client, and safe to splice.
    return FRAME % (int(seq), int(pk), int(seq), int(unread), common.encode())


def ready_frame(cursor: int, unread: int, retry_ms: int) -> bytes:
    return encode_event(dumps({"cursor": cursor, "unread": unread}), event="ready", retry=retry_ms)


def read_frame(ids: list[int] | None, read: bool, unread: int) -> bytes:
    return encode_event(dumps({"ids": ids, "read": read, "unread": unread}), event="read")


def reset_frame(cursor: int, unread: int, reason: str) -> bytes:
    return encode_event(dumps({"cursor": cursor, "unread": unread, "reason": reason}), event="reset", id=str(cursor))


def preferences_frame(preferences: list[Any]) -> bytes:
    """The user's notification preferences changed (another tab or device): ``{"preferences": [...]}``."""
    return encode_event(dumps({"preferences": preferences}), event="preferences")
