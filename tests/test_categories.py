"""Categories: declared once in settings, validated at send and by the system checks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.test import override_settings

from sse_notify.api import send_notification
from sse_notify.categories import DEFAULT_CATEGORY, Category, check_categories, get_categories, get_category
from sse_notify.models import Inbox, Notification
from sse_notify.signals import notify

CATEGORIES = {
    "comments": {"label": "Comments", "description": "Replies to you.", "desktop": False, "email": "daily"},
    "security": {"label": "Security", "email": "immediate", "required": True},
}


def test_a_project_without_categories_has_one_implicit_category() -> None:
    categories = get_categories()
    assert list(categories) == [DEFAULT_CATEGORY]
    default = categories[DEFAULT_CATEGORY]
    assert (default.in_app, default.desktop, default.email, default.required) == (True, True, "off", False)


@pytest.mark.django_db
def test_a_send_without_a_category_works_as_before(user: Any) -> None:
    (n,) = send_notification(user, "plain")
    n.refresh_from_db()
    assert (n.category, n.group_key, n.in_app, n.desktop) == (DEFAULT_CATEGORY, "", True, True)
    assert Inbox.objects.get(user=user).unread == 1


@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_declared_categories_keep_their_order_and_defaults() -> None:
    categories = get_categories()
    assert list(categories) == ["comments", "security", DEFAULT_CATEGORY]
    assert categories["comments"] == Category(
        "comments", "Comments", "Replies to you.", in_app=True, desktop=False, email="daily"
    )
    assert categories["security"].required


@override_settings(SSE_NOTIFY={"CATEGORIES": {"default": {"label": "General", "email": "hourly"}}})
def test_a_project_may_redeclare_the_default_category() -> None:
    assert list(get_categories()) == [DEFAULT_CATEGORY]
    assert get_category(DEFAULT_CATEGORY).label == "General"
    assert get_category(DEFAULT_CATEGORY).email == "hourly"


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_unknown_category_is_a_validation_error_naming_the_known_ones(user: Any) -> None:
    with pytest.raises(ValidationError) as info:
        send_notification(user, "x", category="comment")
    message = " ".join(info.value.message_dict["category"])
    assert "Unknown category 'comment'" in message
    assert "'comments', 'security', 'default'" in message
    assert not Notification.objects.exists()
    assert not Inbox.objects.exists()


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_category_errors_come_with_the_other_errors(user: Any) -> None:
    with pytest.raises(ValidationError) as info:
        send_notification(user, "", category=7, group_key="g" * 201)  # type: ignore[arg-type]
    assert set(info.value.message_dict) == {"title", "category", "group_key"}


@pytest.mark.django_db
def test_group_key_validation(user: Any) -> None:
    for bad, message in [(None, "must be a string"), ("a\x00b", "NUL"), ("g" * 201, "limit is 200")]:
        with pytest.raises(ValidationError) as info:
            send_notification(user, "x", group_key=bad)  # type: ignore[arg-type]
        assert message in " ".join(info.value.message_dict["group_key"])
    assert not Notification.objects.exists()


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_category_and_group_are_stored_and_in_the_payload(user: Any) -> None:
    (n,) = send_notification(user, "New comment", category="comments", group_key="issue-42")
    n.refresh_from_db()
    assert (n.category, n.group_key) == ("comments", "issue-42")
    payload = n.to_dict()
    assert payload["category"] == "comments"
    assert payload["group"] == "issue-42"
    assert payload["desktop"] is False  # the category's default
    assert payload["in_app"] is True


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_the_signal_and_the_command_take_a_category(user: Any) -> None:
    (n,) = notify.send(sender=None, recipient=user, title="via signal", category="security")[0][1]
    assert n.category == "security"
    call_command("sse_notify_send", user=[user.username], title="via command", category="comments", group_key="i-1")
    n = Notification.objects.get(title="via command")
    assert (n.category, n.group_key) == ("comments", "i-1")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown category 'nope'"):
        call_command("sse_notify_send", user=[user.username], title="bad", category="nope")


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"Bad Slug": {"label": "x"}}, "must be lowercase letters"),
        ({"ok": "Comments"}, "must be a dict"),
        ({"ok": {}}, "needs a non-empty 'label'"),
        ({"ok": {"label": "x", "emails": "daily"}}, "unknown keys ['emails']"),
        ({"ok": {"label": "x", "email": "weekly"}}, "must be one of off, immediate, hourly, daily"),
        ({"ok": {"label": "x", "in_app": "yes"}}, "must be True or False"),
        (["comments"], "must be a dict of slug -> options"),
    ],
)
def test_bad_declarations_are_reported_by_the_system_check(declared: Any, message: str) -> None:
    with override_settings(SSE_NOTIFY={"CATEGORIES": declared}):
        errors = check_categories()
        assert [e.id for e in errors] == ["sse_notify.E020"]
        assert message in errors[0].msg
        with pytest.raises(ImproperlyConfigured, match=r"CATEGORIES|slug"):
            get_categories()


@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_good_declarations_pass_the_system_check() -> None:
    assert check_categories() == []


@pytest.mark.django_db
def test_rows_inserted_without_the_new_columns_get_the_orm_defaults(user: Any) -> None:
    """Set-based SQL (INSERT ... SELECT) and older code may leave the columns out."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sse_notify_notification (recipient_id, seq, title, body, level, url, created_at)"
            " VALUES (%s, 1, 'raw', '', 'info', '', %s)",
            [user.pk, timezone.now()],
        )
    n = Notification.objects.get()
    assert (n.category, n.group_key, n.in_app, n.desktop) == (DEFAULT_CATEGORY, "", True, True)


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_the_admin_sends_with_a_category_and_filters_by_it(client: Any, make_user: Any) -> None:
    from django.urls import reverse

    staff = make_user("staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    alice = make_user("alice2")
    page = client.get(reverse("admin:sse_notify_notification_send"))
    assert [c[0] for c in page.context["form"].fields["category"].choices] == ["comments", "security", "default"]
    payload = {"users": [alice.pk], "title": "New comment", "body": "", "level": "info", "url": ""}
    sent = client.post(
        reverse("admin:sse_notify_notification_send"), {**payload, "category": "comments", "group_key": "i-7"}
    )
    assert sent.status_code == 302
    bad = client.post(reverse("admin:sse_notify_notification_send"), {**payload, "category": "nope"})
    assert bad.status_code == 200 and "category" in bad.context["form"].errors
    send_notification(alice, "Plain")
    assert Notification.objects.get(title="New comment").group_key == "i-7"
    changelist = reverse("admin:sse_notify_notification_changelist")
    listed = client.get(changelist, {"category": "comments"})
    assert [n.title for n in listed.context["cl"].result_list] == ["New comment"]
    assert "Comments" in listed.text  # the filter shows the declared labels


@pytest.mark.django_db(transaction=True)
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
async def test_the_async_twin_takes_a_category(make_user: Any) -> None:
    from asgiref.sync import sync_to_async

    from sse_notify.api import asend_notification

    alice = await sync_to_async(make_user)("async-alice")
    (n,) = await asend_notification(alice, "async", category="comments", group_key="g")
    assert (n.category, n.group_key, n.desktop) == ("comments", "g", False)
    with pytest.raises(ValidationError):
        await asend_notification(alice, "async", category="nope")
