"""Preferences and grouping in Chromium, on the demo under real Daphne (issue 13).

The page works without JavaScript and saves each change at once with it; a change
reaches the other open tabs; in-app off means no toast and no badge increment; a
group shows as one entry and one toast with a count, and reading it reads its items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.pages import Demo, create_users, sign_in_with_password, unique

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

USERS = ["pia", "quinn", "rosa", "sam", "tess", "uma", "vic"]
PAGE = "/notifications/preferences/"


@pytest.fixture(scope="module")
def users(demo: Demo) -> Iterator[list[str]]:
    create_users(demo, USERS)
    yield list(USERS)


def stored(demo: Demo, username: str, category: str) -> list[tuple[Any, ...]]:
    return demo.query(
        "SELECT p.in_app, p.desktop, p.email FROM sse_notify_preference p JOIN auth_user u ON u.id = p.user_id"
        " WHERE u.username = ? AND p.category = ?",
        username,
        category,
    )


def wait_for(check: Any) -> None:
    import time

    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def fieldset(page: Any, category: str) -> Any:
    return page.locator(f"fieldset[data-category={category}]")


def test_the_page_saves_each_change_at_once_and_other_tabs_follow(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = users.pop()
    context = new_context()
    page = sign_in_with_password(context, user, PAGE)
    other = context.new_page()  # a second tab of the same browser
    other.goto(PAGE)
    other.wait_for_function("() => document.querySelector('[data-sse-notify-prefs]').dataset.enhanced === '1'")
    assert page.locator("[data-sse-notify-prefs-actions]").is_hidden()  # nothing left to save by hand

    in_app = fieldset(page, "comments").get_by_label("In the app")
    assert in_app.is_checked()
    in_app.uncheck()
    page.locator("[data-sse-notify-prefs-status]").filter(has_text="Saved.").wait_for()
    wait_for(lambda: stored(demo, user, "comments") == [(0, None, None)])
    # The other tab hears of it through the stream (or its leader) and updates itself.
    other.wait_for_function(
        "() => !document.querySelector('fieldset[data-category=comments] [data-channel=in_app]').checked"
    )
    assert "another tab" in other.locator("[data-sse-notify-prefs-status]").inner_text()

    fieldset(other, "comments").get_by_label("Email").select_option("daily")
    other.locator("[data-sse-notify-prefs-status]").filter(has_text="Saved.").wait_for()
    page.wait_for_function(
        "() => document.querySelector('fieldset[data-category=comments] [data-channel=email]').value === 'daily'"
    )
    wait_for(lambda: stored(demo, user, "comments") == [(0, None, "daily")])

    # Required: shown, disabled, unchangeable.
    assert fieldset(page, "security").get_attribute("disabled") is not None
    for label in ("In the app", "On the desktop", "Email"):
        assert fieldset(page, "security").get_by_label(label).is_disabled()


def test_without_javascript_the_form_saves(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = users.pop()
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"/login/?next={PAGE}")
    page.locator("details.manual summary").click()
    page.locator("details.manual form input[name=username]").fill(user)
    page.locator("details.manual form input[name=password]").fill("demo")
    page.locator("details.manual form").get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{PAGE}")
    fieldset(page, "mentions").get_by_label("On the desktop").uncheck()
    fieldset(page, "mentions").get_by_label("Email").select_option("off")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_url(f"**{PAGE}?saved=1")
    assert "Preferences saved." in page.locator("[role=status]").inner_text()
    assert stored(demo, user, "mentions") == [(None, 0, "off")]
    assert not fieldset(page, "mentions").get_by_label("On the desktop").is_checked()


def test_in_app_off_is_listed_without_a_toast_or_a_badge_increment(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = users.pop()
    context = new_context()
    prefs = sign_in_with_password(context, user, PAGE)
    fieldset(prefs, "comments").get_by_label("In the app").uncheck()
    prefs.locator("[data-sse-notify-prefs-status]").filter(has_text="Saved.").wait_for()
    page = context.new_page()
    page.goto("/")
    page.wait_for_function("() => window.sseNotify && window.sseNotify.connection !== 'connecting'")

    quiet = unique("Quiet comment")
    demo.send(user, quiet, category="comments")
    page.locator(".sse-notify-item", has_text=quiet).wait_for(state="attached")  # listed
    loud = unique("Loud mention")
    demo.send(user, loud, category="mentions")
    page.locator(".sse-notify-toast", has_text=loud).wait_for()
    assert page.locator(".sse-notify-toast", has_text=quiet).count() == 0
    assert page.evaluate("window.sseNotify.unreadCount") == 1
    assert page.locator("[data-sse-notify-count]").first.inner_text() == "1"
    # A reload renders the same count from the server.
    page.reload()
    assert page.locator("[data-sse-notify-count]").first.inner_text() == "1"


def test_a_group_is_one_toast_and_one_entry_and_reading_it_reads_all(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = users.pop()
    context = new_context()
    page = sign_in_with_password(context, user)
    group = f"project-{uuid.uuid4().hex[:6]}"
    titles = [unique(f"Comment {n} on Website relaunch") for n in (1, 2, 3)]
    for title in titles:
        demo.send(user, title, category="comments", group_key=group)
        page.locator(".sse-notify-toast", has_text=title).wait_for()
    toasts = page.locator(".sse-notify-toast", has_text="Website relaunch")
    assert toasts.count() == 1
    assert "3 new" in toasts.inner_text()
    assert page.evaluate("window.sseNotify.unreadCount") == 3

    page.locator("summary.sse-notify-badge").click()
    entries = page.locator(".sse-notify-item", has_text="Website relaunch")
    assert entries.count() == 1
    entry = entries.first
    assert entry.locator("[data-sse-notify-group-count]").inner_text() == "3"
    entry.locator("summary", has_text="Show all").click()
    for title in titles:
        assert entry.locator(".sse-notify-item__group li", has_text=title).is_visible()

    entry.get_by_role("button", name="Mark all read").click()
    page.wait_for_function("() => window.sseNotify.unreadCount === 0")
    wait_for(
        lambda: (
            demo.query("SELECT COUNT(*) FROM sse_notify_notification WHERE group_key = ? AND read_at IS NULL", group)
            == [(0,)]
        )
    )
    toasts.first.wait_for(state="detached")  # the group's toast went with it

    # After a reload the server renders the same single entry, now read.
    page.reload()
    page.locator("summary.sse-notify-badge").click()
    entries = page.locator(".sse-notify-item", has_text="Website relaunch")
    assert entries.count() == 1
    assert "is-unread" not in (entries.first.get_attribute("class") or "")
