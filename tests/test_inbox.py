"""The inbox page: filters, bulk selection, and the JSON answers its script uses.

The basics (sign-in, escaping, one row's form, CSRF, pagination) are in
test_views.py; the in-place behaviour in a real browser is in
tests/browser/test_inbox.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from sse_notify.api import send_notification
from sse_notify.models import Notification
from tests.support import csrf_client, titles

pytestmark = pytest.mark.django_db

INBOX = reverse("sse_notify:inbox")
JSON = {"Accept": "application/json"}
# What Chromium sends when it submits a form: */* must not turn the redirect into JSON.
BROWSER_FORM = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}


@pytest.fixture
def alice_client(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def mixed(user: Any, make_user: Any) -> dict[str, Notification]:
    """Alice's: two unread (info, error), one read warning; and one of bob's."""
    made = {
        "info": send_notification(user, "info unread")[0],
        "error": send_notification(user, "error unread", level="error")[0],
        "warning": send_notification(user, "warning read", level="warning")[0],
        "bob": send_notification(make_user("bob"), "bob's error", level="error")[0],
    }
    Notification.objects.filter(pk=made["warning"].pk).mark_read()
    return made


def unread_ids(user: Any) -> set[int]:
    return set(Notification.objects.for_user(user).unread().values_list("pk", flat=True))


def links(html: str, label: str) -> list[str]:
    return re.findall(rf'<a href="([^"]*)"[^>]*>{label}</a>', html)


# -- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["warning read", "error unread", "info unread"]),
        ({"state": "unread"}, ["error unread", "info unread"]),
        ({"level": "error"}, ["error unread"]),
        ({"state": "unread", "level": "warning"}, []),
        ({"state": "all", "level": "warning"}, ["warning read"]),
        # Unknown values mean "no filter", not an error page.
        ({"state": "bogus", "level": "<script>"}, ["warning read", "error unread", "info unread"]),
    ],
)
def test_filters_by_state_and_level(
    alice_client: Client, mixed: Any, query: dict[str, str], expected: list[str]
) -> None:
    html = alice_client.get(INBOX, query).content.decode()
    assert titles(html) == expected
    if "level" in query and query["level"] not in ("error", "warning"):
        assert links(html, "Unread") == ["?state=unread"]  # an unknown value is dropped from the links
    if not expected:
        assert "Nothing matches these filters." in html


def test_filter_links_keep_the_other_filter_and_mark_the_current_one(alice_client: Client, mixed: Any) -> None:
    html = alice_client.get(INBOX, {"state": "unread", "level": "error"}).content.decode()
    assert links(html, "All") == ["?level=error"]
    assert links(html, "Any level") == ["?state=unread"]
    assert links(html, "Warning") == ["?state=unread&amp;level=warning"]
    current = re.findall(r'aria-current="true">([^<]*)<', html)
    assert current == ["Unread", "Error"]


@override_settings(SSE_NOTIFY={"PAGE_SIZE": 1})
def test_pages_keep_the_filters(alice_client: Client, mixed: Any) -> None:
    html = alice_client.get(INBOX, {"state": "unread"}).content.decode()
    assert titles(html) == ["error unread"]
    assert links(html, "Older") == ["?state=unread&amp;page=2"]
    assert titles(alice_client.get(INBOX, {"state": "unread", "page": 2}).content.decode()) == ["info unread"]


def test_mark_all_read_is_offered_only_while_something_is_unread(alice_client: Client, user: Any, mixed: Any) -> None:
    assert re.search(
        r'<form method="post" data-sse-notify-mark-all class="[^"]*">', alice_client.get(INBOX).content.decode()
    )
    Notification.objects.for_user(user).mark_read()
    assert re.search(r"<form [^>]*data-sse-notify-mark-all[^>]* hidden>", alice_client.get(INBOX).content.decode())


# -- bulk selection ------------------------------------------------------------------------


def test_every_row_has_a_checkbox_in_the_bulk_form(alice_client: Client, mixed: Any) -> None:
    html = alice_client.get(INBOX).content.decode()
    assert 'id="sse-notify-bulk"' in html
    boxes = re.findall(
        r'<input type="checkbox" class="sse-notify-inbox__check" name="id" value="(\d+)" form="sse-notify-bulk"', html
    )
    assert sorted(map(int, boxes)) == sorted(n.pk for k, n in mixed.items() if k != "bob")


def test_bulk_marks_the_selected_read_then_unread_and_comes_back_to_the_same_view(user: Any, mixed: Any) -> None:
    c, token = csrf_client(user)
    here = f"{INBOX}?state=unread&level=error"
    chosen = [mixed["info"].pk, mixed["error"].pk]
    response = c.post(
        INBOX, {"id": chosen, "action": "read", "next": here, "csrfmiddlewaretoken": token}, headers=BROWSER_FORM
    )
    assert (response.status_code, response["Location"]) == (302, here)
    assert unread_ids(user) == set()
    c.post(INBOX, {"id": [mixed["warning"].pk, mixed["info"].pk], "action": "unread", "csrfmiddlewaretoken": token})
    assert unread_ids(user) == {mixed["warning"].pk, mixed["info"].pk}


def test_bulk_with_nothing_selected_changes_nothing(user: Any, mixed: Any) -> None:
    c, token = csrf_client(user)
    response = c.post(INBOX, {"action": "read", "csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, INBOX)
    assert unread_ids(user) == {mixed["info"].pk, mixed["error"].pk}


def test_bulk_with_someone_elses_id_is_refused_whole(user: Any, mixed: Any) -> None:
    c, token = csrf_client(user)
    response = c.post(INBOX, {"id": [mixed["info"].pk, mixed["bob"].pk], "csrfmiddlewaretoken": token})
    assert response.status_code == 404
    assert unread_ids(user) == {mixed["info"].pk, mixed["error"].pk}
    assert Notification.objects.get(pk=mixed["bob"].pk).read_at is None


# -- JSON for the page's script ------------------------------------------------------------


def test_asking_for_json_answers_the_change_instead_of_redirecting(user: Any, mixed: Any) -> None:
    c, token = csrf_client(user)
    one = c.post(INBOX, {"id": mixed["error"].pk, "action": "read", "csrfmiddlewaretoken": token}, headers=JSON)
    assert one.status_code == 200
    assert one.json() == {"ids": [mixed["error"].pk], "read": True, "unread": 1}
    both = c.post(
        INBOX,
        {"id": [mixed["warning"].pk, mixed["error"].pk], "action": "unread", "csrfmiddlewaretoken": token},
        headers=JSON,
    )
    assert both.json() == {"ids": sorted([mixed["warning"].pk, mixed["error"].pk]), "read": False, "unread": 3}
    every = c.post(INBOX, {"all": "1", "csrfmiddlewaretoken": token}, headers=JSON)
    assert every.json() == {"ids": None, "read": True, "unread": 0}
    assert unread_ids(user) == set()


def test_json_answers_still_need_csrf(user: Any, mixed: Any) -> None:
    c, _ = csrf_client(user)
    assert c.post(INBOX, {"all": "1"}, headers=JSON).status_code == 403
    assert unread_ids(user) == {mixed["info"].pk, mixed["error"].pk}
