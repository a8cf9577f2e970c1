"""The hub's periodic session check remembers what it decoded and hashed
(``sessions.SessionCheck``), and still ends a stream at the next check after
anything that ends its session: a password change, a deactivation, the session
deleted, expired or rewritten to another user, a secret rotated out of
``SECRET_KEY_FALLBACKS``, the backend removed, or a change to whatever a custom
``get_session_auth_hash`` reads. The memory only skips work whose result cannot
have changed: a warm check of many sessions decodes nothing, computes no HMAC,
and costs one query per chunk of sessions plus one per chunk of users.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sse_notify import sessions
from sse_notify.sessions import SessionCheck
from tests.support import session_cookie

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class RefusingStaffBackend(ModelBackend):
    """A backend with its own ``get_user``: the check must ask it, like ``auth.get_user``."""

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        return None if user is None or user.is_staff else user


def signed_in_as(user: Any, hash_: str | None = None, backend: str = MODEL_BACKEND) -> str:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = backend
    store[HASH_SESSION_KEY] = user.get_session_auth_hash() if hash_ is None else hash_
    store.create()
    assert store.session_key
    return store.session_key


@pytest.fixture
def warm(make_user: Any) -> tuple[SessionCheck, Any, str, Any, str]:
    """A check that has seen alice's and bob's sessions (valid) twice."""
    alice, bob = make_user(), make_user()
    a, b = session_cookie(alice), session_cookie(bob)
    check = SessionCheck()
    for _ in range(2):
        assert check({a: alice.pk, b: bob.pk}, True) == {a, b}
    return check, alice, a, bob, b


@pytest.mark.django_db
@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize("change", ["password", "deactivated", "session_deleted", "session_expired", "rewritten"])
def test_what_ends_a_session_ends_it_at_the_next_check_however_warm(warm, change, complete):
    check, alice, a, bob, b = warm
    if change == "password":
        alice.set_password("another")
        alice.save()
    elif change == "deactivated":
        alice.is_active = False
        alice.save()
    elif change == "session_deleted":
        Session.objects.filter(session_key=a).delete()
    elif change == "session_expired":
        Session.objects.filter(session_key=a).update(expire_date=timezone.now() - timedelta(seconds=1))
    else:  # the same key now signs bob in (as a login on that session would store it)
        store = SessionStore(a)
        store.clear()
        store[SESSION_KEY] = str(bob.pk)
        store[BACKEND_SESSION_KEY] = MODEL_BACKEND
        store[HASH_SESSION_KEY] = bob.get_session_auth_hash()
        store.save()
    assert check({a: alice.pk, b: bob.pk}, complete) == {b}
    assert check({a: alice.pk, b: bob.pk}, complete) == {b}


@pytest.mark.django_db
def test_a_rewritten_session_that_still_names_the_same_user_is_decoded_again(warm):
    check, alice, a, _bob, _b = warm
    store = SessionStore(a)
    store[HASH_SESSION_KEY] = "0" * 64  # a forged or stale hash under the same user
    store.save()
    assert check({a: alice.pk}, True) == set()


@pytest.mark.django_db
def test_a_secret_rotation_keeps_sessions_while_the_old_key_is_a_fallback(warm, settings):
    check, alice, a, bob, b = warm
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + old, [old]
    assert check({a: alice.pk, b: bob.pk}, True) == {a, b}  # decoded and verified through the fallback
    assert check({a: alice.pk, b: bob.pk}, True) == {a, b}
    settings.SECRET_KEY_FALLBACKS = []
    assert check({a: alice.pk, b: bob.pk}, True) == set()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = old, []
    assert check({a: alice.pk, b: bob.pk}, True) == {a, b}


@pytest.mark.django_db
def test_a_hash_signed_with_an_old_secret_only_holds_while_it_is_a_fallback(make_user, settings):
    """The session data is signed with the current key, its auth hash with a fallback
    (a login before the rotation, the session saved again since)."""
    alice = make_user()
    old = settings.SECRET_KEY
    stale_hash = alice.get_session_auth_hash()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + old, [old]
    a = signed_in_as(alice, stale_hash)
    check = SessionCheck()
    assert check({a: alice.pk}, True) == {a}
    assert check({a: alice.pk}, True) == {a}
    settings.SECRET_KEY_FALLBACKS = ["another-" + old]
    assert check({a: alice.pk}, True) == set()


@pytest.mark.django_db
def test_a_backend_no_longer_configured_ends_its_sessions(warm, settings):
    check, alice, a, _bob, _b = warm
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
    assert check({a: alice.pk}, True) == set()


@pytest.mark.django_db
def test_an_allow_all_backend_keeps_an_inactive_user_like_get_user_does(make_user, settings):
    path = "django.contrib.auth.backends.AllowAllUsersModelBackend"
    settings.AUTHENTICATION_BACKENDS = [path]
    alice = make_user(is_active=False)
    a = signed_in_as(alice, backend=path)
    assert SessionCheck()({a: alice.pk}, True) == {a}


@pytest.mark.django_db
def test_a_backend_with_its_own_get_user_is_asked(make_user, settings):
    path = f"{__name__}.RefusingStaffBackend"
    settings.AUTHENTICATION_BACKENDS = [path]
    alice, bob = make_user(), make_user(is_staff=True)
    a, b = signed_in_as(alice, backend=path), signed_in_as(bob, backend=path)
    assert SessionCheck()({a: alice.pk, b: bob.pk}, True) == {a}


@pytest.mark.django_db
def test_a_custom_session_hash_is_computed_every_time(make_user, monkeypatch):
    """A user model whose ``get_session_auth_hash`` reads another field (the email here):
    a change to that field ends the session although the password is the same."""
    from django.utils.crypto import salted_hmac

    model = get_user_model()

    def by_email(self: Any) -> str:
        return salted_hmac("test-hash", f"{self.password}/{self.email}", algorithm="sha256").hexdigest()

    monkeypatch.setattr(model, "get_session_auth_hash", by_email)
    alice = make_user(email="a@example.com")
    a = signed_in_as(alice)
    check = SessionCheck()
    assert check({a: alice.pk}, True) == {a}
    assert check({a: alice.pk}, True) == {a}
    model.objects.filter(pk=alice.pk).update(email="b@example.com")
    assert check({a: alice.pk}, True) == set()


@pytest.mark.django_db
def test_a_warm_check_of_many_sessions_decodes_and_hashes_nothing_in_few_queries(django_user_model):
    n = 1200
    users = django_user_model.objects.bulk_create(
        [django_user_model(username=f"many{i}", password=f"md5$salt${i}") for i in range(n)]
    )
    if users[0].pk is None:  # databases that do not return ids from bulk_create
        users = list(django_user_model.objects.filter(username__startswith="many").order_by("pk"))
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    rows = [
        Session(
            session_key=f"many{i:028d}",
            session_data=store.encode(
                {
                    SESSION_KEY: str(u.pk),
                    BACKEND_SESSION_KEY: MODEL_BACKEND,
                    HASH_SESSION_KEY: u.get_session_auth_hash(),
                }
            ),
            expire_date=expire,
        )
        for i, u in enumerate(users)
    ]
    Session.objects.bulk_create(rows)
    keys = {r.session_key: u.pk for r, u in zip(rows, users, strict=True)}
    per_query = sessions.CHUNK if connection.features.max_query_params is None else sessions.SMALL_CHUNK
    expected = 2 * math.ceil(n / per_query)  # sessions, then users
    check = SessionCheck()
    with CaptureQueriesContext(connection) as cold:
        assert check(keys, True) == set(keys)
    assert len(cold) == expected
    with (
        mock.patch.object(SessionStore, "decode", side_effect=AssertionError("decoded again")),
        mock.patch("django.contrib.auth.base_user.salted_hmac", side_effect=AssertionError("hashed again")),
        CaptureQueriesContext(connection) as warm,
    ):
        assert check(keys, True) == set(keys)
    assert len(warm) == expected, [q["sql"][:120] for q in warm]
    # One password changed: only that user is hashed again, and only that session ends.
    changed = users[7]
    django_user_model.objects.filter(pk=changed.pk).update(password="md5$salt$changed")
    assert check(keys, True) == set(keys) - {rows[7].session_key}


@pytest.mark.django_db
def test_a_complete_check_forgets_sessions_it_no_longer_holds(warm):
    check, alice, a, bob, b = warm
    check({a: alice.pk}, True)
    assert set(check._decoded) == {a}
    assert len(check._hashes) == 1
    check({b: bob.pk}, False)  # a partial check adds what it saw and forgets nothing
    assert set(check._decoded) == {a, b}
    Session.objects.filter(session_key=b).delete()
    assert check({b: bob.pk}, False) == set()
    assert set(check._decoded) == {a}
    check.clear()
    assert check._decoded == {} and check._hashes == {}


@pytest.mark.django_db(transaction=True)
async def test_the_hub_ends_a_stream_at_the_next_check_after_its_memory_is_warm(fresh_hub, make_user):
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    a, b = await sync_to_async(session_cookie)(alice), await sync_to_async(session_cookie)(bob)
    sub_a = await fresh_hub.subscribe(alice.pk, session_key=a)
    sub_b = await fresh_hub.subscribe(bob.pk, session_key=b)
    try:
        for _ in range(2):
            await fresh_hub.check_sessions()
        assert sub_a.ended is None and sub_b.ended is None
        assert set(fresh_hub.session_check._decoded) == {a, b}

        @sync_to_async
        def change_password() -> None:
            alice.set_password("another")
            alice.save()

        await change_password()
        await fresh_hub.check_sessions()
        assert sub_a.ended == "signed_out" and sub_b.ended is None
    finally:
        sub_a.close()
        sub_b.close()


@pytest.mark.django_db
def test_select_in_reads_every_row_in_chunks(django_user_model):
    """What the hub's poll reads (the latest seq of each local user), in one query per chunk."""
    from sse_notify.models import Inbox

    n = 2100
    users = django_user_model.objects.bulk_create([django_user_model(username=f"poll{i}") for i in range(n)])
    if users[0].pk is None:
        users = list(django_user_model.objects.filter(username__startswith="poll").order_by("pk"))
    Inbox.objects.bulk_create([Inbox(user_id=u.pk, last_seq=i) for i, u in enumerate(users) if i % 3])
    ids = [u.pk for u in users] + [max(u.pk for u in users) + 1]  # one without a row
    per_query = sessions.CHUNK if connection.features.max_query_params is None else sessions.SMALL_CHUNK
    with CaptureQueriesContext(connection) as queries:
        rows = sessions.select_in(Inbox, ("user_id", "last_seq"), "user_id", ids)
    assert len(queries) == math.ceil(len(ids) / per_query)
    assert sorted(rows) == sorted(Inbox.objects.filter(user_id__in=ids).values_list("user_id", "last_seq"))
    assert len(rows) == sum(1 for i in range(n) if i % 3)


@pytest.mark.django_db
def test_a_session_naming_an_unreadable_user_id_signs_nobody_in_and_the_check_goes_on(warm):
    check, alice, a, bob, b = warm
    store = SessionStore(a)
    store[SESSION_KEY] = "not-a-number"
    store.save()
    assert check({a: alice.pk, b: bob.pk}, True) == {b}
