"""Preferences against a real Daphne on a real socket: a change reaches every open stream at
once, and the next notification of that category carries the new choice (no toast, no count)."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from sse_notify.api import send_notification
from tests.sse_client import SSEStream
from tests.support import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CATEGORIES = {
    "comments": {"label": "Comments", "desktop": False, "email": "daily"},
    "security": {"label": "Security", "required": True},
}


async def post_preferences(base: str, cookie: str, body: dict[str, object]) -> httpx.Response:
    """Change preferences the way the page's JS does: same session, CSRF token from the cookie."""
    async with httpx.AsyncClient(base_url=base, cookies={"sessionid": cookie}) as client:
        page = await client.get("/notifications/preferences/")
        assert page.status_code == 200
        token = client.cookies["csrftoken"]
        return await client.post(
            "/notifications/api/preferences/",
            json=body,
            headers={"X-CSRFToken": token, "Referer": base + "/notifications/preferences/"},
        )


async def test_a_change_reaches_every_open_tab_and_applies_to_the_next_notification(daphne, user):
    overrides = {"CATEGORIES": CATEGORIES, "POLL_INTERVAL": 0.2}
    server = daphne(overrides=overrides)
    cookie = await sync_to_async(session_cookie)(user)
    with override_settings(SSE_NOTIFY=overrides):
        async with (
            SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as tab1,
            SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as tab2,
        ):
            for tab in (tab1, tab2):
                assert (await tab.next_event()).event == "ready"
            await sync_to_async(send_notification)(user, "loud comment", category="comments")
            for tab in (tab1, tab2):
                loud = await tab.next_event()
                assert loud.json()["title"] == "loud comment"
                assert (loud.json()["in_app"], loud.json()["desktop"], loud.json()["unread"]) == (True, False, 1)

            response = await post_preferences(server.base, cookie, {"comments": {"in_app": False, "desktop": True}})
            assert response.status_code == 200, response.text
            for tab in (tab1, tab2):
                event = await tab.next_event()
                assert event.event == "preferences"
                comments = next(p for p in event.json()["preferences"] if p["category"] == "comments")
                assert (comments["in_app"], comments["desktop"]) == (False, True)

            await sync_to_async(send_notification)(user, "quiet comment", category="comments")
            await sync_to_async(send_notification)(user, "other", category="default")
            for tab in (tab1, tab2):
                quiet, other = await tab.events(2, kind="notification")
                # Listed (delivered, in seq order) but not counted: two notifications arrived
                # since the badge showed 1, and it shows 2. (These come through the database
                # poll, whose frames carry the count as read then, so both may say 2.)
                assert (quiet.json()["title"], quiet.json()["in_app"]) == ("quiet comment", False)
                assert (other.json()["title"], other.json()["in_app"], other.json()["unread"]) == ("other", True, 2)
                assert quiet.json()["unread"] in (1, 2)

    # A new connection (another device) starts from the same count.
    async with SSEStream(server.url("/notifications/stream/?cursor=1"), cookie=cookie) as late:
        ready = await late.next_event()
        assert ready.json()["unread"] == 2
        replayed = await late.events(2, kind="notification")
        assert [e.json()["in_app"] for e in replayed] == [False, True]


async def test_required_categories_cannot_be_turned_off_through_the_endpoint(daphne, user):
    server = daphne(overrides={"CATEGORIES": CATEGORIES})
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as tab:
        await tab.next_event()
        response = await post_preferences(server.base, cookie, {"security": {"in_app": False}})
        assert response.status_code == 400
        assert "cannot be changed" in response.text
        # Nothing changed, so the open tab is told nothing.
        assert await tab.silence(0.5, kind="preferences") == []


async def test_an_emails_one_click_unsubscribe_reaches_the_open_tabs(daphne, user):
    """RFC 8058: the mail provider posts without the user's cookie; the user's open tabs
    (a preferences page) hear of the change at once."""
    from sse_notify.unsubscribe import make_token

    server = daphne(overrides={"CATEGORIES": CATEGORIES})
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as tab:
        await tab.next_event()
        async with httpx.AsyncClient(base_url=server.base) as provider:  # no session, no CSRF token
            response = await provider.post(
                f"/notifications/unsubscribe/{make_token(user.pk, ['comments'])}/",
                content="List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        assert response.status_code == 200, response.text
        event = await tab.next_event()
        assert event.event == "preferences"
        comments = next(p for p in event.json()["preferences"] if p["category"] == "comments")
        assert comments["email"] == "off"
