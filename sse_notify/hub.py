"""The per-process hub: one channel-layer subscription for all local streams.

Every open stream registers a ``Subscription`` (a bounded queue) with the hub of
its event loop. The hub owns a single layer channel, is a member of the
broadcast group and of the group of each user it holds a stream for, runs one
long-lived ``receive()`` and hands each message to the queues it concerns.
Measured: a layer channel per connection is 7-10x slower, and the in-memory
layer stops delivering at a few thousand of them.

Deliberate choices (do not "fix"):

- ``receive()`` is never cancelled to time anything: on the Redis pub/sub
  layer a cancelled receive unsubscribes and loses messages. Streams time
  their heartbeats on their own queues.
- A full queue does not block the hub or drop silently: the subscription is
  marked ``behind`` and its stream catches up from the database.
- Every ``POLL_INTERVAL`` the hub asks the database for the latest seq of
  each local user (one query per 2,000 users, 900 on SQLite) and nudges streams that are
  behind. That bounds the delay of anything the layer never delivered: a
  sender in another process on the in-memory layer, a dropped message, Redis
  restarting. Streams whose missing seq the layer has already queued are not
  nudged, and the others only after a short grace (``POLL_GRACE``), so a large
  send the poll sees mid-publish costs no catch-up query per stream.
- Group joins and leaves run at most ``MEMBERSHIP_CONCURRENCY`` at a time:
  10,000 clients connecting at once would otherwise start 10,000 concurrent
  ``group_add`` calls, and redis-py 8's async pool raises ``MaxConnectionsError``
  past 100 connections (its default ``max_connections``).
- With ``GROUP_SEND_THRESHOLD = 0`` every send goes to the broadcast group and
  the hub joins no per-user group at all ("every process receives
  everything"): cheapest connects, one layer message per send per process.
- A receive that times out (redis-py 8's 5 s default ``socket_timeout`` cuts
  the core Redis layer's 5 s blocking read: "Timeout reading from ...") is
  retried at once: the hub's channel and groups are intact, and a message lost
  in that instant is found by the database poll. Check ``sse_notify.W003``
  reports the configuration; the hub just survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Collection, Coroutine
from typing import Any

from django.db import DatabaseError

from . import compat, protocol, publish
from .compat import ConnectionProbe, is_read_timeout
from .conf import app_settings
from .protocol import BROADCAST_GROUP, SYNC, Batch, End, Item, Notify, SignOut, user_group
from .publish import get_layer, session_hash

logger = logging.getLogger("sse_notify")

#: Group joins/leaves in flight at once per process (see the module docstring).
MEMBERSHIP_CONCURRENCY = 16
#: Seconds the poll waits before nudging streams it found behind, so that a send
#: it saw committed but not yet published is delivered by the layer, not by
#: one catch-up query per stream (at most POLL_INTERVAL / 4).
POLL_GRACE = 0.25
#: Events one stream may have queued; past it the stream catches up from the
#: database instead, so a slow reader costs bounded memory and loses nothing.
QUEUE_SIZE = 256
#: Bytes of batched notifications one stream may have queued; past it the stream
#: reads the rest from the database (a slow client pins no more than this here).
QUEUE_BYTES = 1024 * 1024
#: Seconds the hub remembers a signed-out session (see ``Hub._remember``).
SIGNED_OUT_MEMORY = 120.0
#: Seconds between re-checks of the sessions of this process's streams (password
#: changed, session deleted or expired, user deactivated: see ``sessions``).
SESSION_CHECK_INTERVAL = 5.0
#: Seconds a stopping hub waits for its group leaves (all at once).
LEAVE_TIMEOUT = 1.0
#: Seconds a stopping server gives its streams to end their responses cleanly.
SHUTDOWN_GRACE = 3.0


class StreamLimitExceeded(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def retry_ms(self) -> int:
        """How long the refused client is asked to wait. Over a cap: ten reconnection
        delays, so that refusals do not become a reconnect storm. A stopping server:
        one, as for the streams it ends (a deploy's clients resume on another process,
        or here after the restart, not 30 s later)."""
        base = int(app_settings.RETRY_MS)
        return base if self.code == "server_stopping" else base * 10


class Subscription:
    """One open stream's mailbox. ``cursor`` is the last seq its client was sent.

    The mailbox is a list of at most ``QUEUE_SIZE`` items and one waiter future,
    set only while the stream sleeps: a wake-up costs one ``set_result``, not a
    task and a timer per item.
    """

    __slots__ = (
        "__weakref__",
        "_hub",
        "behind",
        "cursor",
        "ended",
        "ip",
        "items",
        "linger",
        "offered",
        "probe",
        "queued_bytes",
        "session",
        "session_key",
        "size",
        "user_id",
        "waiter",
    )

    def __init__(
        self,
        hub: Hub,
        user_id: int,
        ip: str | None,
        size: int,
        session_key: str | None = None,
        probe: ConnectionProbe | None = None,
        linger: float = 0.0,
    ) -> None:
        self._hub: Hub | None = hub
        #: The session the stream was opened with (re-checked every SESSION_CHECK_INTERVAL).
        self.session_key = session_key
        #: The connection, when the server lets us see it (``sse_notify.asgi.StreamRoute``).
        self.probe = probe
        #: Without a probe: seconds an ended stream keeps its place (its bytes may sit unread).
        self.linger = linger
        self.user_id = user_id
        self.ip = ip
        #: Its hash, as sign-out messages name it (see ``publish.session_hash``).
        self.session = session_hash(session_key)
        #: Why the stream must end (its session signed out, the server stops); checked on every wake-up.
        self.ended: str | None = None
        #: Items not yet taken by the stream (at most ``size``). A list, not a deque: the
        #: stream takes them all at once, and an empty list is 56 bytes (a deque 600).
        self.items: list[Item] = []
        self.size = max(1, size)
        #: Set by the stream while it sleeps; the first offer (or its timer) wakes it.
        self.waiter: asyncio.Future[None] | None = None
        #: Bytes of the ``Batch`` items in the queue (bounded by ``QUEUE_BYTES``).
        self.queued_bytes = 0
        self.cursor = 0
        #: Highest seq handed to this stream's queue (it may not have sent it yet).
        self.offered = 0
        self.behind = False

    def wake(self) -> None:
        """Wake the stream if it sleeps (idempotent)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _put(self, item: Item) -> bool:
        """Queue ``item`` and wake the stream; False if the queue is full."""
        items = self.items
        if len(items) >= self.size:
            return False
        items.append(item)
        if self.waiter is not None:
            self.wake()
        return True

    def offer(self, item: Item) -> None:
        cls = type(item)
        if cls is Notify:
            seq = item.seq  # type: ignore[union-attr]
            if seq > self.offered:
                self.offered = seq
        elif cls is Batch:
            size = item.size  # type: ignore[union-attr]
            if self.queued_bytes + size > QUEUE_BYTES:
                # The stream reads these from the database instead; wake it (a full
                # queue means it is awake already).
                self.behind = True
                self._put(SYNC)
                return
            seq = item.notes[-1].seq  # type: ignore[union-attr]
            if seq > self.offered:
                self.offered = seq
            self.queued_bytes += size
        elif cls is End:
            if item.session is not None and item.session != self.session:  # type: ignore[union-attr]
                return  # another session of the same user signed out
            self.end(item.reason)  # type: ignore[union-attr]
            return
        if not self._put(item):
            # The stream is busy or its client slow: it will read what it missed
            # from the database once it drains the queue.
            self.behind = True
            if cls is Batch:
                self.queued_bytes -= item.size  # type: ignore[union-attr]

    def take(self, most: int) -> list[Item]:
        """Up to ``most`` queued items, oldest first."""
        items = self.items
        if len(items) <= most:
            self.items = []
            return items
        out = items[:most]
        del items[:most]
        return out

    def end(self, reason: str) -> None:
        """Ask the stream to end at its next wake-up (and wake it)."""
        if self.ended is None:
            self.ended = reason
        self.wake()  # it checks ``ended`` before anything else

    def close(self, unread: bool = False) -> None:
        """Leave the hub. Idempotent; safe from ``finally`` during cancellation.

        ``unread``: the server ended the response, so its client may not have read
        it all; the stream keeps its place in the caps while the connection holds
        bytes (or ``linger`` seconds without a probe).
        """
        hub, self._hub = self._hub, None
        if hub is not None:
            hub._remove(self, unread)


class Linger:
    """An ended stream whose connection may still hold its unread bytes."""

    __slots__ = ("ip", "probe", "until", "user_id")

    def __init__(self, sub: Subscription, now: float) -> None:
        self.user_id, self.ip, self.probe = sub.user_id, sub.ip, sub.probe
        self.until = now + sub.linger

    def holds(self, now: float) -> bool:
        if self.probe is not None:
            return self.probe.holds_bytes()
        return now < self.until


class Hub:
    def __init__(self) -> None:
        self.users: dict[int, set[Subscription]] = {}
        #: Ended streams still counted in the caps (see ``Subscription.close``), by user.
        self.lingering: dict[int, list[Linger]] = {}
        self.lingering_count = 0
        self.per_ip: Counter[str] = Counter()
        self.count = 0
        self.layer: Any = None
        self.layer_alias: str | None = None
        self.channel: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Group membership as desired state: ``users`` (plus the broadcast group) is what
        #: this hub should be in; ``joined`` is what the layer is known to hold. The
        #: reconciler closes the gap, with backoff, until they agree.
        self.joined: set[int] = set()
        #: Users whose join failed in a way that may still have reached the layer (a
        #: timeout while Redis was stalled): left again if no longer wanted.
        self.maybe_joined: set[int] = set()
        self.broadcast_joined = False
        self._dirty = asyncio.Event()
        self._in_sync = asyncio.Event()
        self._join_waiters: dict[int, asyncio.Event] = {}
        self._membership_failing = False
        self._started: asyncio.Task[None] | None = None
        self._layer_ok = True
        self._membership_slots = asyncio.Semaphore(MEMBERSHIP_CONCURRENCY)
        self.read_timeouts = 0
        #: Recently signed-out session hashes → until when they are remembered.
        self.signed_out: dict[str, float] = {}
        #: Remembers decoded sessions and auth hashes between session checks (``sessions.SessionCheck``).
        self.session_check: Any = None
        #: Set once the server stops: no new streams.
        self.stopping = False
        self._drained: asyncio.Event | None = None

    # -- streams -------------------------------------------------------------

    def check_limits(self, user_id: int, ip: str | None = None) -> None:
        """Raise ``StreamLimitExceeded`` if one more stream would pass a configured cap.

        Streams that ended but whose connection still holds their bytes count too:
        a cap bounds what the process holds, not what the code thinks is live.
        """
        if user_id in self.lingering:
            self._sweep(self.lingering[user_id])
        if self.stopping:
            raise StreamLimitExceeded(503, "server_stopping", "This server is stopping; connect again.")
        limit = app_settings.MAX_STREAMS
        if limit is not None and self.count + self.lingering_count >= limit:
            raise StreamLimitExceeded(503, "server_busy", "This server holds its maximum of streams.")
        limit = app_settings.MAX_STREAMS_PER_USER
        if limit is not None and len(self.users.get(user_id, ())) + len(self.lingering.get(user_id, ())) >= limit:
            raise StreamLimitExceeded(
                429, "too_many_streams", f"At most {limit} simultaneous streams per user; close one."
            )
        limit = app_settings.MAX_STREAMS_PER_IP
        if ip and limit is not None and self.per_ip[ip] >= limit:
            raise StreamLimitExceeded(429, "too_many_streams", f"At most {limit} simultaneous streams per address.")

    async def subscribe(
        self,
        user_id: int,
        ip: str | None = None,
        session_key: str | None = None,
        probe: ConnectionProbe | None = None,
        linger: float = 0.0,
    ) -> Subscription:
        """Register a stream (callers check ``check_limits`` first).

        The limits are checked again here, after the only await before the
        stream is counted: requests that passed the caller's check together
        (one user opening many streams at once) cannot exceed the caps.
        """
        await self._ensure_started()
        self.check_limits(user_id, ip)
        sub = Subscription(self, user_id, ip, QUEUE_SIZE, session_key, probe, linger)
        if sub.session is not None and sub.session in self.signed_out:
            sub.end("signed_out")  # its sign-out passed while it was connecting
        subs = self.users.setdefault(user_id, set())
        first = not subs
        subs.add(sub)
        self.count += 1
        if ip:
            self.per_ip[ip] += 1
        if first and self.layer is not None and self._per_user_groups() and user_id not in self.joined:
            waiter = self._join_waiters.setdefault(user_id, asyncio.Event())
            self._membership_changed()
            # Wait so live messages reach this stream from the start; a slow or dead
            # layer is covered by the database poll (and the join is retried).
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), publish.PUBLISH_TIMEOUT)
            except BaseException:
                sub.close()  # cancelled (client left) while joining: the caller never gets sub
                raise
        return sub

    def _remove(self, sub: Subscription, unread: bool = False) -> None:
        subs = self.users.get(sub.user_id)
        if not subs or sub not in subs:
            return
        subs.discard(sub)
        self.count -= 1
        if not self.count and self._drained is not None:
            self._drained.set()
        if unread and not self.stopping and (sub.probe is not None or sub.linger > 0):
            if sub.probe is None or sub.probe.holds_bytes():
                linger = Linger(sub, asyncio.get_running_loop().time())
                # Still counted (per_ip too) until the connection lets go of its bytes.
                self.lingering.setdefault(sub.user_id, []).append(linger)
                self.lingering_count += 1
            else:
                self._release_ip(sub.ip)
        else:
            self._release_ip(sub.ip)
        if not subs:
            del self.users[sub.user_id]
            if sub.user_id in self.joined or sub.user_id in self.maybe_joined:
                self._membership_changed()

    def _release_ip(self, ip: str | None) -> None:
        if ip:
            self.per_ip[ip] -= 1
            if self.per_ip[ip] <= 0:
                del self.per_ip[ip]

    def _sweep(self, entries: list[Linger]) -> None:
        """Drop the lingering entries (of one user) whose connection let go of its bytes."""
        now = asyncio.get_running_loop().time()
        kept = [e for e in entries if e.holds(now)]
        if len(kept) == len(entries):
            return
        for e in entries:
            if e not in kept:
                self._release_ip(e.ip)
        self.lingering_count -= len(entries) - len(kept)
        uid = entries[0].user_id
        if kept:
            self.lingering[uid] = kept
        else:
            del self.lingering[uid]

    def sweep_lingering(self) -> None:
        for entries in list(self.lingering.values()):
            self._sweep(entries)

    def streams_of(self, user_id: int) -> int:
        return len(self.users.get(user_id, ()))

    # -- dispatch ------------------------------------------------------------

    def dispatch(self, message: dict[str, Any]) -> None:
        """Hand a layer message to the local streams it concerns (work ∝ its recipients)."""
        users = self.users
        if message.get("type") == protocol.DeliverMany.TYPE:
            # The hot path of a large send: routed from its wire form in one pass.
            self._offer_notes(protocol.packed_notes(message, users))
            return
        decoded = protocol.decode(message)
        if decoded is None:
            logger.debug("sse_notify: hub ignored message of type %r", message.get("type"))
            return
        if isinstance(decoded, SignOut):
            self._remember(decoded)
        if isinstance(decoded, protocol.Deliver | protocol.DeliverMany):
            self._offer_notes(decoded.notes(users))
            return
        for uid, item in decoded.items(users):
            for sub in users.get(uid, ()):
                sub.offer(item)

    def _offer_notes(self, notes: dict[int, list[Notify]]) -> None:
        """One queue slot (and one wake-up) per stream and message: a user's
        notifications of one message travel as one ``Batch``."""
        users = self.users
        for uid, mine in notes.items():
            batched = mine[0] if len(mine) == 1 else Batch.of(mine)
            for sub in users[uid]:
                sub.offer(batched)

    def _remember(self, message: SignOut) -> None:
        """Keep signed-out sessions a while: a connect that checked its session just
        before the sign-out and registers just after must still end."""
        now = asyncio.get_running_loop().time()
        for old, until in list(self.signed_out.items()):
            if until > now:
                break  # insertion order is expiry order
            del self.signed_out[old]
        for _uid, ended in message.users:
            if ended is not None:
                self.signed_out.pop(ended, None)
                self.signed_out[ended] = now + SIGNED_OUT_MEMORY

    def nudge(self, user_ids: Any = None) -> None:
        """Tell streams (of ``user_ids``, or all) to check the database."""
        targets = self.users if user_ids is None else {u: self.users[u] for u in user_ids if u in self.users}
        for subs in targets.values():
            for sub in subs:
                sub.offer(SYNC)

    # -- lifecycle -------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        compat.on_server_shutdown(self.shutdown)
        self.layer_alias = app_settings.CHANNEL_LAYER
        self.layer = get_layer()
        if self.layer is not None:
            # The receive loop gets its channel itself, retrying with backoff: a layer
            # that is down at start (pub/sub needs Redis for a channel) comes back later.
            await self._open_channel()
            self._spawn(self._receive_loop())
            self._spawn(self._reconcile_loop())
            if self.channel is not None:
                self._membership_changed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._in_sync.wait(), publish.PUBLISH_TIMEOUT)
        self._spawn(self._poll_loop())

    async def _open_channel(self) -> bool:
        try:
            self.channel = await asyncio.wait_for(self.layer.new_channel("sse_notify.hub."), publish.PUBLISH_TIMEOUT)
        except Exception as exc:
            if self._layer_ok:
                logger.warning("sse_notify: channel layer unavailable (%s); using the database until it is back", exc)
            self._layer_ok = False
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shutdown(self) -> None:
        """The server is stopping: end every stream now (each client resumes on another
        process, or here after the restart), then stop the hub's tasks and leave its groups."""
        self.stopping = True
        for subs in list(self.users.values()):
            for sub in subs:
                sub.end("shutdown")
        if self.count:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), SHUTDOWN_GRACE)
        await self.aclose()
        self.stopping = True
        # Let the requests' own tasks (Django's disconnect listener) see their response end.
        await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        """Stop the hub's tasks and leave its groups (tests, shutdown): a stopped process
        must not stay in the broadcast group (channels_redis would keep it 24 h)."""
        await _cancel(list(self._tasks))
        if self.layer is not None and self.channel is not None:
            groups = [BROADCAST_GROUP, *(user_group(u) for u in self.joined | set(self.users))]
            leaves = [asyncio.ensure_future(self.layer.group_discard(g, self.channel)) for g in groups]
            await asyncio.wait(leaves, timeout=LEAVE_TIMEOUT)
            await _cancel(leaves)  # those still pending (cancelling a finished one does nothing)
        self.joined.clear()
        self.broadcast_joined = False
        self.users.clear()
        self.per_ip.clear()
        self.lingering.clear()
        self.lingering_count = 0
        self.count = 0
        self._started = None

    # -- group membership --------------------------------------------------------

    @staticmethod
    def _per_user_groups() -> bool:
        """False in "every process receives everything" mode (threshold 0)."""
        return publish.GROUP_SEND_THRESHOLD > 0

    def membership_settled(self) -> bool:
        """True when the layer holds exactly the groups this hub wants (or there is no layer)."""
        return self.layer is None or (self._in_sync.is_set() and not self._dirty.is_set())

    def _membership_changed(self) -> None:
        self._in_sync.clear()
        self._dirty.set()

    def _forget_membership(self) -> None:
        """The layer may have restarted empty (Redis keeps no groups): join everything again."""
        self.joined.clear()
        self.broadcast_joined = False
        self._membership_changed()

    async def _reconcile_loop(self) -> None:
        backoff = 0.1
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.channel is None:
                continue  # the receive loop sets it dirty again once it has a channel
            if await self._reconcile():
                backoff = 0.1
                if not self._dirty.is_set():
                    self._in_sync.set()
                if self._membership_failing:
                    self._membership_failing = False
                    logger.warning("sse_notify: channel layer group membership restored")
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._dirty.set()

    async def _reconcile(self) -> bool:
        """One pass: every missing join and stale leave at once (at most
        MEMBERSHIP_CONCURRENCY in flight, each cut at PUBLISH_TIMEOUT). True if all held."""
        want = set(self.users) if self._per_user_groups() else set()
        ops: list[Coroutine[Any, Any, bool]] = []
        if not self.broadcast_joined:
            ops.append(self._apply(None, True))
        ops += [self._apply(uid, True) for uid in want - self.joined]
        ops += [self._apply(uid, False) for uid in (self.joined | self.maybe_joined) - want]
        if not ops:
            return True
        return all(await asyncio.gather(*ops))

    async def _apply(self, user_id: int | None, join: bool) -> bool:
        async with self._membership_slots:
            if user_id is not None and join != (user_id in self.users and self._per_user_groups()):
                return True  # changed meanwhile; the next pass sees it
            channel = self.channel
            if channel is None:
                return False
            group = BROADCAST_GROUP if user_id is None else user_group(user_id)
            op = self.layer.group_add if join else self.layer.group_discard
            try:
                await asyncio.wait_for(op(group, channel), publish.PUBLISH_TIMEOUT)
            except Exception as exc:
                if join and user_id is not None:
                    self.maybe_joined.add(user_id)  # the layer may have applied it after all
                if not self._membership_failing:
                    self._membership_failing = True
                    logger.warning(
                        "sse_notify: channel layer group %s failed (%s: %s); retrying until it holds",
                        "join" if join else "leave",
                        type(exc).__name__,
                        exc,
                    )
                return False
        if user_id is None:
            self.broadcast_joined = True
        elif join:
            self.joined.add(user_id)
            self.maybe_joined.discard(user_id)
            waiter = self._join_waiters.pop(user_id, None)
            if waiter is not None:
                waiter.set()
        else:
            self.joined.discard(user_id)
            self.maybe_joined.discard(user_id)
        return True

    # -- background loops --------------------------------------------------------

    async def _receive_loop(self) -> None:
        """The one long-lived ``receive()``, started and restarted with backoff whatever the layer."""
        backoff = 0.1
        while True:
            if self.channel is None:
                if not await self._open_channel():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self._forget_membership()
            if not self._layer_ok:
                # Back once the groups are held again (which also proves the layer answers).
                try:
                    await asyncio.wait_for(self._in_sync.wait(), publish.PUBLISH_TIMEOUT * 2)
                except TimeoutError:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self._layer_ok = True
                backoff = 0.1
                logger.warning("sse_notify: channel layer is back; live delivery resumed")
                self.nudge()
            started = asyncio.get_running_loop().time()
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # An idle read lasts the socket timeout; a "timeout" that comes at once
                # is a failing layer (and retrying it at once would spin).
                if is_read_timeout(exc) and asyncio.get_running_loop().time() - started >= 0.2:
                    # Idle blocking read cut by the client's socket timeout: the
                    # layer is fine; read again (the poll covers a lost message).
                    self.read_timeouts += 1
                    if self.read_timeouts == 1:
                        logger.warning(
                            "sse_notify: channel layer receive timed out (%s); retrying. With channels_redis' "
                            "RedisChannelLayer set the hosts' socket_timeout above 5 s (check sse_notify.W003).",
                            exc,
                        )
                    continue
                self._layer_ok = False
                self._forget_membership()
                logger.warning(
                    "sse_notify: channel layer receive failed (%s: %s); streams fall back to the database",
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(backoff)
                continue
            try:
                self.dispatch(message)
            except Exception:
                logger.exception("sse_notify: could not dispatch a layer message")
            # Not kept while the next receive waits: a large send's message is megabytes.
            del message

    async def check_sessions(self, only: Collection[Subscription] | None = None) -> None:
        """End the streams (all, or ``only`` these) whose session no longer signs their
        user in (database-backed session engines: one query per 2,000 sessions (900 on
        SQLite) and one per as many users; what cannot have changed is not decoded or
        hashed again, see ``sessions.SessionCheck``)."""
        from . import db
        from .sessions import SessionCheck

        keys: dict[str, int] = {}
        for uid, subs in self.users.items():
            for sub in subs:
                if sub.session_key and (only is None or sub in only):
                    keys[sub.session_key] = uid
        if self.session_check is None:
            self.session_check = SessionCheck()
        if not keys:
            if only is None:
                self.session_check.clear()
            return
        try:
            valid = await db.run(self.session_check, keys, only is None)
        except DatabaseError as exc:
            db.log_error("checking the streams' sessions", exc)
            return
        for subs in list(self.users.values()):
            for sub in list(subs):
                if sub.session_key and sub.session_key in keys and sub.session_key not in valid:
                    sub.end("signed_out")

    async def _poll_loop(self) -> None:
        from . import db
        from .models import Inbox
        from .sessions import select_in

        def latest(user_ids: list[int]) -> list[tuple[int, int]]:
            # Plain SQL: preparing the IN list through the ORM costs more CPU than the query.
            return select_in(Inbox, ("user_id", "last_seq"), "user_id", user_ids)

        polls = 0
        loop = asyncio.get_running_loop()
        sessions_checked = loop.time()
        while True:
            await asyncio.sleep(float(app_settings.POLL_INTERVAL))
            polls += 1
            self.sweep_lingering()
            if self.users and loop.time() - sessions_checked >= SESSION_CHECK_INTERVAL:
                sessions_checked = loop.time()
                await self.check_sessions()
            if not self.users:
                if self.session_check is not None:
                    self.session_check.clear()
                continue
            try:
                rows = await db.run(latest, list(self.users))
            except Exception as exc:
                db.log_error("polling for new notifications", exc)
                continue
            behind = [
                (sub, last_seq)
                for uid, last_seq in rows
                for sub in self.users.get(uid, ())
                if sub.cursor < last_seq and sub.offered < last_seq
            ]
            if behind and self.layer is not None and self._layer_ok:
                # The poll may read a send's rows just before the layer brings the same
                # send (a large send is committed, then published). A short grace lets
                # it land: thousands of needless catch-up queries would otherwise race
                # every large send the poll happens to see.
                await asyncio.sleep(min(POLL_GRACE, float(app_settings.POLL_INTERVAL) / 4))
            nudge = [(sub, last) for sub, last in behind if sub.cursor < last and sub.offered < last]
            if nudge:
                # What the poll finds, the layer did not bring, and neither may it have
                # brought a sign-out (Redis stalled while a session signed out): check these
                # streams' sessions before they read anything from the database.
                await self.check_sessions({sub for sub, _ in nudge})
            for sub, last_seq in nudge:
                # Skipped when the layer has queued it meanwhile (or the stream sent it).
                if sub.ended is None and sub.cursor < last_seq and sub.offered < last_seq:
                    sub.offer(SYNC)
            if self.channel is not None and polls % 600 == 0:
                # channels-redis forgets group members after group_expiry (24 h): join again.
                self._forget_membership()


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them, at most ``LEAVE_TIMEOUT`` per round.

    Bounded, because a layer's clean-up on cancel can wait forever: channels_redis's
    pub/sub ``receive`` unsubscribes when cancelled, and that can wait for a connection
    that never comes (channels_redis#319); the hub's receive loop then never ended and a
    stopping process (or a test's teardown) hung. A second cancel interrupts such a
    clean-up; a task that survives it is left to the loop.
    """
    for _ in range(2):
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, still = await asyncio.wait(tasks, timeout=LEAVE_TIMEOUT)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the loop does not log it as never retrieved
        tasks = list(still)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
#: Hubs being closed after a settings change (referenced until done).
_closing: set[asyncio.Task[None]] = set()


def get_hub() -> Hub:
    """The hub of the running event loop (one per process under Daphne)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


def forget_idle_hubs(any_layer: bool = False) -> None:
    """The channel layer settings changed (``setting_changed``): hubs holding no stream
    are dropped (and closed), so the next stream starts one on the new layer. A hub
    with open streams keeps its layer until they end; it is not swapped under them."""
    from .conf import app_settings

    for loop, hub in list(_hubs.items()):
        if hub.count or hub.lingering_count or hub._started is None:
            continue
        if not any_layer and hub.layer_alias == app_settings.CHANNEL_LAYER:
            continue
        del _hubs[loop]
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                _closing.add(asyncio.ensure_future(hub.aclose()))
                for task in [t for t in _closing if t.done()]:
                    _closing.discard(task)


async def reset_hub() -> None:
    """Close and forget this loop's hub (for tests)."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.aclose()
