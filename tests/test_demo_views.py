"""The demo's send form, which people copy: only staff reach everyone or link off-site."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, modify_settings, override_settings

from sse_notify.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_urls")]

JSON = {"Accept": "application/json"}


@pytest.fixture
def demo_urls() -> Any:
    with (
        override_settings(ROOT_URLCONF="demo_project.urls"),
        modify_settings(INSTALLED_APPS={"append": "demo_project.demo"}),  # its templates
    ):
        yield


def post(client: Client, **fields: str) -> Any:
    return client.post("/send/", {"title": "Hi", "level": "info", **fields}, headers=JSON)


def test_a_user_cannot_notify_everyone(client: Client, make_user: Any) -> None:
    alice, _bob = make_user("alice"), make_user("bob")
    client.force_login(alice)
    response = post(client, to="everyone")
    assert response.status_code == 403
    assert response.json()["detail"] == {"__all__": ["Only staff can send to everyone."]}
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/login", "//evil.example/", "mailto:someone@example.com", "/\\evil.example", "http:/x"],
)
def test_a_user_cannot_link_outside_the_site(client: Client, make_user: Any, url: str) -> None:
    client.force_login(make_user("alice"))
    response = post(client, url=url)
    assert response.status_code == 403
    assert "Only staff can link outside this site" in response.json()["detail"]["__all__"][0]
    assert not Notification.objects.exists()


def test_a_user_can_send_themselves_a_site_link(client: Client, make_user: Any) -> None:
    alice = make_user("alice")
    make_user("bob")
    client.force_login(alice)
    assert post(client, url="/projects/").json() == {"sent": 1}
    assert list(Notification.objects.values_list("recipient__username", "url")) == [("alice", "/projects/")]


def test_the_form_without_js_says_why_and_sends_nothing(client: Client, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    response = client.post("/send/", {"title": "Hi", "to": "everyone"}, follow=True)
    assert "Only staff can send to everyone." in [str(m) for m in response.context["messages"]]
    assert not Notification.objects.exists()
    assert 'value="everyone"' not in response.text  # the form does not offer it


def test_staff_see_the_everyone_choice(client: Client, make_user: Any) -> None:
    client.force_login(make_user("boss", is_staff=True))
    assert 'value="everyone"' in client.get("/").text


def test_staff_can_notify_everyone_with_any_link(client: Client, make_user: Any) -> None:
    boss = make_user("boss", is_staff=True)
    make_user("alice")
    client.force_login(boss)
    assert post(client, to="everyone", url="https://example.com/status").json() == {"sent": 2}
    assert set(Notification.objects.values_list("url", flat=True)) == {"https://example.com/status"}
