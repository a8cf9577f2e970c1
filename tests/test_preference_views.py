"""The preferences page (no JS) and its JSON endpoint: own data only, CSRF, required fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from sse_notify.models import Preference
from sse_notify.preferences import set_preference, user_preferences

CATEGORIES = {
    "comments": {"label": "Comments", "description": "Replies to you.", "desktop": False, "email": "daily"},
    "security": {"label": "Security", "email": "immediate", "required": True},
}
API = "/notifications/api/preferences/"
PAGE = "/notifications/preferences/"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("categories")]


@pytest.fixture
def categories() -> Any:
    with override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES}):
        yield


@pytest.fixture
def csrf_client(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def token(client: Client) -> str:
    client.get(PAGE)
    return str(client.cookies["csrftoken"].value)


def by_slug(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["category"]: e for e in payload["preferences"]}


def test_anonymous_gets_403_json() -> None:
    client = Client()
    for response in (client.get(API), client.post(API, "{}", content_type="application/json")):
        assert response.status_code == 403
        assert response.json()["error"] == "not_authenticated"
    page = client.get(PAGE)
    assert page.status_code == 302 and "login" in page["Location"]


def test_get_lists_every_category_with_the_users_choices(csrf_client: Client, user: Any) -> None:
    set_preference(user, "comments", email="off")
    payload = csrf_client.get(API).json()
    prefs = by_slug(payload)
    assert list(prefs) == ["comments", "security", "default"]
    assert prefs["comments"] | {"defaults": None} == {
        "category": "comments",
        "label": "Comments",
        "description": "Replies to you.",
        "required": False,
        "in_app": True,
        "desktop": False,
        "email": "off",
        "defaults": None,
    }
    assert prefs["comments"]["defaults"]["email"] == "daily"
    assert [m["value"] for m in payload["email_modes"]] == ["off", "immediate", "hourly", "daily"]


def test_post_needs_the_csrf_token(csrf_client: Client) -> None:
    body = json.dumps({"comments": {"in_app": False}})
    refused = csrf_client.post(API, body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    assert not Preference.objects.exists()
    ok = csrf_client.post(API, body, content_type="application/json", headers={"X-CSRFToken": token(csrf_client)})
    assert ok.status_code == 200
    assert by_slug(ok.json())["comments"]["in_app"] is False
    assert Preference.objects.get().in_app is False


def test_post_changes_only_the_signed_in_users_preferences(csrf_client: Client, user: Any, make_user: Any) -> None:
    bob = make_user("bob")
    body = json.dumps({"comments": {"email": "off"}, "user": bob.pk})
    response = csrf_client.post(API, body, content_type="application/json", headers={"X-CSRFToken": token(csrf_client)})
    # Unknown keys are categories to the endpoint: refused, and nothing changes for anyone.
    assert response.status_code == 400
    assert "Unknown category 'user'" in " ".join(response.json()["errors"]["category"])
    assert not Preference.objects.exists()
    body = json.dumps({"comments": {"email": "off"}})
    csrf_client.post(API, body, content_type="application/json", headers={"X-CSRFToken": token(csrf_client)})
    assert list(Preference.objects.values_list("user_id", flat=True)) == [user.pk]
    assert by_slug({"preferences": user_preferences(bob)})["comments"]["email"] == "daily"


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        ("not json", "invalid_json", "must be JSON"),
        ("[1, 2]", "invalid_json", "JSON object"),
        # json.loads raises RecursionError (not ValueError) on this 10 KB body: was a 500.
        pytest.param('{"default":' + "[" * 5000 + "]" * 5000 + "}", "invalid_json", "must be JSON", id="nested-5000"),
        ('{"security": {"email": "off"}}', "invalid", "required and cannot be changed"),
        ('{"comments": {"email": "weekly"}}', "invalid", "Email must be one of"),
        ('{"comments": {"in_app": false}, "nope": {}}', "invalid", "Unknown category 'nope'"),
    ],
)
def test_bad_posts_are_400_json_and_change_nothing(csrf_client: Client, body: str, error: str, text: str) -> None:
    response = csrf_client.post(API, body, content_type="application/json", headers={"X-CSRFToken": token(csrf_client)})
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == error
    assert text in json.dumps(payload)
    assert not Preference.objects.exists()


def test_the_page_renders_every_category_and_required_ones_disabled(csrf_client: Client) -> None:
    html = csrf_client.get(PAGE).content.decode()
    assert html.count("<fieldset") == 3
    assert 'data-category="security" disabled' in html
    assert "Always sent: these cannot be turned off." in html
    assert 'name="comments-in_app" data-channel="in_app" checked' in html
    assert 'name="comments-desktop" data-channel="desktop">' in html  # the category's default: off
    assert '<option value="daily" selected>' in html
    assert 'href="/notifications/"' in html  # back to the inbox


def test_the_page_saves_without_javascript(csrf_client: Client, user: Any) -> None:
    form = {
        "csrfmiddlewaretoken": token(csrf_client),
        "category": ["comments", "default"],
        # comments-in_app unchecked (absent), desktop checked, email changed
        "comments-desktop": "on",
        "comments-email": "immediate",
        "default-in_app": "on",
        "default-desktop": "on",
        "default-email": "off",
    }
    response = csrf_client.post(PAGE, form)
    assert response.status_code == 302
    assert response["Location"] == PAGE + "?saved=1"
    prefs = by_slug({"preferences": user_preferences(user)})
    assert (prefs["comments"]["in_app"], prefs["comments"]["desktop"], prefs["comments"]["email"]) == (
        False,
        True,
        "immediate",
    )
    assert Preference.objects.count() == 1  # "default" matched its defaults: nothing stored
    assert "Preferences saved." in csrf_client.get(response["Location"]).content.decode()


def test_the_page_without_a_token_is_refused(user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(PAGE, {"category": "comments", "comments-email": "off"}).status_code == 403
    assert not Preference.objects.exists()


def test_the_page_reports_a_bad_value_and_saves_nothing(csrf_client: Client) -> None:
    form = {"csrfmiddlewaretoken": token(csrf_client), "category": ["comments"], "comments-email": "weekly"}
    response = csrf_client.post(PAGE, form)
    assert response.status_code == 400
    assert "Nothing was saved" in response.content.decode()
    assert not Preference.objects.exists()


def test_the_bell_list_and_the_inbox_link_to_the_page(csrf_client: Client, user: Any) -> None:
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    html = Template("{% load sse_notify %}{% sse_notify_list %}").render(Context({"request": request}))
    assert f'href="{PAGE}"' in html
    assert f'href="{PAGE}"' in csrf_client.get("/notifications/").content.decode()
