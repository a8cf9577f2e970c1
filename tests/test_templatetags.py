"""The template tags: client config, badge and dropdown, as a page renders them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.test import override_settings

from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification
from sse_notify.templatetags.sse_notify import csrf_header_name, safe_link
from tests.support import render

pytestmark = pytest.mark.django_db


def config_of(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="sse-notify-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, html
    return json.loads(match.group(1))


@pytest.mark.parametrize("tag", ["{% sse_notify %}", "{% sse_notify_badge %}", "{% sse_notify_list %}"])
def test_anonymous_users_get_nothing(tag: str) -> None:
    assert render(tag, AnonymousUser()).strip() == ""


def test_client_config_has_cursor_endpoints_and_settings(user: Any) -> None:
    send_notification(user, "one")
    send_notification(user, "two")
    with override_settings(SSE_NOTIFY={"TOAST_TIMEOUT_MS": 1234, "RETRY_MS": 700}):
        html = render("{% sse_notify %}", user)
    config = config_of(html)
    assert config["cursor"] == Inbox.objects.get(user=user).last_seq == 2
    assert config["unread"] == 2
    assert config["streamUrl"] == "/notifications/stream/"
    assert config["listUrl"] == "/notifications/api/notifications/"
    assert config["unreadUrl"] == "/notifications/api/unread/"
    assert config["markReadUrl"] == "/notifications/api/notifications/{id}/read/"
    assert config["markAllReadUrl"] == "/notifications/api/read-all/"
    assert config["inboxUrl"] == "/notifications/"
    assert (config["csrfCookieName"], config["csrfHeaderName"]) == ("csrftoken", "X-CSRFToken")
    assert config["csrfToken"]
    assert (config["toastTimeout"], config["retryMs"]) == (1234, 700)
    # One script and one stylesheet, both from the app's static files.
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/sse_notify/sse-notify.js"]
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) == ["/static/sse_notify/sse-notify.css"]


def test_cursor_is_zero_for_a_user_who_never_got_anything(user: Any) -> None:
    assert config_of(render("{% sse_notify %}", user))["cursor"] == 0


@override_settings(CSRF_HEADER_NAME="HTTP_X_MY_TOKEN", CSRF_COOKIE_NAME="mytoken")
def test_csrf_names_follow_the_settings(user: Any) -> None:
    config = config_of(render("{% sse_notify %}", user))
    assert config["csrfCookieName"] == "mytoken"
    assert config["csrfHeaderName"].lower() == "x-my-token"
    assert csrf_header_name().lower() == "x-my-token"


def test_static_files_work_with_the_manifest_storage(user: Any, tmp_path: Path) -> None:
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        html = render("{% sse_notify %}", user)
    [script] = re.findall(r'<script src="/static/(sse_notify/sse-notify\.[0-9a-f]{12}\.js)"', html)
    [css] = re.findall(r'<link rel="stylesheet" href="/static/(sse_notify/sse-notify\.[0-9a-f]{12}\.css)"', html)
    assert (tmp_path / script).is_file() and (tmp_path / css).is_file()


def test_badge_is_server_rendered_with_the_unread_count(user: Any, make_user: Any) -> None:
    send_notification(user, "a")
    send_notification(user, "b")
    send_notification(make_user("bob"), "not alice's")
    Notification.objects.filter(title="a").mark_read()
    html = render("{% sse_notify_badge %}", user)
    assert 'href="/notifications/"' in html
    assert re.search(r'data-sse-notify-count data-count="1">1</span>', html)


def test_badge_shows_zero_state(user: Any) -> None:
    assert 'data-count="0">0</span>' in render("{% sse_notify_badge %}", user)


def test_list_shows_latest_newest_first_escaped_and_only_safe_links(user: Any, make_user: Any) -> None:
    for i in range(4):
        send_notification(user, f"note {i}", url=f"/n/{i}/")
    send_notification(user, "<img src=x onerror=alert(1)>")
    # A row made without send_notification's validation (shell, data migration).
    Notification.objects.bulk_create([Notification(recipient=user, title="bad link", url="javascript:alert(1)")])
    send_notification(make_user("bob"), "someone else's")
    html = render("{% sse_notify_list 3 %}", user)
    titles = re.findall(r'class="sse-notify-item__title"[^>]*>([^<]*)<', html)
    assert titles == ["bad link", "&lt;img src=x onerror=alert(1)&gt;", "note 3"]
    assert "javascript:" not in html
    assert "<img" not in html
    assert 'href="/n/3/"' in html
    assert 'data-limit="3"' in html
    # Works without JS: a details element and a POST form (with CSRF) for "mark all read".
    assert "<details" in html and 'name="csrfmiddlewaretoken"' in html and 'name="all"' in html


def test_empty_list_says_so(user: Any) -> None:
    html = render("{% sse_notify_list %}", user)
    assert "all caught up" in html
    assert re.search(r"data-sse-notify-empty>", html)  # visible (no hidden attribute)


def test_templates_are_overridable(user: Any, tmp_path: Path, settings: Any) -> None:
    (tmp_path / "sse_notify").mkdir()
    (tmp_path / "sse_notify" / "badge.html").write_text("<b class=mine>{{ unread }}</b>")
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=templates):
        assert render("{% sse_notify_badge %}", user) == "<b class=mine>0</b>"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/orders/7/", "/orders/7/"),
        ("orders/7/", "orders/7/"),
        ("https://example.com/x?y=1", "https://example.com/x?y=1"),
        ("HTTP://example.com/", "HTTP://example.com/"),
        ("", ""),
        ("javascript:alert(1)", ""),
        (" JavaScript:alert(1)", ""),
        ("java\tscript:alert(1)", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        # The one link policy (sse_notify.links): mailto is accepted at send time, so it is a link.
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("vbscript:msgbox(1)", ""),
        ("//evil.example/", ""),
        ("/\\evil.example/", ""),
        (None, ""),
    ],
)
def test_safe_link(url: Any, expected: str) -> None:
    assert safe_link(url) == expected


def test_a_page_with_all_tags_counts_unread_once(user: Any, django_assert_max_num_queries: Any) -> None:
    send_notification(user, "a")
    with django_assert_max_num_queries(3):  # the cursor, the unread count (once), the latest list
        html = render("{% sse_notify %}{% sse_notify_badge %}{% sse_notify_list %}", user)
    assert html.count('data-count="1"') == 2


def test_client_config_carries_every_js_string_and_the_tab_title_option(user: Any) -> None:
    config = config_of(render("{% sse_notify %}", user))
    assert config["tabTitle"] is False
    assert config["markUnreadUrl"] == "/notifications/api/notifications/{id}/unread/"
    # The JS's English defaults (sse-notify.js DEFAULT_STRINGS) have exactly these keys.
    js = (Path(__file__).resolve().parent.parent / "sse_notify/static/sse_notify/sse-notify.js").read_text()
    defaults = re.search(r"DEFAULT_STRINGS = Object\.freeze\(\{(.*?)\}\);", js, re.S)
    assert defaults
    assert set(config["strings"]) == set(re.findall(r"^\s*(\w+):", defaults.group(1), re.M))
    assert config["strings"]["dismiss"] == "Dismiss notification"
    assert config_of(render("{% sse_notify tab_title=True %}", user))["tabTitle"] is True


def test_badge_caps_at_99_plus_and_an_empty_list_has_no_mark_all(user: Any) -> None:
    empty = render("{% sse_notify_list %}", user)
    assert re.search(r"<form[^>]*data-sse-notify-mark-all hidden", empty)
    Notification.objects.bulk_create([Notification(recipient=user, title=f"n{i}") for i in range(121)])
    html = render("{% sse_notify_badge %}{% sse_notify_list %}", user)
    assert html.count('data-count="121">99+</span>') == 2
    assert not re.search(r"data-sse-notify-mark-all hidden", html)


def test_each_list_item_has_a_no_js_read_unread_form(user: Any) -> None:
    [unread] = send_notification(user, "unread one")
    [read] = send_notification(user, "read one")
    Notification.objects.filter(pk=read.pk).mark_read()
    html = render("{% sse_notify_list %}", user)
    forms = re.findall(
        r'<form method="post" action="/notifications/"[^>]*data-sse-notify-item-action>(.*?)</form>', html
    )
    assert len(forms) == 2
    assert f'name="id" value="{read.pk}"' in forms[0] and 'value="unread"' in forms[0]
    assert f'name="id" value="{unread.pk}"' in forms[1] and 'value="read"' in forms[1]
    assert all('name="csrfmiddlewaretoken"' in f and 'name="next" value="/somewhere/"' in f for f in forms)
