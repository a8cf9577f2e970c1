"""The one link policy (sse_notify.links): accepted at send, rendered by the tags, sent as ``href``."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse

from sse_notify import links
from sse_notify.api import send_notification
from sse_notify.models import Notification
from tests.support import render

pytestmark = pytest.mark.django_db

ACCEPTED = ["/orders/7/", "orders/7/?tab=1#x", "https://example.com/a", "HTTP://EXAMPLE.COM", "mailto:a@example.com"]
REFUSED = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "java\tscript:alert(1)",
    "//evil.example/",
    "/\\evil.example/",
    "ftp://example.com/file",
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_what_send_accepts_is_what_pages_link_to(user: Any, url: str) -> None:
    [n] = send_notification(user, "linked", url=url)
    assert links.check_url(url) is None
    assert links.href(n.url) == url
    assert n.common_fields()["href"] == url  # what the stream sends
    html = render("{% sse_notify_list %}", user)
    assert f'href="{url.replace("&", "&amp;")}"' in html


@pytest.mark.parametrize("url", REFUSED)
def test_what_send_refuses_is_never_a_link_even_if_stored(user: Any, url: str) -> None:
    with pytest.raises(ValidationError) as info:
        send_notification(user, "bad", url=url)
    assert "url" in info.value.message_dict
    # Written another way (a shell, a migration): still no link anywhere.
    Notification.objects.bulk_create([Notification(recipient=user, title="stored", url=url)])
    n = Notification.objects.get(title="stored")
    assert links.href(n.url) is None
    assert n.to_dict()["href"] is None
    html = render("{% sse_notify_list %}", user)
    assert '<a class="sse-notify-item__title"' not in html


def test_narrowing_url_schemes_unlinks_rows_already_stored(user: Any) -> None:
    [n] = send_notification(user, "mail me", url="mailto:a@example.com")
    with override_settings(SSE_NOTIFY={"URL_SCHEMES": ["https"]}):
        assert n.common_fields()["href"] is None
    assert n.common_fields()["href"] == "mailto:a@example.com"


@pytest.mark.parametrize("value", [None, 7, "", "   ", " /x/ "])
def test_href_of_odd_values(value: Any) -> None:
    assert links.href(value) == ("/x/" if value == " /x/ " else None)


def test_the_list_endpoint_sends_href(client: Client, user: Any) -> None:
    send_notification(user, "mail", url="mailto:a@example.com")
    Notification.objects.bulk_create([Notification(recipient=user, title="evil", url="javascript:x")])
    client.force_login(user)
    results = client.get(reverse("sse_notify:list")).json()["results"]
    assert {r["title"]: r["href"] for r in results} == {"mail": "mailto:a@example.com", "evil": None}
