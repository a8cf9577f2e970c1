"""Findings of an outside test (attackA): a phone without JavaScript, a very long body, groups in the bell list.

Each test saw the fault on the code before its fix (see /work/notes/fixer.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.pages import Demo, create_users, sign_in_with_password, unique, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE = {"width": 390, "height": 844}
USERS = ["sam", "tia", "uma", "vic"]


@pytest.fixture(scope="module")
def users(demo: Demo) -> Iterator[list[str]]:
    create_users(demo, USERS)
    yield list(USERS)


def sign_in_without_js(new_context: Any, user: str, path: str = "/") -> Any:
    page = new_context(java_script_enabled=False, viewport=PHONE).new_page()
    page.goto(f"/login/?next={path}")
    page.locator("details.manual summary").click()
    page.locator("details.manual input[name=username]").fill(user)
    page.locator("details.manual input[name=password]").fill("demo")
    page.locator("details.manual").get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")
    return page


def covered(page: Any, locator: Any) -> bool:
    """Whether something else is drawn over the middle of ``locator``."""
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return not page.evaluate(
        "([el, x, y]) => el.contains(document.elementFromPoint(x, y))", [locator.element_handle(), x, y]
    )


def test_without_js_on_a_phone_the_open_panel_leaves_the_bell_to_close_it(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = users.pop()
    for i in range(6):
        demo.send(user, unique(f"Phone item {i}"))
    page = sign_in_without_js(new_context, user)
    bell = page.locator("summary.sse-notify-badge")
    panel = page.locator(".sse-notify-menu__panel")
    bell.click()
    expect(panel).to_be_visible()
    # The panel starts below the bell (it covered it: top at 56 px, bell at 102-142 px) and spans the screen.
    assert panel.bounding_box()["y"] >= bell.bounding_box()["y"] + bell.bounding_box()["height"] - 1
    assert not covered(page, bell)
    box = panel.bounding_box()
    assert box["x"] >= -0.5 and box["x"] + box["width"] <= PHONE["width"] + 0.5
    # Tapping the bell again closes it (it timed out: "element intercepts pointer events").
    bell.click(timeout=3000)
    expect(panel).to_be_hidden()


def test_the_inbox_clamps_a_long_body_and_shows_it_all_on_request(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = users.pop()
    title = unique("Long body")
    demo.send(user, title, body="é" * 10_000)
    page = sign_in_without_js(new_context, user, "/notifications/")
    row = page.locator(".sse-notify-inbox__item", has_text=title)
    body = row.locator(".sse-notify-inbox__body")
    # Four lines, not several screens (it was the whole 10,000 characters).
    assert body.bounding_box()["height"] < 120
    assert row.bounding_box()["height"] < PHONE["height"] / 2
    row.get_by_text("Show more").click()
    expect(row.get_by_text("Show less")).to_be_visible()
    assert body.bounding_box()["height"] > PHONE["height"]
    row.get_by_text("Show less").click()
    expect(row.get_by_text("Show more")).to_be_visible()
    assert body.bounding_box()["height"] < 120


def test_a_rendered_groups_mark_all_read_reads_every_member_and_its_count_is_a_pill(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    """attackA F9/F11: the server-rendered entry (page loaded after the sends)."""
    user = users.pop()
    group = f"issue-{uuid.uuid4().hex[:6]}"
    for n in range(4):
        demo.send(user, unique(f"Grouped comment {n}"), group_key=group)
    page = sign_in_with_password(new_context(), user)
    page.locator("summary.sse-notify-badge").click()
    entry = page.locator(".sse-notify-item", has_text="Grouped comment 3")
    count = entry.locator("[data-sse-notify-group-count]")
    expect(count).to_contain_text("4")
    # A small pill next to the title, not a bar across the item.
    assert count.bounding_box()["width"] < entry.bounding_box()["width"] / 4
    entry.get_by_role("button", name="Mark all read").click()
    page.wait_for_function("() => window.sseNotify.unreadCount === 0")
    assert wait_until(
        lambda: (
            demo.query("SELECT COUNT(*) FROM sse_notify_notification WHERE group_key = ? AND read_at IS NULL", group)
            == [(0,)]
        )
    )


def test_a_live_notification_joins_its_rendered_group_in_the_open_list(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    """attackA F10: the page was loaded after three sends; the fourth arrives live."""
    user = users.pop()
    group = f"issue-{uuid.uuid4().hex[:6]}"
    titles = [unique(f"Joined comment {n}") for n in range(4)]
    for title in titles[:3]:
        demo.send(user, title, group_key=group)
    page = sign_in_with_password(new_context(), user)
    page.locator("summary.sse-notify-badge").click()
    demo.send(user, titles[3], group_key=group)
    page.locator(".sse-notify-item", has_text=titles[3]).wait_for()
    entries = page.locator(".sse-notify-item", has_text="Joined comment")
    expect(entries).to_have_count(1)
    expect(entries.first.locator("[data-sse-notify-group-count]")).to_contain_text("4")
    entries.first.locator("summary", has_text="Show all").click()
    members = entries.first.locator(".sse-notify-item__group li")
    for title in titles:
        expect(members.filter(has_text=title)).to_have_count(1)
