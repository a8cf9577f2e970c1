"""The inbox page in real Chromium: marking in place, bulk selection, filters, layout.

With JavaScript the page never reloads (a marker set on ``window`` survives,
the scroll position stays, focus stays on the button pressed); without it, the
same buttons are plain forms that work.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.pages import OPEN, Demo, sign_in, unique, unread_in_db, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def row(page: Any, title: str) -> Any:
    return page.locator(".sse-notify-inbox__item", has_text=title)


def is_read(demo: Demo, title: str) -> bool:
    [(read_at,)] = unread_in_db(demo, title)
    return read_at is not None


def test_mark_read_and_unread_update_the_row_in_place(demo: Demo, new_context: Any) -> None:
    titles = [unique(f"Row {i}") for i in range(14)]
    for title in titles:
        demo.send("alice", title, body="Something to read." if len(title) % 2 else "")
    page = sign_in(new_context(), "alice", "/notifications/")
    page.wait_for_function(OPEN)
    page.evaluate("window.__sameDocument = true")
    target = row(page, titles[0])  # the oldest: at the bottom of the page
    button = target.locator(".sse-notify-inbox__action button")
    button.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    unread_before = int(page.locator("[data-sse-notify-unread]").text_content())

    button.click()
    expect(button).to_have_text("Mark unread")
    expect(target).not_to_have_class("is-unread")
    assert wait_until(lambda: is_read(demo, titles[0]))
    expect(page.locator("[data-sse-notify-unread]")).to_have_text(str(unread_before - 1))
    expect(page.locator("[data-sse-notify-count]").first).to_have_text(str(unread_before - 1))  # via the stream
    expect(page.locator("[data-sse-notify-inbox-status]")).to_have_text("Marked as read.")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert page.evaluate("window.scrollY") == scrolled, "the page jumped"
    assert page.evaluate("document.activeElement.textContent") == "Mark unread"

    page.keyboard.press("Enter")  # focus stayed on the button: press it again
    expect(button).to_have_text("Mark read")
    expect(target).to_have_class("sse-notify-inbox__item sse-notify-level-info is-unread")
    assert wait_until(lambda: not is_read(demo, titles[0]))
    assert page.evaluate("window.__sameDocument") is True


def test_without_javascript_the_buttons_are_plain_forms(demo: Demo, new_context: Any) -> None:
    title = unique("No script")
    demo.send("bob", title)
    page = sign_in(new_context(java_script_enabled=False), "bob", "/notifications/?level=info")
    row(page, title).get_by_role("button", name="Mark read").click()
    page.wait_for_url("**/notifications/?level=info")  # back to the same filtered view
    assert is_read(demo, title)
    expect(row(page, title).get_by_role("button", name="Mark unread")).to_be_visible()
    # Bulk without script: tick boxes, press the toolbar button.
    others = [unique("No script bulk") for _ in range(2)]
    for other in others:
        demo.send("bob", other)
    page.reload()
    for other in others:
        row(page, other).locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Mark selected read").click()
    page.wait_for_url("**/notifications/?level=info")
    assert all(is_read(demo, other) for other in others)


def test_bulk_selection_marks_the_chosen_rows(demo: Demo, new_context: Any) -> None:
    titles = [unique("Bulk") for _ in range(3)]
    for title in titles:
        demo.send("carol", title)
    page = sign_in(new_context(), "carol", "/notifications/")
    page.wait_for_function(OPEN)
    page.evaluate("window.__sameDocument = true")
    mark_selected = page.get_by_role("button", name="Mark selected read")
    expect(mark_selected).to_be_disabled()  # nothing selected yet

    select_all = page.get_by_label("Select all")
    select_all.check()
    boxes = page.locator(".sse-notify-inbox__check")
    expect(page.locator("[data-sse-notify-selected]")).to_have_text(f"Selected: {boxes.count()}")
    row(page, titles[0]).locator("input[type=checkbox]").uncheck()
    assert page.evaluate("document.querySelector('[data-sse-notify-select-all]').indeterminate") is True
    expect(page.locator("[data-sse-notify-selected]")).to_have_text(f"Selected: {boxes.count() - 1}")

    mark_selected.click()
    for title in titles[1:]:
        expect(row(page, title)).not_to_have_class("is-unread")
    expect(row(page, titles[0])).to_have_class("sse-notify-inbox__item sse-notify-level-info is-unread")
    assert wait_until(lambda: [is_read(demo, t) for t in titles] == [False, True, True])

    # Shift+click selects a range: from the last box clicked to this one.
    select_all.check()  # from "some" to all, then to none
    select_all.uncheck()
    boxes.nth(2).click()
    boxes.nth(0).click(modifiers=["Shift"])
    assert [boxes.nth(i).is_checked() for i in range(boxes.count())] == [True, True, True]
    boxes.nth(1).click()  # clears one; then shift+click clears the range back to it
    boxes.nth(0).click(modifiers=["Shift"])
    assert [boxes.nth(i).is_checked() for i in range(boxes.count())] == [False, False, True]
    expect(page.locator("[data-sse-notify-selected]")).to_have_text("Selected: 1")
    select_all.uncheck()
    for title in titles[1:]:
        row(page, title).locator("input[type=checkbox]").check()

    page.get_by_role("button", name="Mark selected unread").click()
    for title in titles[1:]:
        expect(row(page, title)).to_have_class("sse-notify-inbox__item sse-notify-level-info is-unread")
    assert wait_until(lambda: [is_read(demo, t) for t in titles] == [False, False, False])
    assert page.evaluate("window.__sameDocument") is True


def test_reading_in_another_tab_updates_the_inbox(demo: Demo, new_context: Any) -> None:
    title = unique("Read elsewhere")
    demo.send("alice", title)
    context = new_context()
    inbox = sign_in(context, "alice", "/notifications/")
    inbox.wait_for_function(OPEN)
    other = context.new_page()
    other.goto("/")
    other.wait_for_function(OPEN)
    pk = int(row(inbox, title).get_attribute("data-id"))
    other.evaluate(f"sseNotify.markRead({pk})")
    expect(row(inbox, title)).not_to_have_class("is-unread")
    expect(row(inbox, title).locator(".sse-notify-inbox__action button")).to_have_text("Mark unread")
    # "Mark all read" from the dropdown of the other tab: every row, and the inbox's own button goes.
    newer = unique("Read all elsewhere")
    demo.send("alice", newer)
    inbox.reload()
    inbox.wait_for_function(OPEN)
    other.evaluate("sseNotify.markAllRead()")
    expect(row(inbox, newer)).not_to_have_class("is-unread")
    expect(inbox.locator("[data-sse-notify-unread]")).to_have_text("0")
    expect(inbox.locator("form.sse-notify-inbox__mark-all")).to_be_hidden()
    demo.send("alice", unique("After reading all"))
    expect(inbox.locator("form.sse-notify-inbox__mark-all")).to_be_visible()
    expect(inbox.locator("[data-sse-notify-unread]")).to_have_text("1")


def test_filters_show_unread_and_one_level(demo: Demo, new_context: Any) -> None:
    warning, info = unique("Filter warning"), unique("Filter info")
    demo.send("bob", warning, level="warning")
    demo.send("bob", info)
    page = sign_in(new_context(), "bob", "/notifications/")
    page.get_by_role("navigation", name="Filter notifications").get_by_role("link", name="Warning").click()
    page.wait_for_url("**/notifications/?level=warning")
    expect(row(page, warning)).to_be_visible()
    expect(row(page, info)).to_have_count(0)
    page.get_by_role("link", name="Unread", exact=True).click()
    page.wait_for_url("**/notifications/?state=unread&level=warning")
    expect(page.get_by_role("link", name="Unread", exact=True)).to_have_attribute("aria-current", "true")
    expect(row(page, warning)).to_be_visible()


@pytest.mark.parametrize("width", [1100, 390])
def test_rows_with_and_without_a_body_have_the_same_shape(demo: Demo, new_context: Any, width: int) -> None:
    with_body, without = unique("Has a body"), unique("Has none")
    demo.send("carol", with_body, body="A body of a few words.", actor="bob")
    demo.send("carol", without, actor="bob")
    page = sign_in(new_context(viewport={"width": width, "height": 800}), "carol", "/notifications/")

    def shape(title: str) -> dict[str, float]:
        return row(page, title).evaluate(
            """(item) => {
              const box = (sel) => item.querySelector(sel).getBoundingClientRect();
              const r = item.getBoundingClientRect();
              const t = box(".sse-notify-inbox__title"), m = box(".sse-notify-inbox__meta");
              const c = box(".sse-notify-inbox__check"), b = box(".sse-notify-inbox__action button");
              // Narrow screens put the button under the text: measure it from there.
              const buttonFrom = window.innerWidth < 480 ? box(".sse-notify-inbox__content").bottom : r.top;
              return {titleLeft: t.left - r.left, titleTop: t.top - r.top, metaLeft: m.left - r.left,
                      metaBelowTitle: m.top >= t.bottom, checkTop: c.top - r.top, buttonTop: b.top - buttonFrom,
                      buttonRight: r.right - b.right};
            }"""
        )

    assert shape(with_body) == shape(without)
    # The client says how long ago, in words, rather than the server's "0 minutes ago".
    expect(row(page, without).locator("time")).to_have_text("just now")
    assert shape(without)["metaBelowTitle"]
