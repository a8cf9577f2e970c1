"""The one protocol between publishers and hubs: layer messages and stream items.

Publishers (``publish``) build typed messages; the channel layer carries their
``encode()`` form (plain dicts and lists, msgpack-safe); hubs ``decode()`` them
and ask each message for the items its local streams should get. This module
is the only place that knows the wire shape, so an event type is one class here
(plus its SSE frame in ``events``) and its test.

Imports flow one way: ``events`` ← ``protocol`` ← ``publish`` / ``hub`` ← ``stream``.

Stream items (what a hub puts in a stream's queue) are typed too:

``Notify``   a notification frame with its per-user ``seq`` (gap-checked).
``Batch``    several ``Notify`` of one user from one layer message, in one queue slot:
           a burst of 2,000 to one user is written at once instead of overflowing
           the stream's queue and being read back from the database.
``Push``     a frame without a seq (read state); never moves the cursor.
``Sync``     "look in the database" (poll nudge, overflow, layer back).
``End``      the stream must end (its session signed out).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .events import notification_frame, preferences_frame, read_frame

logger = logging.getLogger("sse_notify")

BROADCAST_GROUP = "sse_notify.broadcast"


def user_group(user_id: int) -> str:
    """The layer group of one user's hubs. Built from the server-side user, never from a request."""
    return f"sse_notify.user.{int(user_id)}"


# -- stream items ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notify:
    seq: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    notes: tuple[Notify, ...]
    #: Bytes of the frames (the hub bounds what one stream may have queued).
    size: int

    @classmethod
    def of(cls, notes: list[Notify]) -> Notify | Batch:
        return notes[0] if len(notes) == 1 else cls(tuple(notes), sum(len(n.frame) for n in notes))


@dataclass(frozen=True, slots=True)
class Push:
    frame: bytes


@dataclass(frozen=True, slots=True)
class Sync:
    pass


@dataclass(frozen=True, slots=True)
class End:
    #: Hash of the session whose streams end (``None``: every stream of the user).
    session: str | None
    reason: str = "signed_out"


SYNC = Sync()
Item = Notify | Batch | Push | Sync | End


# -- layer messages --------------------------------------------------------------------------------


class Message:
    """Base of the layer messages: ``TYPE`` on the wire, encode/decode, routing."""

    __slots__ = ()
    TYPE: ClassVar[str]
    #: Sent to the broadcast group whatever the number of recipients.
    BROADCAST: ClassVar[bool] = False

    def encode(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Message:
        raise NotImplementedError

    def recipients(self) -> set[int]:
        raise NotImplementedError

    def only(self, user_id: int) -> Message:
        """The part of this message for one user (for a send to that user's group)."""
        raise NotImplementedError

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        """``(user_id, item)`` for the users of ``here`` (the hub's local users) only.

        Work is proportional to the message's recipients, and each frame is encoded
        once per user with a stream here.
        """
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Deliver(Message):
    """New notifications sharing their content: ``common`` is the JSON object body
    (without braces) shared by every recipient; ``rows`` are ``(user_id, pk, seq, unread)``."""

    TYPE: ClassVar[str] = "sse_notify.deliver"
    common: str
    rows: tuple[tuple[int, int, int, int], ...]

    def encode(self) -> dict[str, Any]:
        return {"type": self.TYPE, "common": self.common, "items": [list(r) for r in self.rows]}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Deliver:
        return cls(message["common"], tuple((int(u), int(p), int(s), int(n)) for u, p, s, n in message["items"]))

    def recipients(self) -> set[int]:
        return {r[0] for r in self.rows}

    def only(self, user_id: int) -> Deliver:
        return Deliver(self.common, tuple(r for r in self.rows if r[0] == user_id))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for uid, pk, seq, unread in self.rows:
            if uid in here:
                try:
                    frame = notification_frame(self.common, pk, seq, unread)
                except ValueError as exc:  # UnicodeEncodeError: content the wire cannot carry
                    # Skipped with a log; the stream finds the gap and reads the database,
                    # where the same row is skipped too. Other recipients are unaffected.
                    logger.error(
                        "sse_notify: notification %s (user %s, seq %s) cannot be encoded: %s", pk, uid, seq, exc
                    )
                    continue
                yield uid, Notify(seq, frame)


@dataclass(frozen=True, slots=True)
class DeliverMany(Message):
    """Several ``Deliver`` in one layer message: a send to many users with per-user
    content crosses the layer once instead of once per user."""

    TYPE: ClassVar[str] = "sse_notify.deliver_many"
    parts: tuple[Deliver, ...]

    def encode(self) -> dict[str, Any]:
        return {"type": self.TYPE, "messages": [[d.common, [list(r) for r in d.rows]] for d in self.parts]}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> DeliverMany:
        return cls(tuple(Deliver.decode({"common": common, "items": items}) for common, items in message["messages"]))

    def recipients(self) -> set[int]:
        return {r[0] for d in self.parts for r in d.rows}

    def only(self, user_id: int) -> DeliverMany:
        return DeliverMany(tuple(p for p in (d.only(user_id) for d in self.parts) if p.rows))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for part in self.parts:
            yield from part.items(here)


@dataclass(frozen=True, slots=True)
class ReadChange(Message):
    """Read state changed: ``users`` are ``(user_id, unread, ids or None for all)``."""

    TYPE: ClassVar[str] = "sse_notify.read"
    read: bool
    users: tuple[tuple[int, int, tuple[int, ...] | None], ...]

    def encode(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "read": self.read,
            "users": [[uid, unread, None if ids is None else list(ids)] for uid, unread, ids in self.users],
        }

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> ReadChange:
        return cls(
            bool(message["read"]),
            tuple(
                (int(uid), int(unread), None if ids is None else tuple(int(i) for i in ids))
                for uid, unread, ids in message["users"]
            ),
        )

    def recipients(self) -> set[int]:
        return {u[0] for u in self.users}

    def only(self, user_id: int) -> ReadChange:
        return ReadChange(self.read, tuple(u for u in self.users if u[0] == user_id))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for uid, unread, ids in self.users:
            if uid in here:
                yield uid, Push(read_frame(None if ids is None else list(ids), self.read, unread))


@dataclass(frozen=True, slots=True)
class SignOut(Message):
    """Sessions ended: ``users`` are ``(user_id, session hash or None for all sessions)``.

    Always broadcast: a process that holds no stream of the user yet (so is not in
    the user's group) must still hear of it, for a connect racing the sign-out.
    """

    TYPE: ClassVar[str] = "sse_notify.signout"
    BROADCAST: ClassVar[bool] = True
    users: tuple[tuple[int, str | None], ...]

    def encode(self) -> dict[str, Any]:
        return {"type": self.TYPE, "users": [[uid, session] for uid, session in self.users]}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> SignOut:
        return cls(tuple((int(uid), None if s is None else str(s)) for uid, s in message["users"]))

    def recipients(self) -> set[int]:
        return {u[0] for u in self.users}

    def only(self, user_id: int) -> SignOut:
        return SignOut(tuple(u for u in self.users if u[0] == user_id))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for uid, session in self.users:
            if uid in here:
                yield uid, End(session)


@dataclass(frozen=True, slots=True)
class PreferencesChanged(Message):
    """A user's preferences changed: ``users`` are ``(user_id, preferences)``."""

    TYPE: ClassVar[str] = "sse_notify.preferences"
    users: tuple[tuple[int, tuple[Any, ...]], ...]

    def encode(self) -> dict[str, Any]:
        return {"type": self.TYPE, "users": [[uid, list(prefs)] for uid, prefs in self.users]}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> PreferencesChanged:
        return cls(tuple((int(uid), tuple(prefs)) for uid, prefs in message["users"]))

    def recipients(self) -> set[int]:
        return {u[0] for u in self.users}

    def only(self, user_id: int) -> PreferencesChanged:
        return PreferencesChanged(tuple(u for u in self.users if u[0] == user_id))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for uid, prefs in self.users:
            if uid in here:
                yield uid, Push(preferences_frame(list(prefs)))


TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Deliver, DeliverMany, ReadChange, SignOut, PreferencesChanged)
}


def decode(message: Mapping[str, Any]) -> Message | None:
    """The typed message, or None for a type this version does not know (ignored)."""
    cls = TYPES.get(str(message.get("type")))
    return None if cls is None else cls.decode(message)
