"""Who a stream connect signs in, for ``asgi.StreamRoute``, in two indexed reads.

A connect through the route does, on the database threads:

1. Before registering with the hub: read the session row and decode it: the
   user id it claims, its backend and its auth hash (:func:`route_sign_in`).
2. After registering (so a sign-out from here on reaches the stream, and one
   before is seen here): one query reads the user row, the user's inbox row
   and whether the session is still stored and unexpired (:func:`verify`).
   The claim is then checked in Python with the rules of
   ``django.contrib.auth.get_user``: the backend is in
   ``AUTHENTICATION_BACKENDS``, it accepts the user (``user_can_authenticate``,
   ``is_active``), and the session's hash is the user's current one.

Both are plain SQL built from the models' ``_meta`` (no query compilation per
connect) and the user is built with ``Model.from_db`` and the backend's and the
fields' converters, so a custom user model is read as the ORM would read it.

Anything that reading cannot decide the same way as ``get_user`` is not read
this way:

- Sessions not in the database (cache, file, signed-cookie engines), another
  database per model (routers), a user model with a filtering default manager
  or with multi-table inheritance, a database other than PostgreSQL, MySQL or
  SQLite (see ``VENDORS``): the session is loaded by its engine and the user by ``get_user``
  (:func:`generic_user`), then the stream's usual re-check after registering.
- A backend that is not ``ModelBackend`` or overrides its ``get_user``: the same
  generic path.
- A session that ``get_user`` would change (its hash does not match: flushed;
  it matches an old ``SECRET_KEY_FALLBACKS`` secret: its key cycled) is not
  served by the route at all: the view serves the request, and Django's
  middleware changes the session and sends the new cookie. The route never
  writes a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends import cached_db as cached_db_engine
from django.contrib.sessions.backends import db as db_engine
from django.db import connections, router
from django.db.models.manager import BaseManager
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

#: Database vendors whose SQL the plan below is written for.
VENDORS = ("postgresql", "mysql", "sqlite")


@dataclass(frozen=True, slots=True)
class Claim:
    """What a session row says, not yet checked against the user."""

    session_key: str
    user_id: Any
    backend: str
    hash: str | None


@dataclass(frozen=True, slots=True)
class SignIn:
    """The user a connect is for. ``claim`` set: still to be checked by :func:`verify`
    once the stream is registered; None: checked in full by ``get_user`` already."""

    user_id: Any
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    alias: str
    #: Session row by key, unexpired (db engine only; cached_db loads through its cache).
    session_sql: str | None
    connect_sql: str
    user_model: Any
    attnames: list[str]
    converters: list[tuple[int, list[Any], Any]]
    expire_field: Any
    pk_field: Any


_plans: dict[tuple[Any, ...], _Plan | None] = {}


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def _plan() -> _Plan | None:
    """How this configuration reads a connect (None: only the generic path fits it)."""
    from .models import Inbox

    store = _session_store()
    get_model_class = getattr(store, "get_model_class", None)
    if get_model_class is None or store.load not in (db_engine.SessionStore.load, cached_db_engine.SessionStore.load):
        return None
    session_model = get_model_class()
    user_model = get_user_model()
    alias = router.db_for_read(user_model)
    if router.db_for_read(Inbox) != alias or router.db_for_read(session_model) != alias:
        return None
    key = (settings.SESSION_ENGINE, session_model, user_model, alias, connections[alias].vendor)
    try:
        return _plans[key]
    except KeyError:
        pass
    plan = _build(alias, store, session_model, user_model)
    _plans[key] = plan
    return plan


def _build(alias: str, store: Any, session_model: Any, user_model: Any) -> _Plan | None:
    from .models import Inbox

    connection = connections[alias]
    if connection.vendor not in VENDORS:
        return None
    opts = user_model._meta
    manager = user_model._default_manager
    if type(manager).get_queryset is not BaseManager.get_queryset:
        return None  # the manager may filter users out: get_user's query, not ours
    fields = list(opts.concrete_fields)
    if opts.concrete_model._meta.parents or any(f.model._meta.db_table != opts.db_table for f in fields):
        return None  # multi-table inheritance: the row spans tables
    q = connection.ops.quote_name
    s_opts: Any = session_model._meta
    s_table = q(s_opts.db_table)
    s_key = q(s_opts.get_field("session_key").column)
    s_data = q(s_opts.get_field("session_data").column)
    s_expire = q(s_opts.get_field("expire_date").column)
    session_sql = None
    if store.load is db_engine.SessionStore.load and getattr(store, "_get_session_from_db", None) is getattr(
        db_engine.SessionStore, "_get_session_from_db", None
    ):
        session_sql = f"SELECT {s_data} FROM {s_table} WHERE {s_key} = %s AND {s_expire} > %s"
    i_opts: Any = Inbox._meta
    i_user = q(i_opts.get_field("user").column)
    inbox_cols = ", ".join(f"i.{q(i_opts.get_field(name).column)}" for name in ("last_seq", "pruned_seq", "unread"))
    user_cols = ", ".join(f"u.{q(f.column)}" for f in fields)
    connect_sql = (
        f"SELECT {user_cols}, {inbox_cols}, "
        f"EXISTS (SELECT 1 FROM {s_table} s WHERE s.{s_key} = %s AND s.{s_expire} > %s) "
        f"FROM {q(opts.db_table)} u LEFT OUTER JOIN {q(i_opts.db_table)} i ON i.{i_user} = u.{q(opts.pk.column)} "
        f"WHERE u.{q(opts.pk.column)} = %s"
    )
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col("u")
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    return _Plan(
        alias=alias,
        session_sql=session_sql,
        connect_sql=connect_sql,
        user_model=user_model,
        attnames=[f.attname for f in fields],
        converters=converters,
        expire_field=s_opts.get_field("expire_date"),
        pk_field=opts.pk,
    )


def _fast_backend(path: str) -> Any:
    """The backend, if its ``get_user`` is ``ModelBackend``'s (None: the generic path)."""
    backend = load_backend(path)
    if isinstance(backend, ModelBackend) and type(backend).get_user is ModelBackend.get_user:
        return backend
    return None


class _RouteMayNotWrite(Exception):
    """``get_user`` wanted to flush or cycle the session: that is the view's to do."""


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise _RouteMayNotWrite


def generic_user(session_key: str) -> Any:
    """The user the session signs in through ``get_user``, or None; never changes the session.

    ``get_user`` flushes a session whose hash does not match and cycles the key of
    one that matches an old secret: the route cannot send the new cookie, so such
    a session is left to the view (None here).
    """
    from django.contrib.auth import get_user

    request = HttpRequest()
    session = _session_store()(session_key)
    session.flush = session.cycle_key = _refuse
    request.session = session
    try:
        user = get_user(request)
    except _RouteMayNotWrite:
        return None
    return user if user.is_authenticated else None


def route_sign_in(session_key: str) -> SignIn | None:
    """Step 1 of a route connect (database threads): who the session claims to be.

    None: not served by the route (not signed in, or not in a way the route may
    serve): the view answers.
    """
    plan = _plan()
    if plan is None:
        user = generic_user(session_key)
        return None if user is None else SignIn(user.pk)
    if len(session_key) < 8:
        return None  # not a key Django's session engines would look up
    if plan.session_sql is None:
        data = _session_store()(session_key).load()  # cached_db: the cache first, as the middleware
    else:
        connection = connections[plan.alias]
        now = plan.expire_field.get_db_prep_value(timezone.now(), connection)
        with connection.cursor() as cursor:
            cursor.execute(plan.session_sql, [session_key, now])
            row = cursor.fetchone()
        if row is None:
            return None
        data = _session_store()().decode(row[0])
    try:
        user_id = plan.pk_field.to_python(data[SESSION_KEY])
        backend = data[BACKEND_SESSION_KEY]
    except KeyError:
        return None  # signed in nobody
    except Exception:
        return None  # not an id: whatever get_user makes of it, the view says it
    if backend not in settings.AUTHENTICATION_BACKENDS:
        return None
    if _fast_backend(backend) is None:
        user = generic_user(session_key)
        return None if user is None else SignIn(user.pk)
    return SignIn(user_id, Claim(session_key, user_id, backend, data.get(HASH_SESSION_KEY)))


def _current_hash(given: Any, user: Any) -> bool:
    if not given:
        return False
    return constant_time_compare(given, user.get_session_auth_hash())


def verify(claim: Claim) -> tuple[int, int, int] | None:
    """Step 2 (database threads, the stream registered): the claim checked against the
    user row and the session row in one query, with ``get_user``'s rules.

    Returns the user's inbox ``(last_seq, pruned_seq, unread)`` (zeros without an
    inbox row), or None if the session no longer signs this user in as the route
    may serve it (signed out meanwhile, user gone or inactive, hash changed).
    """
    plan = _plan()
    if plan is None:  # the configuration changed since step 1 (tests): refuse, the view decides
        return None
    backend = _fast_backend(claim.backend) if claim.backend in settings.AUTHENTICATION_BACKENDS else None
    if backend is None:
        return None
    connection = connections[plan.alias]
    now = plan.expire_field.get_db_prep_value(timezone.now(), connection)
    pk = plan.pk_field.get_db_prep_value(claim.user_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(plan.connect_sql, [claim.session_key, now, pk])
        rows = cursor.fetchall()
    row = rows[0] if rows else None
    if row is None:
        return None  # no such user
    n = len(plan.attnames)
    values = list(row[:n])
    for index, converters, col in plan.converters:
        value = values[index]
        for converter in converters:
            value = converter(value, col, connection)
        values[index] = value
    user = plan.user_model.from_db(plan.alias, plan.attnames, values)
    if not backend.user_can_authenticate(user):
        return None
    if not row[n + 3]:
        return None  # signed out (or expired) since step 1
    # A hash that only an old secret verifies is left to the view too (get_user cycles
    # that session's key, and only the view can send the new cookie).
    if hasattr(user, "get_session_auth_hash") and not _current_hash(claim.hash, user):
        return None
    last_seq, pruned_seq, unread = row[n : n + 3]
    if last_seq is None:
        return 0, 0, 0
    return int(last_seq), int(pruned_seq), int(unread)
