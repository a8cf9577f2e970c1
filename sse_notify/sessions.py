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
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from django.utils.crypto import constant_time_compare

#: Sessions per query.
CHUNK = 500


def _session_data(keys: list[str]) -> dict[str, dict[str, Any]]:
    """Decoded data of the sessions that still exist, by key."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    found: dict[str, dict[str, Any]] = {}
    get_model_class = getattr(store, "get_model_class", None)
    if get_model_class is not None:  # db and cached_db: one query per chunk
        model = get_model_class()
        decoder = store()
        now = timezone.now()
        for start in range(0, len(keys), CHUNK):
            rows = model.objects.filter(session_key__in=keys[start : start + CHUNK], expire_date__gt=now)
            for key, data in rows.values_list("session_key", "session_data"):
                found[key] = decoder.decode(data)
        return found
    for key in keys:  # cache, file, signed cookies: the engine's own load
        data = store(key).load()
        if data:
            found[key] = data
    return found


def _users(wanted: dict[str, set[Any]]) -> dict[tuple[str, Any], Any]:
    """The users each backend still accepts: ``{(backend path, pk): user}``."""
    users: dict[tuple[str, Any], Any] = {}
    for path, pks in wanted.items():
        if path not in settings.AUTHENTICATION_BACKENDS:
            continue
        backend = load_backend(path)
        if isinstance(backend, ModelBackend):
            model = get_user_model()
            for user in model._default_manager.filter(pk__in=list(pks)):
                if backend.user_can_authenticate(user):
                    users[(path, user.pk)] = user
        else:
            for pk in pks:
                found: Any = backend.get_user(pk)
                if found is not None:
                    users[(path, pk)] = found
    return users


def _hash_ok(given: str | None, user: Any) -> bool:
    if not hasattr(user, "get_session_auth_hash"):
        return True
    if not given:
        return False
    if constant_time_compare(given, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(given, h) for h in user.get_session_auth_fallback_hash())


def signed_in(sessions: Mapping[str, int]) -> set[str]:
    """The keys of ``sessions`` (session key → the stream's user id) that still sign that user in."""
    data = _session_data(list(sessions))
    to_python = get_user_model()._meta.pk.to_python
    claims: dict[str, tuple[str, Any, str | None]] = {}
    wanted: dict[str, set[Any]] = {}
    for key, values in data.items():
        try:
            pk = to_python(values[SESSION_KEY])
            path = values[BACKEND_SESSION_KEY]
        except (KeyError, ValueError, TypeError):
            continue
        claims[key] = (path, pk, values.get(HASH_SESSION_KEY))
        wanted.setdefault(path, set()).add(pk)
    users = _users(wanted)
    valid: set[str] = set()
    for key, (path, pk, given) in claims.items():
        user = users.get((path, pk))
        if user is not None and user.pk == sessions[key] and _hash_ok(given, user):
            valid.add(key)
    return valid


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
