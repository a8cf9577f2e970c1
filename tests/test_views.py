"""The JSON endpoints the browser client calls, and the plain inbox page, when allowed.

Who may call them (POST, CSRF, ownership, anonymous users) is tested for every endpoint
at once in test_security.py.
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

LIST = reverse("sse_notify:list")
UNREAD = reverse("sse_notify:unread_count")
READ_ALL = reverse("sse_notify:mark_all_read")
INBOX = reverse("sse_notify:inbox")


def read_url(pk: int) -> str:
    return reverse("sse_notify:mark_read", args=[pk])


@pytest.fixture
def bob(make_user: Any) -> Any:
    return make_user("bob")


@pytest.fixture
def alice_client(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


# -- list and count --------------------------------------------------------------


@override_settings(SSE_NOTIFY={"PAGE_SIZE": 2})
def test_list_is_paginated_newest_first(alice_client: Client, user: Any, bob: Any) -> None:
    for i in range(1, 6):
        send_notification(user, f"n{i}")
    send_notification(bob, "bob's")
    first = alice_client.get(LIST).json()
    assert [r["title"] for r in first["results"]] == ["n5", "n4"]
    assert (first["page"], first["pages"], first["unread"], first["cursor"]) == (1, 3, 5, 5)
    assert set(first["results"][0]) >= {
        "id",
        "seq",
        "title",
        "body",
        "level",
        "url",
        "data",
        "created",
        "actor",
        "read",
    }
    last = alice_client.get(LIST, {"page": 3}).json()
    assert [r["title"] for r in last["results"]] == ["n1"]


@pytest.mark.parametrize("page", ["4", "0", "abc"])
def test_list_out_of_range_page_is_a_json_404(alice_client: Client, user: Any, page: str) -> None:
    send_notification(user, "only one")
    response = alice_client.get(LIST, {"page": page})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_empty_list(alice_client: Client) -> None:
    assert alice_client.get(LIST).json() == {"results": [], "page": 1, "pages": 1, "unread": 0, "cursor": 0}


def test_unread_count_is_the_users_own(alice_client: Client, user: Any, bob: Any) -> None:
    send_notification(user, "a")
    send_notification(user, "b")
    send_notification(bob, "c")
    Notification.objects.filter(title="a").mark_read()
    assert alice_client.get(UNREAD).json() == {"unread": 1, "cursor": 2}


# -- marking read -------------------------------------------------------------------


def test_mark_read_marks_one_and_returns_the_count(alice_client: Client, user: Any) -> None:
    [a] = send_notification(user, "a")
    send_notification(user, "b")
    response = alice_client.post(read_url(a.pk))
    assert response.status_code == 200
    assert response.json() == {"id": a.pk, "read": True, "unread": 1}
    a.refresh_from_db()
    assert a.read_at is not None
    assert Notification.objects.get(title="b").read_at is None


def test_mark_all_read_marks_only_mine(alice_client: Client, user: Any, bob: Any) -> None:
    send_notification(user, "a")
    send_notification(user, "b")
    send_notification(bob, "c")
    response = alice_client.post(READ_ALL)
    assert response.json() == {"marked": 2, "unread": 0}
    assert Notification.objects.get(title="c").read_at is None
    assert alice_client.post(READ_ALL).json() == {"marked": 0, "unread": 0}


# -- the inbox page (no JavaScript needed) ------------------------------------------------


def test_inbox_lists_my_notifications_with_state_escaped(alice_client: Client, user: Any, bob: Any) -> None:
    send_notification(user, "<b>bold</b> claim", body="line1\nline2", url="/orders/7/")
    send_notification(user, "already seen")
    send_notification(bob, "bob's")
    Notification.objects.filter(title="already seen").mark_read()
    Notification.objects.bulk_create([Notification(recipient=user, title="sneaky", url="javascript:alert(1)")])
    html = alice_client.get(INBOX).content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in html and "<b>bold</b>" not in html
    assert "bob's" not in html
    assert 'href="/orders/7/"' in html
    assert "javascript:" not in html
    assert "line1<br>line2" in html
    assert re.search(r"<span data-sse-notify-unread>2</span>", html)
    assert html.count(" is-unread") == 2
    assert html.count('value="unread">Mark unread') == 1


def test_inbox_forms_mark_read_unread_and_all_without_js(user: Any) -> None:
    [a] = send_notification(user, "a")
    send_notification(user, "b")
    c, token = csrf_client(user)
    response = c.post(INBOX, {"id": a.pk, "action": "read", "csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, INBOX)
    a.refresh_from_db()
    assert a.read_at is not None
    c.post(INBOX, {"id": a.pk, "action": "unread", "csrfmiddlewaretoken": token})
    a.refresh_from_db()
    assert a.read_at is None
    # "next" brings the user back to the page the dropdown's form was on, same host only.
    response = c.post(INBOX, {"all": "1", "next": "/projects/", "csrfmiddlewaretoken": token})
    assert response["Location"] == "/projects/"
    assert Notification.objects.unread().count() == 0
    response = c.post(INBOX, {"all": "1", "next": "https://evil.example/", "csrfmiddlewaretoken": token})
    assert response["Location"] == INBOX


@override_settings(SSE_NOTIFY={"PAGE_SIZE": 2})
def test_inbox_paginates(alice_client: Client, user: Any) -> None:
    for i in range(3):
        send_notification(user, f"n{i}")
    html = alice_client.get(INBOX).content.decode()
    assert titles(html) == ["n2", "n1"] and "Page 1 of 2" in html
    assert titles(alice_client.get(INBOX, {"page": 2}).content.decode()) == ["n0"]


def test_mark_unread_marks_one_unread_again_and_only_mine(alice_client: Client, user: Any, bob: Any) -> None:
    [a] = send_notification(user, "a")
    [theirs] = send_notification(bob, "theirs")
    Notification.objects.all().mark_read()
    url = reverse("sse_notify:mark_unread", args=[a.pk])
    assert alice_client.get(url).status_code == 405
    response = alice_client.post(url)
    assert response.json() == {"id": a.pk, "read": False, "unread": 1}
    a.refresh_from_db()
    assert a.read_at is None
    other = alice_client.post(reverse("sse_notify:mark_unread", args=[theirs.pk]))
    assert (other.status_code, other.json()["error"]) == (404, "not_found")
    theirs.refresh_from_db()
    assert theirs.read_at is not None


def test_mark_unread_needs_the_csrf_token(user: Any) -> None:
    [n] = send_notification(user, "a")
    Notification.objects.filter(pk=n.pk).mark_read()
    c, token = csrf_client(user)
    url = reverse("sse_notify:mark_unread", args=[n.pk])
    refused = c.post(url)
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    assert c.post(url, HTTP_X_CSRFTOKEN=token).json()["read"] is False


# -- errors are JSON on every JSON endpoint ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "args", "allow"),
    [
        ("get", "sse_notify:mark_read", [1], "POST"),
        ("put", "sse_notify:mark_read", [1], "POST"),
        ("get", "sse_notify:mark_unread", [1], "POST"),
        ("get", "sse_notify:mark_group_read", [1], "POST"),
        ("delete", "sse_notify:mark_all_read", [], "POST"),
        ("post", "sse_notify:list", [], "GET"),
        ("post", "sse_notify:unread_count", [], "GET"),
        ("put", "sse_notify:preferences_api", [], "GET, POST"),
        ("post", "sse_notify:stream", [], "GET"),
    ],
)
def test_wrong_method_is_a_json_405(alice_client: Client, method: str, name: str, args: list[int], allow: str) -> None:
    """Every other error of these endpoints is ``{"error", "detail"}``; so is this one (was empty HTML)."""
    response = getattr(alice_client, method)(reverse(name, args=args))
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == allow


@pytest.mark.parametrize("name", ["sse_notify:list", "sse_notify:unread_count", "sse_notify:stream"])
@pytest.mark.parametrize("method", ["post", "delete"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_wrong_method_on_a_read_only_endpoint_is_json_without_a_csrf_token(
    user: Any, name: str, method: str, signed_in: bool
) -> None:
    """They change nothing, so no CSRF check: the answer was the CSRF middleware's HTML 403."""
    client = Client(enforce_csrf_checks=True)
    if signed_in:
        client.force_login(user)
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("pk", ["99999999999999999999999", "9223372036854775808", "-5", "1e3", "abc"])
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_inbox_post_with_an_impossible_id_is_a_404_and_changes_nothing(user: Any, pk: str, accept: str) -> None:
    """Past 64 bits SQLite raised OverflowError (a 500); the script's JSON request gets JSON."""
    mine = send_notification(user, "keep me unread")[0]
    client, token = csrf_client(user)
    response = client.post(
        INBOX, {"id": [str(mine.pk), pk], "action": "read"}, headers={"X-CSRFToken": token, "Accept": accept}
    )
    assert response.status_code == 404
    if accept == "application/json":
        assert response.json()["error"] == "not_found"
    else:
        assert response["Content-Type"].startswith("text/html")
    assert Notification.objects.get(pk=mine.pk).read_at is None


def test_inbox_json_post_for_someone_elses_id_is_a_json_404(user: Any, bob: Any) -> None:
    theirs = send_notification(bob, "not yours")[0]
    client, token = csrf_client(user)
    response = client.post(
        INBOX, {"id": theirs.pk, "action": "read"}, headers={"X-CSRFToken": token, "Accept": "application/json"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No such notification."}
    assert Notification.objects.get(pk=theirs.pk).read_at is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "api/notifications/-1/read/"),
        ("post", "api/notifications/abc/unread/"),
        ("post", "api/notifications/1/reed/"),
        ("get", "api/no-such-endpoint/"),
    ],
)
def test_a_url_under_api_that_names_no_endpoint_is_a_json_404(
    alice_client: Client, user: Any, method: str, path: str
) -> None:
    (n,) = send_notification(user, "Still unread")
    response = getattr(alice_client, method)(INBOX + path)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No such page."}
    n.refresh_from_db()
    assert n.read_at is None


def test_a_url_under_api_without_its_slash_is_still_redirected_to_the_endpoint(alice_client: Client) -> None:
    """APPEND_SLASH: "api/unread" -> "api/unread/" (a catch-all for every api/ path broke that)."""
    response = alice_client.get(UNREAD.rstrip("/"))
    assert (response.status_code, response["Location"]) == (301, UNREAD)


@override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": ["https://app.example"]})
def test_an_unknown_api_url_answers_json_to_a_cross_origin_post_and_preflight(user: Any) -> None:
    """No CSRF page, and CORS headers, so a cross-origin client can read the 404."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = INBOX + "api/no-such-endpoint/"
    headers = {"Origin": "https://app.example"}
    preflight = client.options(url, headers={**headers, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example"
    response = client.post(url, headers=headers)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response["Access-Control-Allow-Origin"] == "https://app.example"
