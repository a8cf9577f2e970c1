"""The admin: notification changelist, its actions, the send page, the User action."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sse_notify_notification_changelist"
SEND = "admin:sse_notify_notification_send"


@pytest.fixture
def staff(make_user: Any) -> Any:
    return make_user("boss", is_staff=True, is_superuser=True, email="boss@example.com")


@pytest.fixture
def admin_client(client: Any, staff: Any) -> Any:
    client.force_login(staff)
    return client


def staff_with(make_user: Any, *codenames: str) -> Any:
    member = make_user(is_staff=True)
    member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return member


def send_payload(**extra: Any) -> dict[str, Any]:
    return {"title": "Hello", "body": "", "level": "info", "url": "", **extra}


# -- changelist -------------------------------------------------------------------------------


def test_changelist_lists_searches_and_filters(admin_client: Any, make_user: Any) -> None:
    alice = make_user("alice", email="alice@example.com")
    bob = make_user("bob", email="bob@corp.test")
    send_notification(alice, "Invoice ready", level="success")
    send_notification(bob, "Server down", level="error")
    Notification.objects.filter(recipient=bob).mark_read()
    url = reverse(CHANGELIST)

    page = admin_client.get(url)
    assert page.status_code == 200
    assert "Invoice ready" in page.text and "Server down" in page.text
    assert reverse(SEND) in page.text  # the "Send notification" button

    def titles(**query: str) -> set[str]:
        response = admin_client.get(url, query)
        assert response.status_code == 200
        return {n.title for n in response.context["cl"].result_list}

    assert titles(q="alice") == {"Invoice ready"}  # username
    assert titles(q="corp.test") == {"Server down"}  # e-mail
    assert titles(q="invoice") == {"Invoice ready"}  # title
    assert titles(level__exact="error") == {"Server down"}
    assert titles(read="no") == {"Invoice ready"}
    assert titles(read="yes") == {"Server down"}
    sent = Notification.objects.get(recipient=alice).created_at
    assert titles(created_at__year=str(sent.year), created_at__month=str(sent.month)) == {
        "Invoice ready",
        "Server down",
    }


def test_mark_read_and_unread_actions_keep_counts(admin_client: Any, make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "one")
    send_notification(alice, "two")
    pks = list(Notification.objects.values_list("pk", flat=True))
    url = reverse(CHANGELIST)

    response = admin_client.post(url, {"action": "mark_read", "_selected_action": pks}, follow=True)
    assert "Marked 2 notifications as read." in response.text
    assert Notification.objects.unread().count() == 0
    assert Inbox.objects.get(user=alice).unread == 0

    response = admin_client.post(url, {"action": "mark_unread", "_selected_action": pks[:1]}, follow=True)
    assert "Marked 1 notification as unread." in response.text
    assert Notification.objects.unread().count() == 1
    assert Inbox.objects.get(user=alice).unread == 1


def test_add_form_allocates_seq_and_rejects_unsafe_link(admin_client: Any, make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "first")
    add = reverse("admin:sse_notify_notification_add")
    form = {"recipient": alice.pk, "title": "From the admin", "body": "", "level": "warning", "url": "", "data": ""}

    page = admin_client.get(add)
    assert page.status_code == 200
    assert 'name="seq"' not in page.text  # the cursor is never typed in

    bad = admin_client.post(add, {**form, "url": "javascript:alert(1)"})
    assert bad.status_code == 200
    assert "not allowed" in str(bad.context["adminform"].form.errors["url"])
    assert Notification.objects.count() == 1

    response = admin_client.post(add, form)
    assert response.status_code == 302
    made = Notification.objects.get(title="From the admin")
    assert made.seq == 2
    assert Inbox.objects.get(user=alice).unread == 2


def test_change_form_shows_seq_read_only(admin_client: Any, make_user: Any) -> None:
    (n,) = send_notification(make_user("alice"), "hello")
    page = admin_client.get(reverse("admin:sse_notify_notification_change", args=[n.pk]))
    assert page.status_code == 200
    assert "seq" in page.context["adminform"].readonly_fields
    assert 'name="seq"' not in page.text


def test_inbox_admin_is_read_only(admin_client: Any, make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "hello")
    assert admin_client.get(reverse("admin:sse_notify_inbox_changelist")).status_code == 200
    change = admin_client.get(reverse("admin:sse_notify_inbox_change", args=[alice.pk]))
    assert change.status_code == 200
    assert 'name="last_seq"' not in change.text
    assert admin_client.get(reverse("admin:sse_notify_inbox_add")).status_code == 403
    assert admin_client.get(reverse("admin:sse_notify_inbox_delete", args=[alice.pk])).status_code == 403


# -- the send page ----------------------------------------------------------------------------


def test_send_page_get(admin_client: Any) -> None:
    page = admin_client.get(reverse(SEND))
    assert page.status_code == 200
    assert page.context["form"].fields["users"].widget.__class__.__name__ == "AutocompleteSelectMultiple"
    assert "admin-autocomplete" in page.text


def test_send_to_users(admin_client: Any, make_user: Any, staff: Any) -> None:
    alice, bob, _carol = make_user("alice"), make_user("bob"), make_user("carol")
    response = admin_client.post(
        reverse(SEND), send_payload(users=[alice.pk, bob.pk], url="/orders/7/", level="success"), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse(CHANGELIST)
    assert "sent to 2 users" in response.text
    rows = Notification.objects.order_by("recipient_id")
    assert [(n.recipient_id, n.title, n.level, n.url, n.actor_id) for n in rows] == [
        (alice.pk, "Hello", "success", "/orders/7/", staff.pk),
        (bob.pk, "Hello", "success", "/orders/7/", staff.pk),
    ]


def test_send_to_groups_reaches_active_members_once(admin_client: Any, make_user: Any) -> None:
    team, ops = Group.objects.create(name="team"), Group.objects.create(name="ops")
    alice, bob, gone = make_user("alice"), make_user("bob"), make_user("gone", is_active=False)
    alice.groups.add(team, ops)
    bob.groups.add(ops)
    gone.groups.add(team)
    response = admin_client.post(reverse(SEND), send_payload(groups=[team.pk, ops.pk]), follow=True)
    assert "sent to 2 users" in response.text
    assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == ["alice", "bob"]


def test_send_to_everyone(admin_client: Any, make_user: Any) -> None:
    for name in ("a", "b", "c"):
        make_user(name)
    make_user("inactive", is_active=False)
    response = admin_client.post(reverse(SEND), send_payload(everyone="on"), follow=True)
    # a, b, c and the staff user who sent it
    assert "sent to 4 users" in response.text
    assert Notification.objects.count() == 4
    assert not Notification.objects.filter(recipient__username="inactive").exists()


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"title": ""}, "title", "required"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"url": "javascript:alert(1)"}, "url", "not allowed"),
        ({"url": "//evil.example/"}, "url", "Protocol-relative"),
        ({"level": "fatal"}, "level", "valid choice"),
        ({"body": "b" * 10_001}, "body", "limit is 10000"),
    ],
)
def test_send_invalid_input_shows_errors_and_sends_nothing(
    admin_client: Any, make_user: Any, extra: dict[str, Any], field: str, message: str
) -> None:
    alice = make_user("alice")
    response = admin_client.post(reverse(SEND), send_payload(users=[alice.pk], **extra))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert "errornote" in response.text
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"users": ["99999999999999999999999"]}, "users"),  # past 64 bits: OverflowError on SQLite
        ({"users": ["abc"]}, "users"),  # the autocomplete widget looked it up on re-render
        ({"users": ["-1"]}, "users"),
        ({"groups": ["99999999999999999999999"]}, "groups"),
        ({"groups": ["abc"]}, "groups"),
    ],
)
def test_send_tampered_recipient_ids_are_form_errors(admin_client: Any, extra: dict[str, Any], field: str) -> None:
    """A hand-edited POST gets the same "not a valid value" as a wrong id, never a 500."""
    response = admin_client.post(reverse(SEND), send_payload(**extra))
    assert response.status_code == 200
    assert "is not a valid value" in " ".join(response.context["form"].errors[field])
    assert "errornote" in response.text
    assert not Notification.objects.exists()


def test_send_needs_recipients(admin_client: Any, make_user: Any) -> None:
    lonely = Group.objects.create(name="empty")
    for payload, message in [
        (send_payload(), "Choose who receives"),
        (send_payload(groups=[lonely.pk]), "No active user matches"),
        (send_payload(everyone="on", users=[make_user("alice").pk]), "either everyone or"),
    ]:
        response = admin_client.post(reverse(SEND), payload)
        assert response.status_code == 200
        assert message in " ".join(response.context["form"].non_field_errors())
    assert not Notification.objects.exists()


def test_send_page_is_for_staff_with_add_permission(client: Any, make_user: Any) -> None:
    url = reverse(SEND)
    # anonymous and non-staff: sent to the admin login
    response = client.get(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    client.force_login(make_user("plain"))
    response = client.post(url, send_payload(everyone="on"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    # staff without the add permission: 403, even with view/change
    client.force_login(staff_with(make_user, "view_notification", "change_notification"))
    assert client.get(url).status_code == 403
    assert client.post(url, send_payload(everyone="on")).status_code == 403
    changelist = client.get(reverse(CHANGELIST))
    assert changelist.status_code == 200 and url not in changelist.text  # no button either
    assert not Notification.objects.exists()
    # staff with it: allowed
    client.force_login(staff_with(make_user, "add_notification"))
    assert client.get(url).status_code == 200
    response = client.post(url, send_payload(everyone="on"))
    assert response.status_code == 302
    assert Notification.objects.exists()


# -- the User changelist action ---------------------------------------------------------------


def test_user_action_preselects_users(admin_client: Any, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_notification_to_users", "_selected_action": [alice.pk, bob.pk]},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(SEND))
    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    assert sorted(page.context["form"].initial["users"]) == sorted([alice.pk, bob.pk])
    # the autocomplete widget renders the preselected users as selected options
    assert f'<option value="{alice.pk}" selected>alice</option>' in page.text
    assert f'<option value="{bob.pk}" selected>bob</option>' in page.text


def test_user_action_is_listed_and_refused_without_permission(client: Any, make_user: Any) -> None:
    alice = make_user("alice")
    viewer = staff_with(make_user, "view_user")
    client.force_login(viewer)
    changelist = client.get(reverse("admin:auth_user_changelist"))
    assert "Send notification to selected users" in changelist.text
    response = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_notification_to_users", "_selected_action": [alice.pk]},
        follow=True,
    )
    assert "You may not send notifications." in response.text
    assert not Notification.objects.exists()


def test_user_action_added_once_and_survives_reregistration() -> None:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.admin import UserAdmin

    from sse_notify.admin import add_user_action, send_notification_to_users

    User = get_user_model()
    original = admin.site._registry[User]
    assert original.actions.count(send_notification_to_users) == 1
    assert add_user_action() is True
    assert original.actions.count(send_notification_to_users) == 1
    assert send_notification_to_users not in UserAdmin.actions  # the class is not modified
    site = admin.AdminSite(name="other")
    assert add_user_action(site) is False  # no User admin there: nothing to do
    site.register(User, UserAdmin)
    assert add_user_action(site) is True
    assert send_notification_to_users in site._registry[User].actions


# -- end to end: the admin page reaches an open stream through a real Daphne -------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_admin_send_reaches_an_open_stream(daphne: Any, make_user: Any) -> None:
    import re

    import httpx
    from asgiref.sync import sync_to_async

    from tests.sse_client import SSEStream
    from tests.support import session_cookie

    server = daphne()
    alice = await sync_to_async(make_user)("alice")
    boss = await sync_to_async(make_user)("boss", is_staff=True, is_superuser=True)
    alice_cookie, boss_cookie = await sync_to_async(session_cookie)(alice), await sync_to_async(session_cookie)(boss)
    send_path = "/admin/sse_notify/notification/send/"
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=alice_cookie) as stream:
        assert (await stream.next_event()).event == "ready"
        async with httpx.AsyncClient(base_url=server.base, cookies={"sessionid": boss_cookie}) as http:
            page = await http.get(send_path)
            assert page.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token
            response = await http.post(
                send_path,
                data={"csrfmiddlewaretoken": token[1], "users": [str(alice.pk)], "title": "From the admin",
                      "body": "", "level": "warning", "url": "/orders/7/"},
            )  # fmt: skip
            assert response.status_code == 302, response.text[-2000:]
        event = await stream.next_event()
        assert (event.event, event.id) == ("notification", "1")
        assert event.json()["title"] == "From the admin"
        assert (event.json()["level"], event.json()["url"], event.json()["actor"]) == ("warning", "/orders/7/", "boss")


def test_preselection_skips_what_cannot_be_an_id(admin_client: Any, make_user: Any) -> None:
    """``?users=`` past 64 bits (OverflowError on SQLite) or "²" (isdigit, not int) was a 500."""
    alice = make_user("alice")
    page = admin_client.get(reverse(SEND) + f"?users={alice.pk},99999999999999999999999,%C2%B2,abc")
    assert page.status_code == 200
    assert page.context["form"].initial["users"] == [alice.pk]


def test_preselection_needs_the_view_user_permission(client: Any, make_user: Any) -> None:
    alice = make_user("alice")
    client.force_login(staff_with(make_user, "add_notification"))
    page = client.get(reverse(SEND), {"users": str(alice.pk)})
    assert page.status_code == 200
    assert "users" not in page.context["form"].initial
    assert ">alice<" not in page.text  # no username leaked to someone who may not list users


def test_user_action_refuses_more_users_than_a_url_can_carry(
    admin_client: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sse_notify.admin.MAX_PRESELECTED_USERS", 2)
    users = [make_user(f"u{i}") for i in range(3)]
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_notification_to_users", "_selected_action": [u.pk for u in users]},
        follow=True,
    )
    assert response.redirect_chain[-1][0].startswith(reverse("admin:auth_user_changelist"))
    assert "Select at most 2 users; to reach more, send to a group or to everyone." in response.text


def test_change_form_edits_text_but_keeps_seq_and_read_state(admin_client: Any, make_user: Any) -> None:
    (n,) = send_notification(make_user("alice"), "Typo")
    url = reverse("admin:sse_notify_notification_change", args=[n.pk])
    form = {"title": "Fixed", "body": "", "level": "info", "url": "", "data": ""}
    assert admin_client.post(url, {**form, "url": "vbscript:x"}).status_code == 200  # refused, re-rendered
    response = admin_client.post(url, {**form, "seq": "99", "read_at_0": "2020-01-01", "read_at_1": "00:00"})
    assert response.status_code == 302
    n.refresh_from_db()
    assert (n.title, n.seq, n.read_at) == ("Fixed", 1, None)


@pytest.mark.django_db(transaction=True)
def test_mark_read_action_tells_the_users_open_tabs(client: Any, make_user: Any) -> None:
    """The action goes through the queryset API, so a `read` message reaches the user's group."""
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers, get_channel_layer

    from sse_notify.protocol import ReadChange, user_group
    from tests.support import join, receive_or_none

    alice = make_user("alice")
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    (n,) = send_notification(alice, "hello")
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        channel = async_to_sync(join)(layer, user_group(alice.pk))
        client.post(reverse(CHANGELIST), {"action": "mark_read", "_selected_action": [n.pk]})
        message = async_to_sync(receive_or_none)(layer, channel, 2)
    finally:
        channel_layers.backends.clear()
    assert message == {"type": ReadChange.TYPE, "read": True, "users": [[alice.pk, 0, [n.pk]]]}
