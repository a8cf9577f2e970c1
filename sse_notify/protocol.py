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

import base64
import logging
import struct
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .events import FRAME, notification_frame, preferences_frame, read_frame

logger = logging.getLogger("sse_notify")

BROADCAST_GROUP = "sse_notify.broadcast"


def user_group(user_id: int) -> str:
    """The layer group of one user's hubs. Built from the server-side user, never from a request."""
    return f"sse_notify.user.{int(user_id)}"


# -- stream items ---------------------------------------------------------------------------------


# Not frozen: a frozen dataclass costs twice as much to build, and a send builds
# one ``Notify`` per local event. Nothing mutates them.
@dataclass(slots=True)
class Notify:
    seq: int
    frame: bytes


@dataclass(slots=True)
class Batch:
    notes: tuple[Notify, ...]
    #: Bytes of the frames (the hub bounds what one stream may have queued).
    size: int

    @classmethod
    def of(cls, notes: list[Notify]) -> Notify | Batch:
        return notes[0] if len(notes) == 1 else cls(tuple(notes), sum(len(n.frame) for n in notes))


@dataclass(slots=True)
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


def _skip(pk: int, uid: int, seq: int, exc: Exception) -> None:
    # Skipped with a log; the stream finds the gap and reads the database, where
    # the same row is skipped too. Other recipients are unaffected.
    logger.error("sse_notify: notification %s (user %s, seq %s) cannot be encoded: %s", pk, uid, seq, exc)


def _route(
    common: str,
    rows: Iterator[tuple[int, ...]] | tuple[tuple[int, ...], ...],
    here: Collection[int],
    out: dict[int, list[Notify]],
) -> None:
    """Frames of ``rows`` (``(user_id, pk, seq, unread)``) for the users of ``here``, into ``out``.

    The shared part is encoded to bytes once; each event's frame is one bytes format.
    """
    body: bytes | None = None
    for uid, pk, seq, unread in rows:
        if uid not in here:
            continue
        if body is None:
            try:
                body = common.encode()
            except UnicodeEncodeError as exc:  # content the wire cannot carry (a lone surrogate)
                _skip(pk, uid, seq, exc)
                continue
        note = Notify(seq, FRAME % (seq, pk, seq, unread, body))
        mine = out.get(uid)
        if mine is None:
            out[uid] = [note]
        else:
            mine.append(note)  # one queue slot per user and message


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
                    _skip(pk, uid, seq, exc)
                    continue
                yield uid, Notify(seq, frame)

    def notes(self, here: Collection[int]) -> dict[int, list[Notify]]:
        """The notifications for the users of ``here``, per user, in message order."""
        out: dict[int, list[Notify]] = {}
        _route(self.common, self.rows, here, out)
        return out


_ROW = struct.Struct("<5q")
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class DeliverMany(Message):
    """Several ``Deliver`` in one layer message: a send to many users with per-user
    content crosses the layer once instead of once per user.

    On the wire it is packed (a personal send to 10,000 users is 10,000 parts):
    ``commons`` is the parts' shared JSON bodies joined by LF (``events.dumps``
    never emits a raw LF, so none is inside one), ``rows`` the
    ``(part, user_id, pk, seq, unread)`` rows as little-endian int64 in base64
    (JSON-safe, as some layers need; msgpack-safe). Two strings
    instead of tens of thousands: the in-memory layer deep-copies every message,
    channels_redis msgpacks it, and the hub walks it without building the parts.
    """

    TYPE: ClassVar[str] = "sse_notify.deliver_packed"
    parts: tuple[Deliver, ...]

    def encode(self) -> dict[str, Any]:
        commons = [d.common for d in self.parts]
        joined = "\n".join(commons)
        rows = bytearray()
        pack = _ROW.pack
        for k, d in enumerate(self.parts):
            for uid, pk, seq, unread in d.rows:
                rows += pack(k, uid, pk, seq, unread)
        # A hand-built common with a raw LF travels as a list (still msgpack-safe).
        packed: str | list[str] = joined if joined.count("\n") == len(commons) - 1 else commons
        return {"type": self.TYPE, "commons": packed, "rows": base64.b64encode(rows).decode("ascii")}

    @staticmethod
    def _unpack(message: Mapping[str, Any]) -> tuple[list[str], Iterator[tuple[int, ...]]]:
        commons = message["commons"]
        if isinstance(commons, str):
            commons = commons.split("\n")
        return [str(c) for c in commons], _ROW.iter_unpack(base64.b64decode(message["rows"]))

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> DeliverMany:
        commons, rows = cls._unpack(message)
        parts: list[list[tuple[int, int, int, int]]] = [[] for _ in commons]
        for k, uid, pk, seq, unread in rows:
            parts[k].append((uid, pk, seq, unread))
        return cls(tuple(Deliver(c, tuple(r)) for c, r in zip(commons, parts, strict=True)))

    def recipients(self) -> set[int]:
        return {r[0] for d in self.parts for r in d.rows}

    def only(self, user_id: int) -> DeliverMany:
        return DeliverMany(tuple(p for p in (d.only(user_id) for d in self.parts) if p.rows))

    def items(self, here: Collection[int]) -> Iterator[tuple[int, Item]]:
        for part in self.parts:
            yield from part.items(here)

    def notes(self, here: Collection[int]) -> dict[int, list[Notify]]:
        out: dict[int, list[Notify]] = {}
        for part in self.parts:
            _route(part.common, part.rows, here, out)
        return out


def packed_notes(message: Mapping[str, Any], here: Collection[int]) -> dict[int, list[Notify]]:
    """``DeliverMany.decode(message).notes(here)`` without building the parts: the hub's path."""
    commons, rows = DeliverMany._unpack(message)
    bodies: dict[int, bytes | None] = {}
    out: dict[int, list[Notify]] = {}
    for k, uid, pk, seq, unread in rows:
        if uid not in here:
            continue
        body = bodies.get(k, _UNSET)
        if body is _UNSET:
            try:
                body = bodies[k] = commons[k].encode()
            except UnicodeEncodeError as exc:  # content the wire cannot carry (a lone surrogate)
                body = bodies[k] = None
                _skip(pk, uid, seq, exc)
        if body is None:
            continue
        note = Notify(seq, FRAME % (seq, pk, seq, unread, body))
        mine = out.get(uid)
        if mine is None:
            out[uid] = [note]
        else:
            mine.append(note)
    return out


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
