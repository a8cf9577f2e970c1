"""Which open streams' sessions still sign their user in.

Signing out ends a session's streams at once (``user_logged_out`` → the layer).
Everything else that ends a session while a stream is open (a password change,
the session deleted or expired, the user deactivated) and a sign-out message
the layer dropped, is found here: each process's hub re-checks the sessions of
its streams every ``SESSION_CHECK_INTERVAL`` seconds, in a few queries for all
of them (database-backed session engines), with the checks of
``django.contrib.auth.get_user``: the session exists and is not expired, names
the user through a configured backend that still accepts them (``is_active``),
and its auth hash matches the user's (the current secret or a fallback).
Read-only: unlike ``get_user`` nothing is flushed or cycled here.

The hub's check runs every few seconds over every stream, so it remembers what
is costly and cannot change unseen (``SessionCheck``): the claims decoded from
each session's stored data, kept while that data is byte-for-byte the same
(decoding is a signature check, zlib and JSON), and the auth hash of each user,
kept while their password column is the same (an HMAC), both dropped whenever the
secrets, the session engine or serializer, the backends or the user model change.
Every check still reads every session row and every user's password and
``is_active`` from the database: what ends a session is always seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import AllowAllUsersModelBackend, AllowAllUsersRemoteUserBackend, ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.crypto import constant_time_compare

#: Most rows per query.
CHUNK = 2000
#: Rows per query where the database takes fewer parameters than ``CHUNK`` (SQLite: 999).
SMALL_CHUNK = 900

#: ``user_can_authenticate`` implementations that read nothing but ``is_active``
#: (``ModelBackend``'s) or nothing at all (the "allow all users" backends').
_PLAIN_ACCEPT = {
    ModelBackend.user_can_authenticate: True,
    AllowAllUsersModelBackend.user_can_authenticate: False,
    AllowAllUsersRemoteUserBackend.user_can_authenticate: False,
}

#: A session's claims: (backend path, user pk, session auth hash or None).
Claims = tuple[str, Any, str | None]


def chunks(values: Sequence[Any], alias: str, extra: int = 0) -> Iterator[Sequence[Any]]:
    """``values`` in slices small enough for one query on database ``alias`` (with ``extra`` other parameters)."""
    limit = connections[alias].features.max_query_params
    size = CHUNK if limit is None or limit >= CHUNK + extra else max(1, min(SMALL_CHUNK, limit - extra))
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in(conn: Any, column: str, field: Any, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """SQL and parameters for ``column IN values``: on PostgreSQL one array parameter
    (``= ANY(%s::type[])``: psycopg parses a query with thousands of placeholders on
    every execute), elsewhere one placeholder per value."""
    db_type = field.db_type(conn)
    if conn.vendor == "postgresql" and db_type:
        return f"{column} = ANY(%s::{db_type}[])", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def select_in(
    model: Any, columns: Sequence[str], key: str, values: Sequence[Any], after: tuple[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM model's table WHERE key IN values [AND field > value]``, in chunks.

    Plain SQL for the hub's periodic reads over every stream: the ORM spends
    more CPU preparing a long ``IN`` list than the database spends answering it.
    Only for fields whose database values need no conversion (text, integers).
    """
    meta = model._meta
    alias = model._default_manager.db
    conn = connections[alias]
    qn = conn.ops.quote_name
    select = ", ".join(qn(meta.get_field(c).column) for c in columns)
    head = f"SELECT {select} FROM {qn(meta.db_table)} WHERE "
    key_field = meta.get_field(key)
    tail = ""
    params: list[Any] = []
    if after is not None:
        field = meta.get_field(after[0])
        tail = f" AND {qn(field.column)} > %s"
        params.append(field.get_db_prep_value(after[1], conn))
    rows: list[tuple[Any, ...]] = []
    with conn.cursor() as cursor:
        for chunk in chunks(values, alias, len(params)):
            sql, chunk_params = _in(conn, qn(key_field.column), key_field, chunk)
            cursor.execute(head + sql + tail, [*chunk_params, *params])
            rows.extend(cursor.fetchall())
    return rows


def _settings_key() -> tuple[Any, ...]:
    """What decoded claims and auth hashes depend on besides the stored data and the password."""
    return (
        settings.SECRET_KEY,
        tuple(settings.SECRET_KEY_FALLBACKS),
        settings.SESSION_ENGINE,
        settings.SESSION_SERIALIZER,
        tuple(settings.AUTHENTICATION_BACKENDS),
        settings.AUTH_USER_MODEL,
    )


def _claims(values: Mapping[str, Any], to_python: Any) -> Claims | None:
    try:
        return values[BACKEND_SESSION_KEY], to_python(values[SESSION_KEY]), values.get(HASH_SESSION_KEY)
    except (KeyError, ValueError, TypeError, ValidationError):
        return None


def _plain_hash(model: Any) -> bool:
    """True if the user model's session auth hash is ``AbstractBaseUser``'s: an HMAC of
    the password column and the secret (what Django documents), so it can be kept
    while the password is unchanged. A model that overrides it is asked every time."""
    return (
        model.get_session_auth_hash is AbstractBaseUser.get_session_auth_hash
        and getattr(model, "_get_session_auth_hash", None) is getattr(AbstractBaseUser, "_get_session_auth_hash", 0)
        and model.get_session_auth_fallback_hash is AbstractBaseUser.get_session_auth_fallback_hash
        and _concrete(model, "password")
    )


def _concrete(model: Any, name: str) -> bool:
    return any(f.attname == name for f in model._meta.concrete_fields)


#: A user a backend still accepts, as far as the check needs it: (pk, password column or
#: None if the hash must be asked of the user, the user instance or None). A plain tuple
#: (of an int and a str, usually): the garbage collector stops tracking it at once, so
#: thousands per check do not pile up towards a full collection of the whole process.
Accepted = tuple[Any, str | None, Any]


class SessionCheck:
    """``signed_in`` with memory, for checking the same sessions again and again (the hub's).

    Kept between checks: per session key, the stored session data last seen and
    the claims decoded from it; per user and password column, the session auth
    hash (and, once asked for, the fallback hashes). Everything is dropped when
    ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``, the session engine or serializer, the
    authentication backends or the user model change. What the database says is
    read on every check: the session rows (present, unexpired, their data) and the
    users (present, ``is_active`` or the backend's own test, password).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        #: session key → (stored session data, claims decoded from it).
        self._decoded: dict[str, tuple[str, Claims | None]] = {}
        #: (user pk, password column) → [auth hash, fallback hashes or None until needed].
        self._hashes: dict[tuple[Any, str], list[Any]] = {}

    def __call__(self, sessions: Mapping[str, Any], complete: bool = False) -> set[str]:
        """The keys of ``sessions`` (session key → the stream's user id) that still sign
        that user in. ``complete``: these are all the sessions the caller holds, so
        what is remembered about any other is forgotten."""
        with self._lock:
            return self._check(sessions, complete)

    def _check(self, sessions: Mapping[str, Any], complete: bool) -> set[str]:
        key = _settings_key()
        if key != self._key:
            self._key = key
            self._decoded = {}
            self._hashes = {}
        claims = self._session_claims(list(sessions), complete)
        wanted: dict[str, set[Any]] = {}
        for path, pk, _given in claims.values():
            wanted.setdefault(path, set()).add(pk)
        users = self._users(wanted)
        hashes = self._hashes
        if complete:
            self._hashes = {}
        valid: set[str] = set()
        for session_key, (path, pk, given) in claims.items():
            accepted = users.get((path, pk))
            if accepted is None:
                continue
            user_pk, password, user = accepted
            if user_pk != sessions[session_key]:
                continue
            if password is None:  # the hash is the user's own business: ask it
                if user is not None and _hash_ok(given, user):
                    valid.add(session_key)
                continue
            memo = hashes.get((user_pk, password))
            if memo is None:
                memo = hashes[(user_pk, password)] = [_instance(accepted).get_session_auth_hash(), None]
            if complete:
                self._hashes[(user_pk, password)] = memo
            if not given:
                continue
            if constant_time_compare(given, memo[0]):
                valid.add(session_key)
                continue
            if memo[1] is None:
                memo[1] = tuple(_instance(accepted).get_session_auth_fallback_hash())
            if any(constant_time_compare(given, h) for h in memo[1]):
                valid.add(session_key)
        return valid

    def clear(self) -> None:
        """Forget everything (the caller holds no session any more)."""
        with self._lock:
            self._decoded = {}
            self._hashes = {}

    def _session_claims(self, keys: list[str], complete: bool) -> dict[str, Claims]:
        """The claims of the sessions that still exist and are unexpired, by key."""
        store = import_module(settings.SESSION_ENGINE).SessionStore
        to_python = get_user_model()._meta.pk.to_python
        found: dict[str, Claims] = {}
        get_model_class = getattr(store, "get_model_class", None)
        if get_model_class is None:  # cache, file, signed cookies: the engine's own load, every time
            for key in keys:
                data = store(key).load()
                claims = _claims(data, to_python) if data else None
                if claims is not None:
                    found[key] = claims
            return found
        # db and cached_db: the rows themselves, one query per chunk.
        rows = select_in(
            get_model_class(), ("session_key", "session_data"), "session_key", keys, ("expire_date", timezone.now())
        )
        wanted = set(keys)
        old = self._decoded
        new: dict[str, tuple[str, Claims | None]] = {} if complete else old
        decoder = None
        stored: set[str] = set()
        for key, data in rows:
            if key not in wanted:
                continue  # a database that compares keys case-insensitively
            stored.add(key)
            memo = old.get(key)
            if memo is None or memo[0] != data:
                if decoder is None:
                    decoder = store()
                memo = (data, _claims(decoder.decode(data), to_python))
            new[key] = memo
            if memo[1] is not None:
                found[key] = memo[1]
        if not complete:
            for key in wanted - stored:
                new.pop(key, None)
        self._decoded = new
        return found

    def _users(self, wanted: dict[str, set[Any]]) -> dict[tuple[str, Any], Accepted]:
        """The users each backend still accepts: ``{(backend path, pk): user}``."""
        users: dict[tuple[str, Any], Accepted] = {}
        for path, pks in wanted.items():
            if path not in settings.AUTHENTICATION_BACKENDS:
                continue
            backend = load_backend(path)
            if not isinstance(backend, ModelBackend) or type(backend).get_user is not ModelBackend.get_user:
                for pk in pks:  # the backend's own get_user, one by one
                    found: Any = backend.get_user(pk)
                    if found is not None:
                        users[(path, pk)] = (found.pk, None, found)
                continue
            # ModelBackend.get_user for all of them at once: the user exists and
            # user_can_authenticate accepts them.
            model = get_user_model()
            manager = model._default_manager
            ids = list(pks)
            plain_hash = _plain_hash(model)
            reads_active = _PLAIN_ACCEPT.get(type(backend).user_can_authenticate)
            active = _is_active(model)
            if plain_hash and reads_active is not None and active is not None:
                # Columns, not instances: the password (for the hash) and is_active.
                column = active is _COLUMN
                fields = ["pk", "password", *(["is_active"] if column else [])]
                for chunk in chunks(ids, manager.db):
                    for row in manager.filter(_pk_in(model, chunk)).values_list(*fields):
                        if reads_active and not (row[2] if column else active):
                            continue
                        users[(path, row[0])] = (row[0], row[1], None)
                continue
            for chunk in chunks(ids, manager.db):
                for user in manager.filter(_pk_in(model, chunk)):
                    if backend.user_can_authenticate(user):
                        users[(path, user.pk)] = (user.pk, user.password if plain_hash else None, user)
        return users


#: Primary keys whose values go to the database as they are (see ``_pk_in``).
_INTEGER_KEYS = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField"}


def _pk_in(model: Any, pks: Sequence[Any]) -> Any:
    """``pk__in=pks`` for a filter. For an integer primary key as plain SQL inside the
    queryset (the default manager's filters still apply): the ORM's preparation of
    each value of a long ``IN`` list costs more CPU than the query."""
    meta = model._meta
    if meta.pk.get_internal_type() not in _INTEGER_KEYS or not pks:
        return Q(pk__in=pks)
    conn = connections[model._default_manager.db]
    qn = conn.ops.quote_name
    sql, params = _in(conn, f"{qn(meta.db_table)}.{qn(meta.pk.column)}", meta.pk, [int(pk) for pk in pks])
    return RawSQL(sql, params, output_field=BooleanField())


#: ``_is_active``: the user model has an ``is_active`` column.
_COLUMN: Any = object()


def _is_active(model: Any) -> Any:
    """``_COLUMN`` if ``is_active`` is a column of the user model, its value if it is a plain
    class attribute (``AbstractBaseUser.is_active = True``), None if it is computed."""
    if _concrete(model, "is_active"):
        return _COLUMN
    value = getattr(model, "is_active", True)
    return value if isinstance(value, bool) else None


def _instance(accepted: Accepted) -> Any:
    """A user instance to ask for its session auth hash (only the password matters, see ``_plain_hash``)."""
    pk, password, user = accepted
    if user is not None:
        return user
    assert password is not None
    return get_user_model()(pk=pk, password=password)


def _hash_ok(given: str | None, user: Any) -> bool:
    if not hasattr(user, "get_session_auth_hash"):
        return True
    if not given:
        return False
    if constant_time_compare(given, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(given, h) for h in user.get_session_auth_fallback_hash())


def signed_in(sessions: Mapping[str, Any]) -> set[str]:
    """The keys of ``sessions`` (session key → the stream's user id) that still sign that user in."""
    return SessionCheck()(sessions)


def stored_sessions(session_key: str) -> Any:
    """A queryset of the session row if it is still stored and unexpired, for engines that keep
    sessions in the database (``db``, ``cached_db``); None for the others."""
    get_model_class = getattr(import_module(settings.SESSION_ENGINE).SessionStore, "get_model_class", None)
    if get_model_class is None:
        return None
    return get_model_class().objects.filter(session_key=session_key, expire_date__gt=timezone.now())


def still_signed_in(session_key: str, user_id: int) -> bool:
    """What a stream re-checks on connect, once it is registered with the hub.

    Signing out deletes the session: for database-backed engines one cheap
    query (the session is still stored and unexpired) closes the window between
    the connect's sign-in check and its registration, where a sign-out message
    could pass unseen. A password change or a deactivation in that window is
    found by the hub's periodic ``signed_in`` check instead. Other engines get
    the full check.
    """
    stored = stored_sessions(session_key)
    if stored is None:
        return session_key in signed_in({session_key: user_id})
    return bool(stored.exists())
