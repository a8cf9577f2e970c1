"""Preferences: defaults from the category, a person's choice over it, required ones fixed,
resolved at send time into each row (in-app off: listed, not counted, no toast)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import override_settings

from sse_notify.api import EVERYONE, send_notification
from sse_notify.models import Inbox, Notification, Preference
from sse_notify.preferences import email_modes, set_preference, set_preferences, user_preferences
from sse_notify.publish import deliver_messages

User = get_user_model()

CATEGORIES = {
    "comments": {"label": "Comments", "desktop": False, "email": "daily"},
    "security": {"label": "Security", "email": "immediate", "required": True},
}
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("categories")]


@pytest.fixture
def categories() -> Any:
    with override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES}):
        yield


def entry(user: Any, slug: str) -> dict[str, Any]:
    return next(e for e in user_preferences(user) if e["category"] == slug)


def test_defaults_come_from_the_category(user: Any) -> None:
    prefs = user_preferences(user)
    assert [e["category"] for e in prefs] == ["comments", "security", "default"]
    comments = prefs[0]
    assert (comments["in_app"], comments["desktop"], comments["email"]) == (True, False, "daily")
    assert comments["label"] == "Comments"
    assert not comments["required"]
    assert prefs[1]["required"]


def test_a_choice_overrides_the_default_and_only_differences_are_stored(user: Any) -> None:
    set_preference(user, "comments", email="off", in_app=False)
    assert (entry(user, "comments")["email"], entry(user, "comments")["in_app"]) == ("off", False)
    row = Preference.objects.get(user=user, category="comments")
    assert (row.in_app, row.desktop, row.email) == (False, None, "off")
    # Choosing the default again means "follow the default": nothing left to store.
    set_preferences(user, {"comments": {"in_app": True, "desktop": False, "email": "daily"}})
    assert not Preference.objects.exists()
    assert entry(user, "comments")["email"] == "daily"


def test_a_changed_default_reaches_those_who_never_chose(user: Any, make_user: Any) -> None:
    other = make_user()
    set_preference(other, "comments", email="hourly")
    changed = {**CATEGORIES, "comments": {**CATEGORIES["comments"], "email": "immediate"}}
    with override_settings(SSE_NOTIFY={"CATEGORIES": changed}):
        assert email_modes([user.pk, other.pk], "comments") == {user.pk: "immediate", other.pk: "hourly"}


def test_required_categories_cannot_be_changed(user: Any) -> None:
    with pytest.raises(ValidationError) as info:
        set_preference(user, "security", email="off")
    assert "required and cannot be changed" in " ".join(info.value.message_dict["security"])
    # Posting the defaults back (a form that sends every field) is fine and stores nothing.
    set_preference(user, "security", email="immediate", in_app=True, desktop=True)
    assert not Preference.objects.exists()
    # A row written some other way (an older release, the shell) does not unlock it.
    Preference.objects.create(user=user, category="security", email="off", in_app=False)
    assert email_modes([user.pk], "security") == {user.pk: "immediate"}
    (n,) = send_notification(user, "New sign-in", category="security")
    assert n.in_app


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nope": {"email": "off"}}, "Unknown category 'nope'"),
        ({"comments": {"sms": True}}, "Unknown channel 'sms'"),
        ({"comments": {"email": "weekly"}}, "Email must be one of off, immediate, hourly, daily"),
        ({"comments": {"in_app": "false"}}, "in_app must be true or false"),
        ({"comments": "off"}, "Give an object"),
    ],
)
def test_bad_changes_are_refused_all_or_nothing(user: Any, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        set_preferences(user, {"default": {"email": "daily"}, **changes})
    assert message in str(info.value)
    assert not Preference.objects.exists()


def test_email_modes_is_a_few_queries_for_many_users(make_user: Any, django_assert_num_queries: Any, user: Any) -> None:
    User.objects.bulk_create([User(username=f"many{i}") for i in range(2000)])
    ids = list(User.objects.values_list("pk", flat=True))
    chose = ids[::500]
    for uid in chose:
        set_preference(uid, "comments", email="immediate")
    with django_assert_num_queries(3):  # one per 900 users
        modes = email_modes(ids, "comments")
    assert len(modes) == len(ids)
    assert {uid for uid, mode in modes.items() if mode == "immediate"} == set(chose)
    assert set(modes.values()) == {"daily", "immediate"}
    with django_assert_num_queries(0):
        assert set(email_modes(ids, "security").values()) == {"immediate"}
    with pytest.raises(ValidationError):
        email_modes(ids, "nope")


def test_in_app_off_is_listed_but_not_counted(user: Any, client: Any) -> None:
    set_preference(user, "comments", in_app=False)
    send_notification(user, "loud", category="default")
    (quiet,) = send_notification(user, "quiet", category="comments")
    quiet.refresh_from_db()
    assert (quiet.in_app, quiet.read_at) == (False, None)
    assert Inbox.objects.get(user=user).unread == 1
    assert Notification.objects.for_user(user).unread_count() == 1
    # The stream's per-row unread figure is the badge's: unchanged by the quiet one.
    assert quiet._unread_after == 1  # type: ignore[attr-defined]
    client.force_login(user)
    listed = client.get("/notifications/api/notifications/").json()
    assert [r["title"] for r in listed["results"]] == ["quiet", "loud"]
    assert listed["results"][0]["in_app"] is False
    assert listed["unread"] == 1
    assert client.get("/notifications/api/unread/").json()["unread"] == 1
    # Reading or deleting the quiet one leaves the count right.
    Notification.objects.filter(pk=quiet.pk).mark_read()
    assert Inbox.objects.get(user=user).unread == 1
    Notification.objects.filter(pk=quiet.pk).mark_unread()
    assert Inbox.objects.get(user=user).unread == 1
    Notification.objects.get(pk=quiet.pk).delete()
    assert Inbox.objects.get(user=user).unread == 1


def test_a_send_resolves_each_recipients_choice_and_shares_payloads(make_user: Any) -> None:
    users = [make_user() for _ in range(6)]
    set_preference(users[0], "comments", in_app=False)
    set_preference(users[1], "comments", desktop=True)
    set_preference(users[2], "comments", email="off")  # not an in-app matter
    sent = send_notification(users, "New comment", category="comments", group_key="issue-42")
    flags = {n.recipient_id: (n.in_app, n.desktop) for n in sent}
    assert flags[users[0].pk] == (False, False)
    assert flags[users[1].pk] == (True, True)
    assert {flags[u.pk] for u in users[2:]} == {(True, False)}
    stored = dict(Notification.objects.values_list("recipient_id", "in_app"))
    assert stored == {uid: f[0] for uid, f in flags.items()}
    # Recipients with the same choices share one layer payload: three here, not six.
    assert len(deliver_messages(sent)) == 3


def test_a_send_to_everyone_costs_one_preference_query_per_chunk(
    make_user: Any, django_assert_max_num_queries: Any
) -> None:
    User.objects.bulk_create([User(username=f"all{i}") for i in range(1000)])
    quiet = User.objects.order_by("pk")[10]
    set_preference(quiet, "comments", in_app=False)
    with django_assert_max_num_queries(60):
        sent = send_notification(EVERYONE, "to all", category="comments")
    assert [n.recipient_id for n in sent if not n.in_app] == [quiet.pk]
    assert Inbox.objects.get(user=quiet).unread == 0
    assert Inbox.objects.filter(unread=1).count() == 999  # everyone else


def test_in_app_preference_applies_to_later_sends_only(user: Any) -> None:
    (before,) = send_notification(user, "before", category="comments")
    set_preference(user, "comments", in_app=False)
    (after,) = send_notification(user, "after", category="comments")
    before.refresh_from_db()
    after.refresh_from_db()
    assert (before.in_app, after.in_app) == (True, False)
    assert Inbox.objects.get(user=user).unread == 1


def test_preferences_are_per_user(user: Any, make_user: Any) -> None:
    bob = make_user()
    set_preference(user, "comments", in_app=False)
    assert entry(bob, "comments")["in_app"] is True
    (n,) = send_notification(bob, "for bob", category="comments")
    assert n.in_app


def test_the_stream_looks_up_no_preferences(user: Any, django_assert_num_queries: Any) -> None:
    """Resolved at send time: a replay or catch-up page costs what it did before categories."""
    from sse_notify.stream import catch_up, connect_state

    set_preference(user, "comments", in_app=False, desktop=True)
    for n in range(5):
        send_notification(user, f"n{n}", category="comments" if n % 2 else "default")
    with django_assert_num_queries(2):  # the inbox row, then the page
        frames, _last = catch_up(user.pk, 0)
    with django_assert_num_queries(2):
        state = connect_state(user.pk, 0, False)
    assert len(frames) == len(state["frames"]) == 5
    quiet = [frame for _, frame in frames if b'"in_app":false' in frame]
    assert len(quiet) == 2 and all(b'"desktop":true' in frame for frame in quiet)


@pytest.mark.django_db(transaction=True)
def test_the_same_change_at_once_from_many_requests_is_one_row(user: Any) -> None:
    """A mail client may post a one-click unsubscribe twice at once: both succeed, one row.

    On PostgreSQL the inserts really race (the unique constraint settles it); on SQLite
    the writes queue behind each other.
    """
    import threading

    from django.db import connections

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def unsubscribe() -> None:
        try:
            start.wait()
            set_preference(user.pk, "comments", email="off")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=unsubscribe) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert list(Preference.objects.values_list("user_id", "category", "email")) == [(user.pk, "comments", "off")]
