"""The notification queue: the database is the source of truth.

The cursor a client resumes from is ``Notification.seq``, a per-recipient
sequence number. It is allocated while holding a lock on the recipient's
``Inbox`` row, inside the sending transaction, so for one user *commit order is
sequence order*: a client that has seen seq 11 can never later find a committed
seq 10. (A plain auto-increment id lacks that property: two transactions may
commit out of id order.) Rolled-back sends roll the counter back too, so one
user's committed sequence numbers have no gaps, which lets a stream notice a
message the channel layer dropped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, overload

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import links
from .categories import DEFAULT_CATEGORY, SLUG_MAX_LENGTH, EmailMode

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# SQLite before 3.32 allowed 999 variables a statement; stay under it everywhere.
CHUNK = 900
#: Users per set-based send statement when the recipients are a list of ids, and rows
#: per ``bulk_create`` statement (they travel as one JSON parameter, so no variable
#: limit applies): 100,000 users are five statements, and one statement's RETURNING
#: stays around a megabyte.
SEND_CHUNK = 20_000

#: The rows the unread count counts. Every count (``Inbox.unread``, ``recount_unread``,
#: ``unread_count()``) uses this one definition.
#: In-app off rows (``Notification.in_app``) are listed but not counted.
COUNTED = Q(read_at__isnull=True, in_app=True)


def counts_as_unread(notification: Notification) -> bool:
    """Whether ``notification`` is one of the rows ``COUNTED`` selects (the same rule in Python)."""
    return notification.read_at is None and bool(notification.in_app)


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Level(models.TextChoices):
    INFO = "info", _("Info")
    SUCCESS = "success", _("Success")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


class EmailState(models.TextChoices):
    """Where a notification is on its way to an email (see ``sse_notify.emailing``).

    ``pending`` -> (after EMAIL_DELAY, by the recipient's preference) ``immediate`` /
    ``hourly`` / ``daily`` or ``skipped`` -> ``claimed`` (one runner owns it) ->
    ``sent`` or ``failed``. A row never leaves ``claimed`` except to ``sent``/``failed``
    (or back to its mode when the mail server could not even be reached), so a
    crash after the claim can lose an email but never send it twice.
    """

    PENDING = "pending", _("Waiting for the email delay")
    IMMEDIATE = "immediate", _("Due now")
    HOURLY = "hourly", _("Waiting for the hourly digest")
    DAILY = "daily", _("Waiting for the daily digest")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Emailed")
    SKIPPED = "skipped", _("Not emailed")
    FAILED = "failed", _("Email failed")


#: States in which a row waits for its email (after the delay, by its recipient's preference).
EMAIL_QUEUED = (EmailState.IMMEDIATE, EmailState.HOURLY, EmailState.DAILY)
#: States in which a row still waits for the email pass (the two partial indexes cover them).
EMAIL_WAITING = (EmailState.PENDING, *EMAIL_QUEUED)


class Inbox(models.Model):
    """Per-user state: the sequence counter (the lock that orders sends) and counts.

    ``unread`` is the one source of the unread count (stream, JSON endpoints,
    badge). It stays exact because every path that adds rows, changes read
    state or deletes rows first locks the users' inbox rows (in user-id order,
    see :func:`lock_inboxes`), changes the rows, and then sets the count inside
    the same transaction, while no other such path can touch those users.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sse_notify_inbox",
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    unread = models.PositiveIntegerField(default=0)
    # Highest seq removed by pruning: a client resuming from below it has a stale list.
    pruned_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")

    def __str__(self) -> str:
        return f"inbox of user {self.user_id}"


def unread_of(user_id: int | None, using: str | None = None) -> tuple[int, int]:
    """``(unread, last_seq)`` of one user, from their inbox row: one indexed read."""
    if user_id is None:
        return 0, 0
    row = Inbox.objects.using(using).filter(user_id=user_id).values_list("unread", "last_seq").first()
    return row or (0, 0)


def lock_inboxes(users: Iterable[int] | models.QuerySet[Any], using: str) -> list[int]:
    """Lock the inbox rows of ``users`` in user-id order; return the ids that have one.

    ``users`` is ids, or a queryset yielding user ids (locked in one statement).
    Must run inside a transaction. Sends, read-state changes, deletes and prunes
    all lock here (or in the same order) before touching a user's rows, so they
    never deadlock and never interleave on one user. On SQLite the database-wide
    write lock plays this part.
    """
    inboxes = Inbox.objects.using(using).select_for_update().order_by("user_id")
    if isinstance(users, models.QuerySet):
        return list(inboxes.filter(user_id__in=users).values_list("user_id", flat=True))
    locked: list[int] = []
    for chunk in chunked(sorted(set(users))):
        locked.extend(inboxes.filter(user_id__in=chunk).values_list("user_id", flat=True))
    return locked


class Kept:
    """What :func:`counts_kept` locked (``users``) and, after the block, their counts."""

    def __init__(self, users: list[int]) -> None:
        self.users = users
        self.counts: dict[int, int] = {}


@contextmanager
def counts_kept(users: Iterable[int] | models.QuerySet[Any], using: str) -> Iterator[Kept]:
    """Lock ``users``' inboxes, let the caller change their rows, then set their counts.

    The block must restrict its changes to ``kept.users``: a user without an
    inbox row has no rows to change, and one not locked could be mid-send.
    """
    with transaction.atomic(using=using):
        kept = Kept(lock_inboxes(users, using))
        yield kept
        if kept.users:
            kept.counts = recount_unread(kept.users, using)


def allocate_seqs(
    user_ids: Sequence[int],
    using: str,
    counts: Mapping[int, int] | None = None,
    unread_counts: Mapping[int, int] | None = None,
) -> dict[int, tuple[int, int]]:
    """Reserve the next seq (or ``counts[user_id]`` seqs) for each user, in one statement per chunk.

    Return ``{user_id: (last seq reserved, unread_after)}``; a user given ``n``
    seqs owns ``last - n + 1 .. last``. The unread count grows by the same number,
    or by ``unread_counts[user_id]`` when given (rows that do not count, see
    ``COUNTED``, are not counted). Must run inside the sending transaction: an
    upsert creates missing inbox rows and takes each row's lock, in user-id order,
    and holds it until commit, which is what makes per-user commit order equal seq
    order (and a rollback gives the seqs back).
    """
    connection = connections[using]
    if not connection.features.can_return_columns_from_insert:
        return _allocate_seqs_without_returning(user_ids, using, counts, unread_counts)
    table = connection.ops.quote_name(Inbox._meta.db_table)
    allocated: dict[int, tuple[int, int]] = {}
    ids = sorted(set(user_ids))
    for chunk in chunked(ids, SEND_CHUNK):
        rows = [[uid, counts[uid] if counts else 1] for uid in chunk]
        rows = [[uid, n, unread_counts.get(uid, 0) if unread_counts is not None else n] for uid, n in rows]
        if connection.vendor == "postgresql":
            # One JSON text parameter: psycopg adapts a Python list element by element
            # (about 1 µs each); a JSON text is one string, parsed by the server.
            source = (
                "SELECT (e->>0)::bigint AS u, (e->>1)::bigint AS n, (e->>2)::bigint AS c "
                "FROM jsonb_array_elements(%s::jsonb) AS e"
            )
            conflict = f"last_seq = {table}.last_seq + EXCLUDED.last_seq, unread = {table}.unread + EXCLUDED.unread"
            params: list[Any] = [json.dumps(rows)]
        else:
            source = (
                "SELECT json_extract(value, '$[0]') AS u, json_extract(value, '$[1]') AS n, "
                "json_extract(value, '$[2]') AS c FROM json_each(%s)"
            )
            conflict = "last_seq = last_seq + excluded.last_seq, unread = unread + excluded.unread"
            params = [json.dumps(rows)]
        sql = (
            f"INSERT INTO {table} (user_id, last_seq, unread, pruned_seq) SELECT u, n, c, 0 FROM ({source}) AS r "
            f"WHERE true ORDER BY u ON CONFLICT (user_id) DO UPDATE SET {conflict} RETURNING user_id, last_seq, unread"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for uid, seq, count in cursor.fetchall():
                allocated[uid] = (seq, count)
    return allocated


def _allocate_seqs_without_returning(
    user_ids: Sequence[int], using: str, counts: Mapping[int, int] | None, unread_counts: Mapping[int, int] | None
) -> dict[int, tuple[int, int]]:
    """:func:`allocate_seqs` for databases without ``RETURNING`` (SQLite before 3.35): four statements a chunk."""
    allocated: dict[int, tuple[int, int]] = {}
    inboxes = Inbox.objects.using(using)
    for chunk in chunked(sorted(set(user_ids))):
        # Starting with a write also takes SQLite's write lock up front.
        inboxes.bulk_create([Inbox(user_id=uid) for uid in chunk], ignore_conflicts=True)
        lock_inboxes(chunk, using)
        by_step: dict[tuple[int, int], list[int]] = {}
        for uid in chunk:
            n = counts[uid] if counts else 1
            by_step.setdefault((n, unread_counts.get(uid, 0) if unread_counts is not None else n), []).append(uid)
        for (n, c), uids in by_step.items():
            inboxes.filter(user_id__in=uids).update(last_seq=F("last_seq") + n, unread=F("unread") + c)
        for uid, seq, count in inboxes.filter(user_id__in=chunk).values_list("user_id", "last_seq", "unread"):
            allocated[uid] = (seq, count)
    return allocated


def recount_unread(user_ids: Iterable[int], using: str) -> dict[int, int]:
    """Set each inbox's unread count from the notifications themselves; return them.

    Exact only under the inbox locks (see :func:`counts_kept`).
    """
    ids = sorted(set(user_ids))
    unread = (
        Notification.objects.using(using)
        .filter(COUNTED, recipient_id=OuterRef("user_id"))
        .order_by()
        .values("recipient_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    counts: dict[int, int] = {}
    for chunk in chunked(ids):
        inboxes = Inbox.objects.using(using).filter(user_id__in=chunk)
        inboxes.update(unread=Coalesce(Subquery(unread), Value(0)))
        counts.update(inboxes.values_list("user_id", "unread"))
    return {uid: counts.get(uid, 0) for uid in ids}


class SentNotifications(Sequence["Notification"]):
    """The rows one send created: ``(pk, recipient_id, seq, unread_after)`` plus their shared content.

    A send to 100,000 users returns this instead of 100,000 model instances;
    a ``Notification`` is built only for the rows a caller looks at.
    ``shared_content`` lets the publisher encode the content once per send.
    """

    def __init__(
        self, values: dict[str, Any], rows: list[tuple[int, int, int, int]], using: str, extra: dict[int, Any]
    ) -> None:
        self.values, self.rows, self.using, self.extra = values, rows, using, extra

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Notification: ...
    @overload
    def __getitem__(self, index: slice) -> list[Notification]: ...
    def __getitem__(self, index: int | slice) -> Notification | list[Notification]:
        if isinstance(index, slice):
            return [self._build(row) for row in self.rows[index]]
        return self._build(self.rows[index])

    def __iter__(self) -> Iterator[Notification]:
        return (self._build(row) for row in self.rows)

    def __repr__(self) -> str:
        return f"<SentNotifications: {len(self.rows)} rows>"

    # Used like the list it replaces: ``send(...) + send(...)``, ``== []``.
    def __add__(self, other: Iterable[Notification]) -> list[Notification]:
        return [*self, *other]

    def __radd__(self, other: Iterable[Notification]) -> list[Notification]:
        return [*other, *self]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, SentNotifications)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _build(self, row: tuple[int, int, int, int]) -> Notification:
        pk, uid, seq, unread = row
        n = Notification(pk=pk, recipient_id=uid, seq=seq, **{**self.values, **self.extra.get(uid, {})})
        n._state.adding, n._state.db = False, self.using
        n._unread_after = unread  # type: ignore[attr-defined]
        return n

    @property
    def shared_content(self) -> list[tuple[dict[str, Any], list[list[int]]]]:
        """``[(common fields, [[user, pk, seq, unread], ...]), ...]``: one group per distinct content."""
        groups: dict[Any, tuple[dict[str, Any], list[list[int]]]] = {}
        for pk, uid, seq, unread in self.rows:
            extra = self.extra.get(uid)
            key = json.dumps(extra, sort_keys=True, cls=DjangoJSONEncoder) if extra else ""
            if key not in groups:
                template = Notification(**{**self.values, **(extra or {})})
                groups[key] = (template.common_fields(), [])
            groups[key][1].append([uid, pk, seq, unread])
        return list(groups.values())


def _send_sql(
    connection: Any, users: tuple[str, list[Any]], values: dict[str, Any], overrides: dict[int, dict[str, Any]]
) -> tuple[list[str], list[list[Any]]]:
    """The statements that send one notification (``values``) to each user of ``users``.

    ``users`` is SQL selecting a column ``uid`` (distinct user ids) and its params;
    ``overrides`` gives some users other values for some columns. Every concrete
    field of ``Notification`` is written: a column added later is picked up here
    without an edit (from ``values``, else the field's default).
    """
    qn = connection.ops.quote_name
    pg = connection.vendor == "postgresql"
    inbox, table = qn(Inbox._meta.db_table), qn(Notification._meta.db_table)
    template = Notification(**values)
    counted = int(counts_as_unread(template))
    override_fields = sorted({name for extra in overrides.values() for name in extra})
    fields = [
        f for f in Notification._meta.concrete_fields if not f.primary_key and f.attname not in ("recipient_id", "seq")
    ]
    columns = [qn(f.column) for f in fields]
    select: list[str] = []
    params: list[Any] = []
    for f in fields:
        value = f.get_db_prep_save(getattr(template, f.attname), connection)
        if f.attname in override_fields:
            select.append(f"CASE WHEN o.uid IS NULL THEN %s ELSE o.{qn('c_' + f.attname)} END")
        else:
            select.append("%s")
        params.append(value)
    override_json = json.dumps(
        [
            {
                "uid": uid,
                "inc": int(counts_as_unread(Notification(**{**values, **extra}))),
                **{f"c_{k}": v for k, v in extra.items()},
            }
            for uid, extra in overrides.items()
        ],
        cls=DjangoJSONEncoder,
    )
    if pg:
        typed = ", ".join(
            f"{qn('c_' + f.attname)} {f.db_type(connection)}" for f in fields if f.attname in override_fields
        )
        o = f"jsonb_to_recordset(%s::jsonb) AS o(uid bigint, inc integer{', ' + typed if typed else ''})"
    else:
        picks = "".join(
            f", json_extract(value, '$.{'c_' + f.attname}') AS {qn('c_' + f.attname)}"
            for f in fields
            if f.attname in override_fields
        )
        o = f"(SELECT json_extract(value, '$.uid') AS uid, json_extract(value, '$.inc') AS inc{picks} FROM json_each(%s)) AS o"
    users_sql, users_params = users
    new_inbox = (
        f"INSERT INTO {inbox} (user_id, last_seq, unread, pruned_seq) "
        f"SELECT u.uid, 1, COALESCE(o.inc, %s), 0 FROM ({users_sql}) AS u LEFT JOIN {o} ON o.uid = u.uid "
        f"WHERE true ORDER BY u.uid ON CONFLICT (user_id) DO UPDATE SET "
    )
    inbox_params = [*users_params, override_json]
    rows_select = f"SELECT s.user_id, s.last_seq, {', '.join(select)} FROM s LEFT JOIN {o} ON o.uid = s.user_id"
    insert = f"INSERT INTO {table} ({qn('recipient_id')}, {qn('seq')}, {', '.join(columns)}) "
    if pg:
        sql = (
            f"WITH s AS ({new_inbox}last_seq = {inbox}.last_seq + 1, unread = {inbox}.unread + EXCLUDED.unread "
            f"RETURNING user_id, last_seq, unread), "
            f"c AS ({insert}{rows_select} RETURNING {qn(Notification._meta.pk.column)}, recipient_id, seq) "
            # The rows and the inbox counts side by side, not joined: a join of two CTEs is
            # estimated at rows x rows / 200, which at 100,000 users switches JIT compilation on
            # (0.34 s) and sorts both sides on disk. Python pairs them.
            f"SELECT c.id, c.recipient_id, c.seq, NULL FROM c UNION ALL SELECT NULL, user_id, last_seq, unread FROM s"
        )
        return [sql], [[counted, *inbox_params, *params, override_json]]
    # SQLite has no writing CTEs: allocate (RETURNING the counts), then insert from the inbox rows.
    allocate = (
        f"{new_inbox}last_seq = last_seq + 1, unread = unread + excluded.unread RETURNING user_id, last_seq, unread"
    )
    rows_select = (
        rows_select.replace("FROM s LEFT JOIN", f"FROM {inbox} AS s LEFT JOIN", 1)
        + f" WHERE s.user_id IN (SELECT uid FROM ({users_sql}))"
    )
    return [allocate, f"{insert}{rows_select} RETURNING {qn(Notification._meta.pk.column)}, recipient_id, seq"], [
        [counted, *inbox_params],
        [*params, override_json, *users_params],
    ]


#: What a JSON document carries as it is; other prepared values travel as text.
_JSON_NATIVE = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """A prepared column value as a JSON document carries it (dates and times in ISO form, to the microsecond)."""
    if isinstance(value, _JSON_NATIVE):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def _pg_type(field: models.Field[Any, Any], connection: Any) -> str:
    """The column's PostgreSQL type without a length (``varchar``, not ``varchar(200)``): an explicit cast
    to ``varchar(n)`` would cut a long value short, the INSERT's own assignment refuses it instead."""
    return re.sub(r"\(.*?\)", "", str(field.db_type(connection)))


def _uses_plain_pre_save(field: models.Field[Any, Any]) -> bool:
    """Whether ``field.pre_save(obj, add=True)`` only reads the attribute (then it is read directly)."""
    if isinstance(field, models.DateField):
        return not (field.auto_now or field.auto_now_add)
    return type(field).pre_save is models.Field.pre_save


def _utc_datetimes(
    field: models.Field[Any, Any], raw: list[Any], types: set[type], connection: Any
) -> list[str] | None:
    """What ``get_db_prep_save`` makes of ``timezone.now()``-made values, ten times faster; None for others.

    Aware datetimes in UTC, ``USE_TZ``: PostgreSQL takes their ISO form; SQLite
    stores them naive in the connection's time zone (UTC unless the database sets
    ``TIME_ZONE``) as ``str()`` does, which is the ISO form with a space, no offset.
    """
    if types != {datetime} or not settings.USE_TZ or field.get_internal_type() != "DateTimeField":
        return None
    if any(v.tzinfo is not UTC for v in raw):
        return None
    if connection.vendor == "postgresql":
        return [v.isoformat() for v in raw]
    if connection.vendor == "sqlite" and connection.timezone is UTC:
        return [v.isoformat(" ")[:-6] for v in raw]  # without "+00:00"
    return None


class _Columns:
    """The column values of new notifications, for one set-based INSERT.

    A column whose value is the same for every row (most are, in a burst or a
    fan-out) travels once as a parameter (``shared``); the others (``varying``)
    travel one value per row in a JSON document. ``None`` from :meth:`of` when a
    value is an expression (``F()``, ``Value()``...): Django's own path compiles those.
    """

    def __init__(
        self,
        shared: list[tuple[models.Field[Any, Any], Any]],
        varying: list[tuple[models.Field[Any, Any], list[Any]]],
        encoder: type[json.JSONEncoder] | None = None,
    ) -> None:
        self.shared, self.varying = shared, varying
        #: PostgreSQL: the encoder of the document (that of the varying JSON field).
        self.encoder = encoder

    @classmethod
    def of(cls, objs: Sequence[Notification], connection: Any) -> _Columns | None:
        pg = connection.vendor == "postgresql"
        shared: list[tuple[models.Field[Any, Any], Any]] = []
        varying: list[tuple[models.Field[Any, Any], list[Any]]] = []
        encoders: set[type[json.JSONEncoder] | None] = set()
        states = [o.__dict__ for o in objs]
        n = len(objs)
        for f in Notification._meta.concrete_fields:
            if f.primary_key or f.attname in ("recipient_id", "seq") or f.generated:
                continue
            attname = f.attname
            if not _uses_plain_pre_save(f):
                raw = [f.pre_save(o, True) for o in objs]
            else:
                try:
                    raw = [state[attname] for state in states]
                except KeyError:  # a deferred field: Django loads it
                    raw = [getattr(o, attname) for o in objs]
            types = set(map(type, raw))
            if any(hasattr(t, "resolve_expression") for t in types):
                return None
            first = raw[0]
            json_field = f if isinstance(f, models.JSONField) else None
            if json_field is not None:
                if all(v is first for v in raw):  # not ==: {"a": 1} == {"a": True}
                    shared.append((f, None if first is None else json.dumps(first, cls=json_field.encoder)))
                    continue
                if pg:  # nested in the document as it is: the document is encoded with this field's encoder
                    encoders.add(json_field.encoder)
                    values = raw
                else:  # SQLite stores the text, as Django's own path does
                    encoder = (json_field.encoder or json.JSONEncoder)()
                    values = [None if v is None else encoder.encode(v) for v in raw]
            else:
                if len(types) == 1 and raw.count(first) == n:
                    shared.append((f, f.get_db_prep_save(first, connection)))
                    continue
                fast = _utc_datetimes(f, raw, types, connection)
                if fast is not None:
                    values = fast
                else:
                    prep = f.get_db_prep_save
                    values = [prep(v, connection) for v in raw]
                    if not set(map(type, values)).issubset(_JSON_NATIVE):
                        values = [_plain(v) for v in values]
                if not pg and any(type(v) is str and "\x00" in v for v in values):
                    # SQLite's json_extract ends text at a NUL; Django's path binds it whole.
                    return None
                if pg:
                    # Text with surrogates fails to encode here, as on Django's path. In the
                    # document it would be escaped as JSON "\udXXX", which jsonb turns into
                    # another character (a pair: the row would not hold the text given) or
                    # refuses as a DataError (a lone one).
                    "".join(v for v in values if type(v) is str).encode()
            varying.append((f, values))
        if len(encoders) > 1:
            return None
        return cls(shared, varying, next(iter(encoders), None))


def _create_sql_postgres(connection: Any, columns: _Columns, loud: bool | None, unique: bool) -> tuple[str, list[Any]]:
    """One statement that allocates the seqs of a chunk of new rows and inserts them (PostgreSQL).

    The rows come as one JSON document (``r``: recipient ``u``, the varying columns
    ``c0..``, ``l`` when whether a row counts varies, and its position ``ord``). The
    inbox upsert takes the recipients' row locks in user-id order and adds each
    one's rows and counted rows; each row gets ``last_seq - n + its rank within its
    recipient`` (by position), so a user's rows have consecutive seqs in the given order.
    Returns ``(pk, recipient, seq, None)`` per row, then ``(None, recipient, last seq, unread)`` per recipient.
    ``loud`` is whether every row counts (``None``: it varies, see ``l``); ``unique``:
    every recipient has one row (no grouping, no window).
    """
    qn = connection.ops.quote_name
    inbox, table = qn(Inbox._meta.db_table), qn(Notification._meta.db_table)
    pk = qn(Notification._meta.pk.column)
    names = ["u", *(f"c{i}" for i in range(len(columns.varying)))]
    types = ["bigint", *(_pg_type(f, connection) for f, _ in columns.varying)]
    if loud is None:
        names.append("l")
        types.append("boolean")
    counted = "r.l" if loud is None else ("true" if loud else "false")
    definition = ", ".join(f"{name} {kind}" for name, kind in zip(names, types, strict=True))
    source = (
        f"ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({definition})) WITH ORDINALITY AS r({', '.join(names)}, ord)"
    )
    if unique:
        per_user = ""
        allocate = f"SELECT u, 1, CASE WHEN {counted} THEN 1 ELSE 0 END, 0 FROM r"
        seq = "s.last_seq"
    else:
        per_user = f"k AS (SELECT u, count(*) AS n, count(*) FILTER (WHERE {counted}) AS c FROM r GROUP BY u), "
        allocate = "SELECT u, n, c, 0 FROM k"
        seq = "s.last_seq - count(*) OVER (PARTITION BY r.u) + row_number() OVER (PARTITION BY r.u ORDER BY r.ord)"
    targets = [qn("recipient_id"), qn("seq")]
    select = ["r.u", seq]
    params: list[Any] = []
    for f, value in columns.shared:
        targets.append(qn(f.column))
        select.append(f"CAST(%s AS {_pg_type(f, connection)})")
        params.append(value)
    for i, (f, _values) in enumerate(columns.varying):
        targets.append(qn(f.column))
        select.append(f"r.c{i}")
    sql = (
        f"WITH r AS (SELECT * FROM {source}), {per_user}"
        f"s AS (INSERT INTO {inbox} (user_id, last_seq, unread, pruned_seq) {allocate} WHERE true ORDER BY u "
        f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {inbox}.last_seq + EXCLUDED.last_seq, "
        f"unread = {inbox}.unread + EXCLUDED.unread RETURNING user_id, last_seq, unread), "
        f"c AS (INSERT INTO {table} ({', '.join(targets)}) SELECT {', '.join(select)} "
        f"FROM r JOIN s ON s.user_id = r.u ORDER BY r.ord RETURNING {pk}, recipient_id, seq) "
        # Side by side, not joined (see _send_sql): Python pairs them.
        f"SELECT c.{pk}, c.recipient_id, c.seq, NULL FROM c UNION ALL SELECT NULL, user_id, last_seq, unread FROM s"
    )
    return sql, params


def _create_sql_sqlite(connection: Any, columns: _Columns) -> tuple[str, list[Any]]:
    """The INSERT of rows whose seqs are allocated already (SQLite): one JSON document, one statement.

    Each element is ``[recipient, seq, varying columns...]``; returns ``(pk, recipient, seq)``.
    """
    qn = connection.ops.quote_name
    table = qn(Notification._meta.db_table)
    targets = [qn("recipient_id"), qn("seq")]
    select = ["json_extract(value, '$[0]')", "json_extract(value, '$[1]')"]
    params: list[Any] = []
    for f, value in columns.shared:
        targets.append(qn(f.column))
        select.append("%s")
        params.append(value)
    for i, (f, _values) in enumerate(columns.varying):
        targets.append(qn(f.column))
        select.append(f"json_extract(value, '$[{i + 2}]')")
    sql = (
        f"INSERT INTO {table} ({', '.join(targets)}) SELECT {', '.join(select)} FROM json_each(%s) "
        f"RETURNING {qn(Notification._meta.pk.column)}, recipient_id, seq"
    )
    return sql, params


def _user_chunks(objs: list[Notification], size: int) -> list[list[Notification]]:
    """``objs`` in chunks of whole users, users in id order (so the locks are taken in id order
    across chunks), each of about ``size`` rows; ``objs``' order kept within a chunk."""
    if len(objs) <= size:
        return [objs]
    per_user = Counter(o.recipient_id for o in objs)
    chunk_of: dict[int, int] = {}
    chunk, rows = 0, 0
    for uid in sorted(per_user):
        if rows and rows + per_user[uid] > size:
            chunk, rows = chunk + 1, 0
        chunk_of[uid] = chunk
        rows += per_user[uid]
    chunks: list[list[Notification]] = [[] for _ in range(chunk + 1)]
    for o in objs:
        chunks[chunk_of[o.recipient_id]].append(o)
    return chunks


def _create_set_based(objs: list[Notification], using: str) -> bool:
    """Insert new ``objs`` (no pk, no seq) with their seqs allocated, set-based; False if they need Django's path.

    PostgreSQL: one statement per chunk of ``SEND_CHUNK`` rows allocates the seqs
    and inserts (see :func:`_create_sql_postgres`). SQLite: two (the seq
    allocation, then one INSERT from a JSON document). Sets each object's ``pk``,
    ``seq``, ``_unread_after`` and ``_state`` as ``bulk_create`` does. Must run in
    the sending transaction.
    """
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite") or any(o.pk is not None for o in objs):
        return False
    columns = _Columns.of(objs, connection)
    if columns is None:
        return False
    for chunk in _user_chunks(objs, SEND_CHUNK):
        _create_chunk(chunk, columns if chunk is objs else _Columns.of(chunk, connection), using)
    return True


def _create_chunk(objs: list[Notification], columns: _Columns | None, using: str) -> None:
    assert columns is not None  # objs is a subset of rows that had no expression
    connection = connections[using]
    recipients = [o.recipient_id for o in objs]
    loud = [counts_as_unread(o) for o in objs]
    counts = Counter(recipients)
    loud_counts = Counter(uid for uid, counted in zip(recipients, loud, strict=True) if counted)
    varying = [values for _, values in columns.varying]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            everyone_counts = None if len(set(loud)) > 1 else loud[0]
            keys = ["u", *(f"c{i}" for i in range(len(varying)))]
            row_columns: list[Sequence[Any]] = [recipients, *varying]
            if everyone_counts is None:
                keys.append("l")
                row_columns.append(loud)
            document = json.dumps(
                [dict(zip(keys, row, strict=True)) for row in zip(*row_columns, strict=True)], cls=columns.encoder
            )
            sql, params = _create_sql_postgres(connection, columns, everyone_counts, len(counts) == len(objs))
            cursor.execute(sql, [document, *params])
            returned = cursor.fetchall()
            last = {uid: (seq, unread) for pk, uid, seq, unread in returned if pk is None}
            pks = {(uid, seq): pk for pk, uid, seq, _ in returned if pk is not None}
            next_seq = {uid: seq - counts[uid] + 1 for uid, (seq, _) in last.items()}
        else:
            last = allocate_seqs(list(counts), using, counts, {uid: loud_counts[uid] for uid in counts})
            next_seq = {uid: seq - counts[uid] + 1 for uid, (seq, _) in last.items()}
            seqs = []
            for uid in recipients:
                seqs.append(next_seq[uid])
                next_seq[uid] += 1
            sql, params = _create_sql_sqlite(connection, columns)
            # ensure_ascii=False: a lone surrogate then fails to bind (UnicodeEncodeError, as
            # on Django's path) instead of reaching json_extract as "\ud800", which SQLite
            # would store as bytes that are not UTF-8 (a row nobody could read back).
            document = json.dumps(list(zip(recipients, seqs, *varying, strict=True)), ensure_ascii=False)
            cursor.execute(sql, [*params, document])
            pks = {(uid, seq): pk for pk, uid, seq in cursor.fetchall()}
            next_seq = {uid: seq - counts[uid] + 1 for uid, (seq, _) in last.items()}
    next_unread = {uid: unread - loud_counts[uid] for uid, (_, unread) in last.items()}
    for obj, counted in zip(objs, loud, strict=True):
        uid = obj.recipient_id
        obj.seq = seq = next_seq[uid]
        next_seq[uid] = seq + 1
        obj.pk = pks[(uid, seq)]
        next_unread[uid] += counted
        obj._unread_after = next_unread[uid]  # type: ignore[attr-defined]
        obj._state.adding, obj._state.db = False, using


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> NotificationQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(recipient_id=user.pk)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)

    def read(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=False)

    def unread_count(self) -> int:
        """How many of these rows the badge counts (a COUNT; one user's total is ``Inbox.unread``)."""
        return self.filter(COUNTED).count()

    def after(self, seq: int) -> NotificationQuerySet:
        """What a client resuming from ``seq`` has not seen (the replay query)."""
        return self.filter(seq__gt=seq).order_by("seq")

    def grouped(self) -> NotificationQuerySet:
        """One entry per group: notifications without a ``group_key``, and the newest of each
        (category, group_key) among the rows of this queryset, annotated with
        ``group_count`` / ``group_unread`` (1 / 0-or-1 for ungrouped rows).

        The groups are computed within this queryset's own filters (an "unread" view
        groups the unread items), so paginating the result pages through entries, not rows.
        """
        base = self.order_by()
        same = dict(
            recipient_id=OuterRef("recipient_id"), category=OuterRef("category"), group_key=OuterRef("group_key")
        )
        newer = base.filter(**same, seq__gt=OuterRef("seq"))
        members = base.filter(**same).values("recipient_id")
        count = members.annotate(n=Count("pk")).values("n")
        unread = members.filter(read_at__isnull=True).annotate(n=Count("pk")).values("n")
        return self.filter(Q(group_key="") | ~Exists(newer)).annotate(
            group_count=Case(When(group_key="", then=Value(1)), default=Coalesce(Subquery(count), Value(1))),
            group_unread=Case(
                When(group_key="", then=Case(When(read_at__isnull=True, then=Value(1)), default=Value(0))),
                default=Coalesce(Subquery(unread), Value(0)),
            ),
        )

    def group_of(self, notification: Notification) -> NotificationQuerySet:
        """The notifications shown together with ``notification`` (itself alone if it has no group)."""
        if not notification.group_key:
            return self.filter(pk=notification.pk)
        return self.filter(
            recipient_id=notification.recipient_id,
            category=notification.category,
            group_key=notification.group_key,
        )

    # -- sending -------------------------------------------------------------------------------

    def send(
        self,
        users: Sequence[int] | models.QuerySet[Any],
        values: Mapping[str, Any],
        overrides: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> SentNotifications:
        """Create one notification with ``values`` for each user, set-based; publish after commit.

        ``users`` is distinct user ids, or a queryset of users (then the
        recipients are selected inside the database: a send to everyone never
        brings the user list into Python). ``overrides`` gives some users their
        own value for some fields (e.g. a preference resolved at send time).
        PostgreSQL: one statement per ``SEND_CHUNK`` users allocates the seqs
        (upsert on the inbox, row locks in user-id order, held to commit) and
        inserts the rows, returning what the publisher needs. SQLite: two.
        Values are not validated here; ``send_notification`` does that.
        """
        from . import preferences, publish

        self._for_write = True  # the write database (a router's db_for_write), as bulk_create
        using = self.db
        connection = connections[using]
        # Each recipient's in-app and desktop choice for the category, fixed now (as bulk_create does).
        defaults, chosen = preferences.resolve_for_send(users, values.get("category", DEFAULT_CATEGORY), using)
        values = {**defaults, **values}
        extra = {uid: dict(mine) for uid, mine in chosen.items()}
        for uid, mine in (overrides or {}).items():
            extra.setdefault(uid, {}).update(mine)
        extra = {uid: mine for uid, mine in extra.items() if mine}
        if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
            if isinstance(users, models.QuerySet):
                users = sorted(set(users.values_list("pk", flat=True)))
            objs = [Notification(recipient_id=uid, **{**values, **extra.get(uid, {})}) for uid in sorted(set(users))]
            made = self.bulk_create(objs, batch_size=500)
            made_rows = [(n.pk, n.recipient_id, n.seq, getattr(n, "_unread_after", 0)) for n in made]
            return SentNotifications(dict(values), made_rows, using, extra)
        if isinstance(users, models.QuerySet):
            sql, params = users.order_by().values(uid=F("pk")).distinct().query.get_compiler(using).as_sql()
            sources = [(sql, list(params))]
        else:
            ids = sorted(set(users))
            if connection.vendor == "postgresql":
                sources = [
                    ("SELECT value::bigint AS uid FROM jsonb_array_elements_text(%s::jsonb)", [json.dumps(list(chunk))])
                    for chunk in chunked(ids, SEND_CHUNK)
                ]
            else:
                sources = [
                    ("SELECT value AS uid FROM json_each(%s)", [json.dumps(list(chunk))])
                    for chunk in chunked(ids, SEND_CHUNK)
                ]
        rows: list[tuple[int, int, int, int]] = []
        with transaction.atomic(using=using, savepoint=False):
            for source in sources:
                statements, all_params = _send_sql(connection, source, dict(values), extra)
                with connection.cursor() as cursor:
                    if len(statements) == 1:
                        cursor.execute(statements[0], all_params[0])
                        fetched = cursor.fetchall()
                        unread = {uid: count for pk, uid, _seq, count in fetched if pk is None}
                        rows.extend((pk, uid, seq, unread[uid]) for pk, uid, seq, _ in fetched if pk is not None)
                    else:
                        cursor.execute(statements[0], all_params[0])
                        unread = {uid: count for uid, _seq, count in cursor.fetchall()}
                        cursor.execute(statements[1], all_params[1])
                        rows.extend((pk, uid, seq, unread[uid]) for pk, uid, seq in cursor.fetchall())
            rows.sort(key=lambda row: row[1])
            sent = SentNotifications(dict(values), rows, using, extra)
            if rows:
                transaction.on_commit(lambda: publish.publish_created(sent), using=using, robust=True)
        return sent

    def bulk_create(
        self,
        objs: Iterable[Notification],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[Notification]:
        """Create notifications the one correct way: seq allocated, published after commit.

        Every path that creates notifications of arbitrary content (the signal,
        the admin, direct use of the manager) comes through here, so none can
        skip the cursor, the unread count or the push. ``post_save`` is not involved.

        New rows (no pk, no seq) are written set-based: on PostgreSQL one statement
        per ``SEND_CHUNK`` rows allocates the seqs and inserts, on SQLite two; the
        columns every row shares travel once, the others in one JSON document, so
        ``batch_size`` changes nothing there. Rows that bring their own seq or pk,
        field values that are expressions, the conflict options and databases
        without ``RETURNING`` take Django's own ``bulk_create`` (after the same seq
        allocation).
        """
        from . import preferences, publish

        if batch_size is not None and batch_size <= 0:
            raise ValueError("Batch size must be a positive integer.")
        objs = list(objs)
        if not objs:
            return objs
        for o in objs:
            if o._state.fields_cache:  # a related object assigned: Django's checks (unsaved, saved since)
                o._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        self._for_write = True
        using = self.db
        options = {
            "batch_size": batch_size,
            "ignore_conflicts": ignore_conflicts,
            "update_conflicts": update_conflicts,
            "update_fields": update_fields,
            "unique_fields": unique_fields,
        }
        with transaction.atomic(using=using, savepoint=False):
            need = [o for o in objs if not o.seq]
            # Each recipient's in-app and desktop choice for the category, fixed now:
            # streams then need no preference lookup per event.
            preferences.apply_to(need, using)
            plain = not (ignore_conflicts or update_conflicts or update_fields or unique_fields)
            if not (
                plain
                and len(need) == len(objs)
                and connections[using].features.can_return_columns_from_insert
                and _create_set_based(objs, using)
            ):
                self._django_bulk_create(objs, need, using, options)
            transaction.on_commit(lambda: publish.publish_created(objs), using=using, robust=True)
        return objs

    def _django_bulk_create(
        self, objs: list[Notification], need: list[Notification], using: str, options: dict[str, Any]
    ) -> None:
        """Allocate the seqs of ``need`` in one statement per chunk, then Django's ``bulk_create``."""
        # Rows that bring their own seq (fixtures, copies): the highest per user.
        highest: dict[int, int] = {}
        for o in objs:
            if o.seq:
                highest[o.recipient_id] = max(highest.get(o.recipient_id, 0), o.seq)
        preset = set(highest)
        # One seq per notification: a user named twice gets two consecutive seqs,
        # in the order of ``objs``; one allocation for all of them.
        counts = Counter(o.recipient_id for o in need)
        if counts:
            loud = Counter(o.recipient_id for o in need if counts_as_unread(o))
            last = allocate_seqs(list(counts), using, counts, {uid: loud[uid] for uid in counts})
            next_seq = {uid: seq - counts[uid] + 1 for uid, (seq, _) in last.items()}
            next_unread = {uid: unread - loud[uid] for uid, (_, unread) in last.items()}
            for obj in need:
                uid = obj.recipient_id
                obj.seq = next_seq[uid]
                next_seq[uid] += 1
                next_unread[uid] += int(counts_as_unread(obj))
                obj._unread_after = next_unread[uid]  # type: ignore[attr-defined]
        if preset:
            # Rows that bring their own seq (fixtures, copies): count them under the lock,
            # and move each counter past them, so that later sends continue after the
            # highest seq given instead of running into it (an IntegrityError on every send).
            Inbox.objects.using(using).bulk_create(
                [Inbox(user_id=uid) for uid in sorted(highest)], ignore_conflicts=True
            )
            with counts_kept(preset, using) as kept:
                super().bulk_create(objs, **options)
                for uid in kept.users:
                    Inbox.objects.using(using).filter(user_id=uid, last_seq__lt=highest[uid]).update(
                        last_seq=highest[uid]
                    )
        else:
            super().bulk_create(objs, **options)

    # -- read state and deletion: every path keeps Inbox.unread exact ------------------------

    def mark_read(self) -> int:
        """Mark every unread notification here read; return how many.

        Recipients' other tabs and devices are told after commit, with the ids.
        """
        return self._set_read(timezone.now())

    def mark_all_read(self) -> int:
        """:meth:`mark_read` for "mark all read": a user left with nothing unread is told
        ``ids: null`` (all), as the protocol documents, not thousands of ids."""
        return self._set_read(timezone.now(), everything=True)

    def mark_unread(self) -> int:
        return self._set_read(None)

    def _set_read(self, when: Any, everything: bool = False) -> int:
        from . import publish

        target = self.filter(read_at__isnull=True) if when else self.filter(read_at__isnull=False)
        using = self.db
        by_user: dict[int, list[int]] = {}
        changed = 0
        with counts_kept(target.values("recipient_id"), using) as kept:
            for chunk in chunked(kept.users):
                mine = target.filter(recipient_id__in=chunk)
                for uid, pk in mine.order_by().values_list("recipient_id", "pk"):
                    by_user.setdefault(uid, []).append(pk)
                changed += models.QuerySet.update(mine, read_at=when)
        if not by_user:
            return 0
        counts = kept.counts

        def tell() -> None:
            publish.publish_read(
                {uid: (counts[uid], None if everything and counts[uid] == 0 else ids) for uid, ids in by_user.items()},
                read=when is not None,
            )

        transaction.on_commit(tell, using=using, robust=True)
        return changed

    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update()``; a change that can move unread counts keeps them exact."""
        if not COUNT_FIELDS.intersection(kwargs):
            return super().update(**kwargs)
        using = self.db
        users: Any = self.values("recipient_id")
        with counts_kept(users, using) as kept:
            new_owner = kwargs.get("recipient_id", kwargs.get("recipient"))
            if new_owner is not None:
                lock_inboxes([getattr(new_owner, "pk", new_owner)], using)
            changed = 0
            for chunk in chunked(kept.users):
                changed += super(NotificationQuerySet, self.filter(recipient_id__in=chunk)).update(**kwargs)
            if new_owner is not None:
                recount_unread([getattr(new_owner, "pk", new_owner)], using)
            return changed

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Iterable[Notification], fields: Iterable[str], batch_size: int | None = None) -> int:
        objs, fields = list(objs), list(fields)
        if not COUNT_FIELDS.intersection(fields):
            return super().bulk_update(objs, fields, batch_size)
        with counts_kept({o.recipient_id for o in objs}, self.db):
            return super().bulk_update(objs, fields, batch_size)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete in one statement per chunk of users, counts kept (not one recount per row)."""
        using = self.db
        total, per_model = 0, Counter[str]()
        with counts_kept(self.values("recipient_id"), using) as kept:
            for chunk in chunked(kept.users):
                n, by_model = super(NotificationQuerySet, self.filter(recipient_id__in=chunk)).delete()
                total += n
                per_model.update(by_model)
        return total, dict(per_model)

    delete.alters_data = True  # type: ignore[attr-defined]

    # -- pruning ---------------------------------------------------------------------------------

    def prunable(self, older_than: timedelta | datetime, *, include_unread: bool = False) -> NotificationQuerySet:
        """The rows :meth:`prune` would delete: created before ``older_than`` (an age or a moment),
        read ones only unless ``include_unread``."""
        cutoff = timezone.now() - older_than if isinstance(older_than, timedelta) else older_than
        old = self.filter(created_at__lt=cutoff)
        return old if include_unread else old.filter(read_at__isnull=False)

    def prune(
        self,
        older_than: timedelta | datetime,
        *,
        include_unread: bool = False,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete old notifications in batches of ``batch_size``, one short transaction each; return how many.

        Each batch locks its users' inbox rows first (the order every writer uses,
        so a prune never deadlocks with sends), keeps only the rows that still
        qualify under the lock, raises each user's ``Inbox.pruned_seq`` to the
        highest seq it deletes (a stream resuming from an older cursor then gets
        a ``reset`` instead of a silent gap) and sets the unread counts.
        ``progress(total so far)`` is called after each batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size!r}.")
        using = self.db
        old = self.prunable(older_than, include_unread=include_unread)
        total = 0
        while True:
            candidates = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not candidates:
                return total
            batch = Notification.objects.using(using).filter(pk__in=candidates)
            with counts_kept(batch.values("recipient_id"), using) as kept:
                rows = list(
                    old.filter(pk__in=candidates, recipient_id__in=kept.users).values_list("recipient_id", "seq")
                )
                _raise_pruned_seq(rows, using)
                super(NotificationQuerySet, old.filter(pk__in=candidates, recipient_id__in=kept.users)).delete()
            total += len(rows)
            if progress is not None:
                progress(total)

    prune.alters_data = True  # type: ignore[attr-defined]


def _raise_pruned_seq(deleted: list[tuple[int, int]], using: str) -> None:
    """Set ``pruned_seq = max(pruned_seq, highest deleted seq)`` per user; the caller holds their inbox locks."""
    highest: dict[int, int] = {}
    for user_id, seq in deleted:
        highest[user_id] = max(seq, highest.get(user_id, 0))
    # Two parameters per user in the CASE: half a chunk per statement.
    for chunk in chunked(sorted(highest.items()), CHUNK // 2):
        top = Case(
            *(When(user_id=uid, then=Value(seq)) for uid, seq in chunk),
            default=F("pruned_seq"),
            output_field=models.PositiveBigIntegerField(),
        )
        Inbox.objects.using(using).filter(user_id__in=[uid for uid, _ in chunk]).update(
            pruned_seq=Greatest(F("pruned_seq"), top)
        )


#: Fields whose change can move a user's unread count (see ``COUNTED``).
COUNT_FIELDS = frozenset({"read_at", "in_app", "recipient", "recipient_id"})


class NotificationManager(models.Manager.from_queryset(NotificationQuerySet)):  # type: ignore[misc]
    pass


#: Most members of one group listed when it is expanded (the count still says how many).
GROUP_ITEMS = 20


def attach_group_items(entries: Sequence[Notification], members: NotificationQuerySet) -> None:
    """Give each grouped entry on a page its members (``entry.group_items``), in one query.

    ``members`` is the queryset the entries came from (the same user and filters).
    """
    groups = {(e.category, e.group_key): e for e in entries if e.group_key and getattr(e, "group_count", 1) > 1}
    for entry in entries:
        grouped = groups.get((entry.category, entry.group_key)) is entry
        entry.group_items = [] if grouped else None  # type: ignore[attr-defined]
    if not groups:
        return
    match = Q()
    for category, key in groups:
        match |= Q(category=category, group_key=key)
    newest_first = Window(RowNumber(), partition_by=[F("category"), F("group_key")], order_by=F("seq").desc())
    rows = members.filter(match).annotate(rank=newest_first).filter(rank__lte=GROUP_ITEMS)
    for item in rows.select_related("actor").order_by("-seq"):
        groups[(item.category, item.group_key)].group_items.append(item)  # type: ignore[attr-defined]


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sse_notifications",
        verbose_name=_("recipient"),
        # The (recipient, seq) unique constraint's index serves every lookup by recipient;
        # a second one would only cost each inserted row another index entry.
        db_index=False,
    )
    seq = models.PositiveBigIntegerField(
        _("sequence"), editable=False, help_text=_("Per-recipient position; the stream's resume cursor.")
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.INFO)
    url = models.CharField(_("link"), max_length=2000, blank=True)
    data = models.JSONField(_("data"), null=True, blank=True, encoder=DjangoJSONEncoder)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
        db_index=False,  # see the partial index "sse_notify_actor": most rows have no actor
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    # The columns below have database defaults too, so rows inserted by set-based
    # SQL (or by older code) that leave them out get the same values as the ORM.
    category = models.CharField(
        _("category"),
        max_length=SLUG_MAX_LENGTH,
        default=DEFAULT_CATEGORY,
        db_default=DEFAULT_CATEGORY,
        help_text=_("One of the project's categories (SSE_NOTIFY['CATEGORIES'])."),
    )
    group_key = models.CharField(
        _("group"),
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text=_("Notifications of one category with the same group show as one entry."),
    )
    in_app = models.BooleanField(
        _("shown in the app"),
        default=True,
        db_default=True,
        help_text=_("The recipient's in-app choice when it was sent: off means listed, but no toast and not counted."),
    )
    desktop = models.BooleanField(
        _("desktop notification"),
        default=True,
        db_default=True,
        help_text=_("The recipient's desktop choice when it was sent."),
    )
    # Email for what was not seen (sse_notify.emailing). db_default too: set-based
    # INSERTs that name no email columns still start the row as pending.
    email_state = models.CharField(
        _("email"),
        max_length=10,
        choices=EmailState.choices,
        default=EmailState.PENDING,
        db_default=EmailState.PENDING,
        editable=False,
    )
    email_claim = models.CharField(max_length=32, blank=True, default="", db_default="", editable=False)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True, editable=False)

    objects = NotificationManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            # Also the index for the replay query (recipient, seq > cursor).
            models.UniqueConstraint(fields=["recipient", "seq"], name="sse_notify_recipient_seq"),
        ]
        indexes = [
            models.Index(
                fields=["recipient", "seq"],
                condition=Q(read_at__isnull=True),
                name="sse_notify_unread",
            ),
            # Reading a group (and counting its items) for one recipient; partial,
            # so notifications without a group cost nothing.
            models.Index(
                fields=["recipient", "category", "group_key"],
                condition=~Q(group_key=""),
                name="sse_notify_group",
            ),
            # For SET_NULL when an actor is deleted; rows without an actor (most: every
            # send to many users) add no entry.
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="sse_notify_actor"),
            # The email pass reads only rows still on their way to an email. Every new row is
            # "pending", so that index is in time order: a send appends to it. (Inserting a send's
            # 100,000 rows on PostgreSQL took 2.2 s with the (state, recipient, created) index
            # this replaced, whose entries land all over it, and 1.7 s with these two.) A row
            # enters the per-user index only when the pass gives it its recipient's mode, which
            # few rows get.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(email_state=EmailState.PENDING.value),
                name="sse_notify_email_pending",
            ),
            models.Index(
                fields=["email_state", "recipient", "created_at"],
                condition=Q(email_state__in=[state.value for state in EMAIL_QUEUED]),
                name="sse_notify_email_due",
            ),
            # A runner reads back what its claim took (and stale claims are counted).
            models.Index(
                fields=["email_claim"],
                condition=Q(email_state="claimed"),
                name="sse_notify_email_claimed",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        using = kwargs.get("using") or router.db_for_write(Notification, instance=self)
        if self._state.adding and not self.seq:
            # A new row made with save() (e.g. the admin's add form) takes the same
            # path as a bulk send: seq under lock, publish after commit.
            Notification.objects.using(using).bulk_create([self])
            self._state.adding = False
            return
        fields = kwargs.get("update_fields")
        if fields is not None and not COUNT_FIELDS.intersection(fields):
            super().save(*args, **kwargs)
            return
        # The row may change its read state (or be loaded stale): count under the lock.
        users = {self.recipient_id}
        if not self._state.adding and self.pk is not None:
            users.update(
                Notification._base_manager.using(using).filter(pk=self.pk).values_list("recipient_id", flat=True)
            )
        with counts_kept(users, using):
            super().save(*args, **kwargs)

    save.alters_data = True  # type: ignore[attr-defined]

    def delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        using = using or router.db_for_write(Notification, instance=self)
        with counts_kept([self.recipient_id], using):
            return super().delete(using=using, keep_parents=keep_parents)

    delete.alters_data = True  # type: ignore[attr-defined]

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    def common_fields(self) -> dict[str, Any]:
        """The payload shared by every recipient of one send (no per-user fields)."""
        return {
            "title": self.title,
            "body": self.body,
            "level": self.level,
            "url": self.url,
            # What the page may link to (the one link policy, sse_notify.links), or None.
            "href": links.href(self.url),
            "data": self.data,
            "created": self.created_at.isoformat(),
            "actor": str(self.actor) if self.actor_id and self.actor else None,
            "category": self.category,
            "group": self.group_key,
            # Per recipient, but recipients with the same choices share a message:
            # a send is at most four layer payloads however many users it reaches.
            "in_app": self.in_app,
            "desktop": self.desktop,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by the list endpoint (the stream adds ``unread``).

        An entry of ``grouped()`` adds ``group_count``, ``group_unread`` and, when
        the view attached them (``group_items``), ``items``: the group's members,
        newest first, for expanding it.
        """
        out = {
            "id": self.pk,
            "seq": self.seq,
            **self.common_fields(),
            "read": self.is_read,
        }
        if hasattr(self, "group_count"):
            out["group_count"] = self.group_count
            out["group_unread"] = self.group_unread  # type: ignore[attr-defined]
        items = getattr(self, "group_items", None)
        if items is not None:
            out["items"] = [item.to_dict() for item in items]
        return out


class Preference(models.Model):
    """One person's choices for one category; ``None`` follows the category's default.

    Only what differs from the default is stored (a page that saves every field
    stores nothing for untouched ones), so a project that changes a default
    reaches everyone who never chose otherwise.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sse_notify_preferences",
        verbose_name=_("user"),
    )
    category = models.CharField(_("category"), max_length=SLUG_MAX_LENGTH)
    in_app = models.BooleanField(_("in the app"), null=True, blank=True)
    desktop = models.BooleanField(_("desktop"), null=True, blank=True)
    email = models.CharField(_("email"), max_length=10, choices=EmailMode.choices, null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "category"], name="sse_notify_preference_user_category"),
        ]

    def __str__(self) -> str:
        return f"preferences of user {self.user_id} for {self.category}"


#: Largest primary key a request may name: a signed 64-bit integer, the widest id
#: column of any supported database. SQLite cannot even compare a larger Python
#: int (``OverflowError``, a 500), so request values beyond it are refused first.
MAX_ID = 2**63 - 1


def is_id(value: Any) -> bool:
    """Whether ``value`` (from a request) can be a row's primary key: digits, 1..MAX_ID."""
    text = str(value).strip()
    return text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID
