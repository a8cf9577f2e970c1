"""Access control across every endpoint: POST + CSRF + ownership for every change, nothing for
anonymous users, CORS opt-in.

The one place for these rules: a new state-changing endpoint goes into ``changes()`` and is
then held to all of them. test_views.py tests what each endpoint does when it is allowed.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client, override_settings
from django.urls import reverse

from sse_notify.api import send_notification
from sse_notify.models import Notification
from tests.support import AsgiStream, csrf_client, http_scope, open_stream, session_cookie

pytestmark = pytest.mark.django_db

INBOX = reverse("sse_notify:inbox")


@pytest.fixture
def two_users(make_user: Any) -> tuple[Any, Any]:
    alice, bob = make_user("alice"), make_user("bob")
    send_notification(alice, "for alice")
    send_notification(bob, "for bob, secret")
    return alice, bob


def unread(user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def changes(user: Any) -> list[Any]:
    pk = Notification.objects.get(recipient=user).pk
    return [
        ("mark_read", reverse("sse_notify:mark_read", args=[pk]), {}),
        ("mark_all_read", reverse("sse_notify:mark_all_read"), {}),
        ("inbox one", reverse("sse_notify:inbox"), {"id": str(pk)}),
        ("inbox all", reverse("sse_notify:inbox"), {"all": "1"}),
    ]


def test_state_changes_refuse_get(two_users):
    alice, _ = two_users
    client, _ = csrf_client(alice)
    for name, url, data in changes(alice):
        if name.startswith("inbox"):
            continue  # GET renders the inbox, it changes nothing
        response = client.get(url, data)
        assert response.status_code == 405, name
    assert unread(alice) == 1


def test_state_changes_require_csrf(two_users):
    alice, _ = two_users
    client, _ = csrf_client(alice)
    for name, url, data in changes(alice):
        for headers in ({}, {"X-CSRFToken": "B" * 32}):  # no token; a wrong one
            response = client.post(url, data, headers=headers)
            assert response.status_code == 403, name
            if not name.startswith("inbox"):  # JSON for the client, not the middleware's HTML page
                assert response.json()["error"] == "csrf_failed", name
            assert unread(alice) == 1, name


def test_state_changes_work_with_post_and_csrf(two_users):
    alice, bob = two_users
    client, token = csrf_client(alice)
    for name, url, data in changes(alice):
        Notification.objects.filter(recipient=alice).update(read_at=None)
        # The header the JS client sends (config csrfHeaderName), with the page's token.
        response = client.post(url, data, headers={"X-CSRFToken": token})
        # JSON endpoints answer 200, the inbox's forms redirect back to it.
        assert response.status_code == (302 if name.startswith("inbox") else 200), name
        assert unread(alice) == 0, name
    assert unread(bob) == 1, "alice's actions touched bob's inbox"


def test_another_users_notification_is_404_and_unchanged(two_users):
    alice, bob = two_users
    bobs = Notification.objects.get(recipient=bob)
    client, token = csrf_client(alice)
    csrf = {"X-CSRFToken": token}
    theirs = client.post(reverse("sse_notify:mark_read", args=[bobs.pk]), headers=csrf)
    assert theirs.status_code == 404 and theirs.json()["error"] == "not_found"
    assert "secret" not in theirs.content.decode()
    for data in ({"id": str(bobs.pk)}, {"id": str(bobs.pk), "action": "unread"}, {"id": "nope"}):
        assert client.post(INBOX, data, headers=csrf).status_code == 404, data
    # A missing id looks exactly the same as someone else's.
    missing = client.post(reverse("sse_notify:mark_read", args=[bobs.pk + 1000]), headers=csrf)
    assert (missing.status_code, missing.json()) == (404, theirs.json())
    bobs.refresh_from_db()
    assert bobs.read_at is None and unread(bob) == 1
    assert unread(alice) == 1, "a failed request must not change the caller's own state either"


def test_anonymous_gets_no_data(two_users):
    client = Client()
    pk = Notification.objects.get(recipient=two_users[1]).pk
    for method, url in (
        ("get", reverse("sse_notify:list")),
        ("get", reverse("sse_notify:unread_count")),
        ("post", reverse("sse_notify:mark_read", args=[pk])),
        ("post", reverse("sse_notify:mark_all_read")),
    ):
        response = getattr(client, method)(url)
        assert response.status_code == 403, url
        assert response["Content-Type"] == "application/json", url
        assert response.json()["error"] == "not_authenticated", url
        assert "for bob" not in response.content.decode()
    response = client.get(INBOX)
    assert response.status_code == 302
    assert "login" in response["Location"] and "next=/notifications/" in response["Location"]
    assert unread(two_users[1]) == 1


@pytest.mark.django_db(transaction=True)
async def test_anonymous_gets_no_stream(fresh_hub, make_user):
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(send_notification)(bob, "for bob")
    s = await AsgiStream(http_scope(query=b"cursor=0")).start()
    assert s.status == 403
    assert s.headers[b"Content-Type"] == b"application/json"
    body = await s.read_to_end()
    assert b"for bob" not in body and b"event:" not in body
    assert fresh_hub.count == 0
    # A forged session cookie is anonymous too.
    s = await AsgiStream(http_scope(cookie="x" * 32, query=b"cursor=0")).start()
    assert s.status == 403


@pytest.mark.django_db(transaction=True)
async def test_the_user_is_never_taken_from_parameters(fresh_hub, make_user):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(send_notification)(bob, "for bob")
    cookie = await sync_to_async(session_cookie)(alice)
    s = await AsgiStream(
        http_scope(
            cookie=cookie, query=f"cursor=0&user={bob.pk}&user_id={bob.pk}&group=sse_notify.user.{bob.pk}".encode()
        )
    ).start()
    await s.read_until(lambda st: bool(st.events("ready")))
    assert s.events("ready")[0].json() == {"cursor": 0, "unread": 0}
    assert await s.quiet_for(0.3)
    assert s.notifications() == []
    await s.disconnect()


# -- CORS -----------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def test_cors_is_off_by_default(two_users):
    client = Client()
    client.force_login(two_users[0])
    response = client.get(reverse("sse_notify:list"), headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Credentials" not in response


@override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": [ORIGIN]})
def test_cors_allow_list_is_exact_with_credentials(two_users):
    client = Client()
    client.force_login(two_users[0])
    url = reverse("sse_notify:list")
    response = client.get(url, headers={"Origin": ORIGIN})
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in [v.strip() for v in response["Vary"].split(",")]
    for origin in (
        "https://app.example.com.evil.com",
        "https://evil.app.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://APP.example.com/",
        "https://app.example.com/",
        "null",
        "*",
        "",
    ):
        response = client.get(url, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response, origin
        assert "Access-Control-Allow-Credentials" not in response, origin
        # The answer depends on Origin, so caches must key on it even when refusing.
        assert "Origin" in [v.strip() for v in response.get("Vary", "").split(",")], origin


@override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": ["*"]})
def test_wildcard_is_never_echoed_with_credentials(two_users):
    client = Client()
    client.force_login(two_users[0])
    for origin in ("*", "https://evil.example"):
        response = client.get(reverse("sse_notify:list"), headers={"Origin": origin})
        assert response.get("Access-Control-Allow-Origin") is None, origin
    from django.core import checks

    assert "sse_notify.E005" in [m.id for m in checks.run_checks()]


@override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": [ORIGIN]})
def test_cors_does_not_bypass_csrf(two_users):
    alice, _ = two_users
    client, token = csrf_client(alice)
    response = client.post(reverse("sse_notify:mark_all_read"), headers={"Origin": ORIGIN, "X-CSRFToken": token})
    # An allow-listed origin may read; it may write only if also in CSRF_TRUSTED_ORIGINS.
    assert response.status_code == 403
    assert unread(alice) == 1


@pytest.mark.django_db(transaction=True)
async def test_stream_cors_headers(fresh_hub, make_user):
    alice = await sync_to_async(make_user)("alice")
    s = await open_stream(alice, headers=[(b"origin", ORIGIN.encode())])
    assert b"Access-Control-Allow-Origin" not in s.headers
    await s.disconnect()
    with override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": [ORIGIN]}):
        s = await open_stream(alice, headers=[(b"origin", ORIGIN.encode())])
        assert s.headers[b"Access-Control-Allow-Origin"] == ORIGIN.encode()
        assert s.headers[b"Access-Control-Allow-Credentials"] == b"true"
        assert b"Origin" in s.headers.get(b"Vary", b"")
        await s.disconnect()
        s = await open_stream(alice, headers=[(b"origin", b"https://evil.example")])
        assert b"Access-Control-Allow-Origin" not in s.headers
        await s.disconnect()
        # Refusals (anonymous) carry the headers too, so the page can read the 403.
        s = await AsgiStream(http_scope(headers=[(b"origin", ORIGIN.encode())])).start()
        assert s.status == 403
        assert s.headers[b"Access-Control-Allow-Origin"] == ORIGIN.encode()
