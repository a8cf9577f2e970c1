"""Grouping: same category + group key show as one entry with a count, expanding to the items;
reading the group reads its items."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from sse_notify.api import send_notification
from sse_notify.models import GROUP_ITEMS, Inbox, Notification

CATEGORIES = {"comments": {"label": "Comments"}, "reviews": {"label": "Reviews"}}
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("categories")]


@pytest.fixture
def categories() -> Any:
    with override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES, "PAGE_SIZE": 3}):
        yield


@pytest.fixture
def thread(user: Any) -> list[Notification]:
    """Three comments on issue 42 among other notifications, oldest first."""
    sent = []
    sent += send_notification(user, "Comment 1 on Issue 42", category="comments", group_key="issue-42")
    sent += send_notification(user, "Unrelated", category="default")
    sent += send_notification(user, "Comment 2 on Issue 42", category="comments", group_key="issue-42")
    sent += send_notification(user, "Review on Issue 42", category="reviews", group_key="issue-42")
    sent += send_notification(user, "Comment 3 on Issue 42", category="comments", group_key="issue-42")
    return sent


def test_a_group_is_one_entry_with_a_count(user: Any, thread: list[Notification]) -> None:
    entries = list(Notification.objects.for_user(user).grouped().order_by("-seq"))
    assert [(e.title, e.group_count, e.group_unread) for e in entries] == [
        ("Comment 3 on Issue 42", 3, 3),
        ("Review on Issue 42", 1, 1),  # same key, other category: not the same thing
        ("Unrelated", 1, 1),
    ]


def test_groups_follow_the_querysets_filters(user: Any, thread: list[Notification]) -> None:
    Notification.objects.filter(pk=thread[4].pk).mark_read()  # the newest comment
    unread = list(Notification.objects.for_user(user).unread().grouped().order_by("-seq"))
    assert [(e.title, e.group_count) for e in unread] == [
        ("Review on Issue 42", 1),
        ("Comment 2 on Issue 42", 2),
        ("Unrelated", 1),
    ]


def test_the_list_pages_through_entries_and_expands_groups(
    user: Any, thread: list[Notification], client: Client, django_assert_max_num_queries: Any
) -> None:
    client.force_login(user)
    with django_assert_max_num_queries(8):
        page = client.get("/notifications/api/notifications/").json()
    assert page["pages"] == 1  # 5 notifications, 3 entries: one page of PAGE_SIZE 3
    first = page["results"][0]
    assert (first["title"], first["group"], first["group_count"], first["group_unread"]) == (
        "Comment 3 on Issue 42",
        "issue-42",
        3,
        3,
    )
    assert [i["title"] for i in first["items"]] == [f"Comment {n} on Issue 42" for n in (3, 2, 1)]
    assert "items" not in page["results"][2]  # ungrouped entries have none
    assert page["unread"] == 5


def test_expansion_lists_at_most_group_items_but_counts_all(user: Any, client: Client) -> None:
    for n in range(GROUP_ITEMS + 5):
        send_notification(user, f"Build {n}", category="default", group_key="ci")
    client.force_login(user)
    (entry,) = client.get("/notifications/api/notifications/").json()["results"]
    assert entry["group_count"] == GROUP_ITEMS + 5
    assert len(entry["items"]) == GROUP_ITEMS
    assert entry["items"][0]["title"] == f"Build {GROUP_ITEMS + 4}"


def test_many_groups_cost_no_query_each(user: Any, client: Client, django_assert_max_num_queries: Any) -> None:
    for g in range(3):
        for n in range(4):
            send_notification(user, f"g{g} n{n}", category="comments", group_key=f"g{g}")
    client.force_login(user)
    with django_assert_max_num_queries(8):
        results = client.get("/notifications/api/notifications/").json()["results"]
    assert [(r["title"], r["group_count"], len(r["items"])) for r in results] == [
        ("g2 n3", 4, 4),
        ("g1 n3", 4, 4),
        ("g0 n3", 4, 4),
    ]


def test_reading_the_group_reads_its_items(user: Any, thread: list[Notification], make_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/notifications/preferences/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    url = f"/notifications/api/notifications/{thread[2].pk}/read-group/"  # any member will do
    assert client.post(url).status_code == 403  # no CSRF token
    response = client.post(url, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    members = sorted(n.pk for n in (thread[0], thread[2], thread[4]))
    assert response.json() == {"id": thread[2].pk, "ids": members, "marked": 3, "read": True, "unread": 2}
    still_unread = set(Notification.objects.filter(read_at__isnull=True).values_list("title", flat=True))
    assert still_unread == {"Unrelated", "Review on Issue 42"}
    assert Inbox.objects.get(user=user).unread == 2
    # Someone else's notification is indistinguishable from a missing one.
    (theirs,) = send_notification(make_user("bob"), "Bob's", category="comments", group_key="issue-42")
    other = client.post(f"/notifications/api/notifications/{theirs.pk}/read-group/", headers={"X-CSRFToken": token})
    assert other.status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_the_inbox_page_shows_groups_and_reads_them_without_javascript(
    user: Any, thread: list[Notification], client: Client
) -> None:
    client.force_login(user)
    html = client.get("/notifications/").content.decode()
    assert html.count('class="sse-notify-inbox__item') == 3
    assert "3 notifications, 3 unread" in html
    assert html.count('class="sse-notify-inbox__member is-unread"') == 3
    assert 'value="read_group"' in html
    response = client.post("/notifications/", {"id": thread[4].pk, "action": "read_group"})
    assert response.status_code == 302
    assert Notification.objects.filter(group_key="issue-42", category="comments", read_at__isnull=True).count() == 0
    assert Notification.objects.get(title="Review on Issue 42").read_at is None
    html = client.get("/notifications/").content.decode()
    assert "3 notifications," not in html  # nothing unread left in the group


def test_the_bell_list_shows_a_group_as_one_item(user: Any, thread: list[Notification]) -> None:
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    html = Template("{% load sse_notify %}{% sse_notify_list 5 %}").render(Context({"request": request}))
    assert html.count('class="sse-notify-item ') == 3
    assert 'data-group="comments:issue-42" data-count="3"' in html
    assert "Comment 1 on Issue 42" in html  # in the expansion


def test_the_inbox_script_reads_a_group_in_place(user: Any, thread: list[Notification], client: Client) -> None:
    """The inbox's JS posts the row's form asking for JSON: it gets every member's id back."""
    client.force_login(user)
    response = client.post(
        "/notifications/", {"id": thread[4].pk, "action": "read_group"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "ids": sorted(n.pk for n in (thread[0], thread[2], thread[4])),
        "read": True,
        "unread": 2,
    }


def test_the_unread_filter_groups_the_unread_items(user: Any, thread: list[Notification], client: Client) -> None:
    Notification.objects.filter(pk=thread[4].pk).mark_read()
    client.force_login(user)
    html = client.get("/notifications/?state=unread").content.decode()
    assert "2 notifications, 2 unread" in html
    assert "Comment 3 on Issue 42" not in html  # read: not in the unread view


def test_a_group_checked_in_the_bulk_toolbar_is_read_whole(
    user: Any, thread: list[Notification], client: Client
) -> None:
    """The toolbar's "Mark selected read" on a checked group entry reads the group, not just its newest item."""
    client.force_login(user)
    unrelated = Notification.objects.get(title="Review on Issue 42")
    response = client.post(
        "/notifications/",
        {"id": [thread[4].pk, unrelated.pk], "action": "read"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    members = sorted(n.pk for n in (thread[0], thread[2], thread[4]))
    assert response.json()["ids"] == sorted([*members, unrelated.pk])
    assert not Notification.objects.filter(pk__in=members, read_at__isnull=True).exists()
    assert Notification.objects.get(pk=unrelated.pk).read_at is not None
    assert Notification.objects.get(title="Unrelated").read_at is None  # not checked: untouched
    assert Inbox.objects.get(user=user).unread == 1
    # Marking the entry unread again shows the group as unread (its entry only).
    client.post("/notifications/", {"id": thread[4].pk, "action": "unread"})
    assert list(
        Notification.objects.filter(read_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    ) == sorted([thread[4].pk, Notification.objects.get(title="Unrelated").pk])
