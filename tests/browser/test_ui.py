"""The bell, its list and the toasts in real Chromium, as a user meets them (issue 12).

Geometry is asserted as bounding boxes against the viewport; keyboard behaviour
with real key presses; state changes against the database. Each test signs in a
user of its own (created once for the module), so counts start from a known state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.pages import OPEN, Demo, create_users, sign_in_with_password, unique

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

USERS = ["dana", "erin", "femi", "gus", "hana", "ivo", "jun", "kim", "lea", "max"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 680}


@pytest.fixture(scope="module")
def users(demo: Demo) -> Iterator[list[str]]:
    """Users with no notifications yet, one per test that needs known counts."""
    create_users(demo, USERS)
    free = list(USERS)
    yield free


def take(users: list[str]) -> str:
    return users.pop(0)


def bell(page: Any) -> Any:
    return page.locator("summary.sse-notify-badge")


def panel(page: Any) -> Any:
    return page.locator(".sse-notify-menu__panel")


def inside_viewport(page: Any, locator: Any) -> None:
    box = locator.bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (box, width)


def put_bell(page: Any, where: str) -> None:
    """Move the dropdown to the top-left or top-right corner of the page (a site's own layout)."""
    side = "left" if where == "left" else "right"
    page.add_style_tag(content=f"details[data-sse-notify-menu] {{ position: fixed; top: 0; {side}: 0; z-index: 5; }}")


def read_at(demo: Demo, title: str) -> Any:
    [(value,)] = demo.query("SELECT read_at FROM sse_notify_notification WHERE title = ?", title)
    return value


def wait_for_db(check: Any) -> None:
    import time

    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "the database never changed"
        time.sleep(0.05)


# ---------------------------------------------------------------------- the dropdown


@pytest.mark.parametrize(
    ("viewport", "where"),
    [(DESKTOP, "layout"), (DESKTOP, "left"), (DESKTOP, "right"), (PHONE, "layout"), (PHONE, "left"), (PHONE, "right")],
)
def test_the_open_list_stays_inside_the_viewport_wherever_the_bell_is(
    demo: Demo, new_context: Any, users: list[str], viewport: dict[str, int], where: str
) -> None:
    user = "carol"
    page = sign_in_with_password(new_context(viewport=viewport), user)
    demo.send(user, "A title long enough to need the whole width of the list " + uuid.uuid4().hex, url="/projects/")
    expect(page.locator("[data-sse-notify-list] .sse-notify-item").first).to_be_attached(timeout=3000)
    if where != "layout":
        put_bell(page, where)
    bell(page).click()
    expect(panel(page)).to_be_visible()
    inside_viewport(page, panel(page))
    # What was out of reach before: the titles and "See all".
    inside_viewport(page, page.locator("[data-sse-notify-list] .sse-notify-item__title").first)
    inside_viewport(page, page.get_by_role("link", name="See all notifications"))
    box = panel(page).bounding_box()
    if viewport is PHONE:
        # A full-width sheet below the bell.
        assert (box["x"], box["width"]) == (0, PHONE["width"])
        assert box["y"] >= bell(page).bounding_box()["y"] + bell(page).bounding_box()["height"]
        assert box["y"] + box["height"] <= PHONE["height"] + 0.5
        # Toasts do not cover the sheet while it is open, and come back after.
        expect(page.locator(".sse-notify-toast").first).to_be_hidden()
        page.keyboard.press("Escape")
        expect(page.locator(".sse-notify-toast").first).to_be_visible()
    else:
        assert box["width"] > 300  # not squeezed into a sliver


def test_tabbing_out_of_the_open_list_closes_it_and_escape_returns_to_the_bell(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    page = sign_in_with_password(new_context(), "carol")
    bell(page).focus()
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    # Tab through everything in the list, then one more: focus has left it, so it closes.
    for _ in range(40):
        page.keyboard.press("Tab")
        if not page.evaluate(
            "document.querySelector('details[data-sse-notify-menu]').contains(document.activeElement)"
        ):
            break
    expect(panel(page)).to_be_hidden()
    # Shift+Tab from the bell backwards out of the menu closes it too.
    bell(page).focus()
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    page.keyboard.press("Shift+Tab")
    expect(panel(page)).to_be_hidden()
    # Escape closes it and puts focus back on the bell.
    bell(page).click()
    expect(panel(page)).to_be_visible()
    page.get_by_role("link", name="See all notifications").focus()
    page.keyboard.press("Escape")
    expect(panel(page)).to_be_hidden()
    expect(bell(page)).to_be_focused()


def test_mark_all_read_shows_only_when_there_is_something_to_mark(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = take(users)
    page = sign_in_with_password(new_context(), user)
    bell(page).click()
    expect(page.get_by_text("You're all caught up.")).to_be_visible()
    mark_all = page.get_by_role("button", name="Mark all read")
    expect(mark_all).to_be_hidden()
    demo.send(user, unique("Something to read"))
    expect(mark_all).to_be_visible(timeout=3000)
    mark_all.click()
    expect(page.locator("[data-sse-notify-count]")).to_have_text("0")
    expect(mark_all).to_be_hidden()


def test_the_badge_caps_at_99_plus(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    for i in range(120):
        demo.send(user, f"bulk {i}", raw=True)
    no_js = new_context(java_script_enabled=False).new_page()
    no_js.goto("/login/?next=/")
    no_js.locator("details.manual summary").click()
    no_js.locator("details.manual input[name=username]").fill(user)
    no_js.locator("details.manual input[name=password]").fill("demo")
    no_js.locator("details.manual").get_by_role("button", name="Sign in").click()
    expect(no_js.locator("[data-sse-notify-count]")).to_have_text("99+")  # server-rendered
    page = sign_in_with_password(new_context(), user)
    count = page.locator("[data-sse-notify-count]")
    expect(count).to_have_text("99+")
    assert count.get_attribute("data-count") == "120"
    assert page.evaluate("sseNotify.unreadCount") == 120
    # Still fits over the bell: the badge is no wider than the bell.
    assert count.bounding_box()["width"] <= bell(page).bounding_box()["width"]
    # ...and sits in its corner: the icon's middle and its upper half are the icon, not the pill
    # (the pill once covered the upper half, leaving only the clapper).
    for where in (no_js, page):
        icon = where.locator("summary.sse-notify-badge svg").bounding_box()
        for fx, fy in ((0.5, 0.5), (0.5, 0.3), (0.3, 0.3), (0.5, 0.8)):
            x, y = icon["x"] + icon["width"] * fx, icon["y"] + icon["height"] * fy
            hit = where.evaluate(
                "([x, y]) => !!document.elementFromPoint(x, y).closest('[data-sse-notify-count]')", [x, y]
            )
            assert not hit, (fx, fy)
    demo.send(user, unique("One more"))
    expect(count).to_have_attribute("data-count", "121", timeout=3000)
    expect(count).to_have_text("99+")
    page.evaluate("sseNotify.markAllRead()")
    expect(count).to_have_text("0")


def test_relative_times_stay_fresh(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    context = new_context()
    sign_in_with_password(context, user).close()
    page = context.new_page()
    page.clock.install()  # the page's timers and Date run on a clock the test moves
    page.goto("/")
    page.wait_for_function(OPEN)
    title = unique("Fresh")
    demo.send(user, title)
    time = page.locator(".sse-notify-item", has_text=title).locator("time")
    expect(time).to_have_text("just now", timeout=3000)
    page.clock.fast_forward("01:05")
    expect(time).to_have_text("1 minute ago")
    page.clock.fast_forward("05:00")
    expect(time).to_have_text("6 minutes ago")


def test_items_are_marked_read_and_unread_in_place(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    context = new_context()
    page = sign_in_with_password(context, user)
    other_tab = context.new_page()
    other_tab.goto("/projects/")
    other_tab.wait_for_function(OPEN)
    title = unique("Toggle me")
    demo.send(user, title)
    count = page.locator("[data-sse-notify-count]")
    expect(count).to_have_text("1", timeout=3000)
    page.evaluate("window.__stayed = true")  # gone if the page reloads
    bell(page).click()
    item = page.locator("[data-sse-notify-list] .sse-notify-item", has_text=title)
    expect(item).to_have_class(re.compile(r"\bis-unread\b"))

    item.get_by_role("button", name="Mark read").click()
    expect(item).not_to_have_class(re.compile(r"\bis-unread\b"))
    expect(count).to_have_text("0")
    wait_for_db(lambda: read_at(demo, title) is not None)
    expect(other_tab.locator(".sse-notify-item", has_text=title)).not_to_have_class(re.compile(r"\bis-unread\b"))
    expect(other_tab.locator("[data-sse-notify-count]")).to_have_text("0")

    toggle = item.get_by_role("button", name="Mark unread")
    toggle.click()
    expect(item).to_have_class(re.compile(r"\bis-unread\b"))
    expect(count).to_have_text("1")
    wait_for_db(lambda: read_at(demo, title) is None)
    expect(other_tab.locator("[data-sse-notify-count]")).to_have_text("1")
    expect(panel(page)).to_be_visible()  # the list stayed open
    expect(item.get_by_role("button", name="Mark read")).to_be_focused()  # focus stayed on the button
    assert page.evaluate("window.__stayed") is True


# ---------------------------------------------------------------------- toasts


def test_keyboard_reaches_toasts_with_alt_t_escape_dismisses_and_focus_returns(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = take(users)
    page = sign_in_with_password(new_context(), user)
    region = page.get_by_role("region", name="Notifications (Alt+T)")
    expect(region).to_have_attribute("aria-keyshortcuts", "Alt+T")
    first, second = unique("First"), unique("Second")
    demo.send(user, first)
    demo.send(user, second)
    expect(page.locator(".sse-notify-toast")).to_have_count(2, timeout=3000)

    field = page.locator("#send-form input[name=title]")
    field.focus()
    page.keyboard.press("Alt+T")
    newest = page.locator(".sse-notify-toast", has_text=second).locator(".sse-notify-toast__main")
    expect(newest).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".sse-notify-toast", has_text=second)).to_have_count(0)
    expect(field).to_be_focused()  # back where it was
    assert read_at(demo, second) is None  # dismissing is not reading

    # Closing with x by mouse: focus goes back to where it was, not to <body>.
    field.focus()
    page.locator(".sse-notify-toast", has_text=first).get_by_role("button", name="Dismiss notification").click()
    expect(page.locator(".sse-notify-toast", has_text=first)).to_have_count(0)
    expect(field).to_be_focused()


def test_errors_and_warnings_stay_until_dismissed(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    context = new_context()
    sign_in_with_password(context, user).close()
    page = context.new_page()

    def short_toasts(route: Any) -> None:  # the page as rendered with TOAST_TIMEOUT_MS = 1000
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace('"toastTimeout": 30000', '"toastTimeout": 1000'))

    page.route("**/projects/", short_toasts)
    page.goto("/projects/")
    page.wait_for_function(OPEN)
    error, warning, info = unique("Payment failed"), unique("Disk almost full"), unique("FYI")
    demo.send(user, error, level="error")
    demo.send(user, warning, level="warning")
    demo.send(user, info, level="info")
    expect(page.locator(".sse-notify-toast", has_text=info)).to_be_visible(timeout=3000)
    # The info toast, shown last, hides by itself; the two shown before it are still there.
    expect(page.locator(".sse-notify-toast", has_text=info)).to_have_count(0)
    expect(page.locator(".sse-notify-toast", has_text=error)).to_be_visible()
    expect(page.locator(".sse-notify-toast", has_text=warning)).to_be_visible()
    assert page.locator(".sse-notify-toast", has_text=error).locator(".sse-notify-toast__progress").count() == 0


def test_five_quick_sends_none_dropped_newest_nearest_the_corner(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    user = take(users)
    page = sign_in_with_password(new_context(), user)
    titles = [unique(f"Quick {i}") for i in range(5)]
    for title in titles:
        demo.send(user, title)
    expect(page.locator("[data-sse-notify-count]")).to_have_text("5", timeout=3000)
    toasts = page.locator(".sse-notify-toast")
    expect(toasts).to_have_count(3)
    more = page.get_by_role("button", name="2 more notifications: open the list")
    expect(more).to_have_text("+2 more")
    # The three newest are shown, the newest lowest (nearest the bottom-right corner).
    shown = [toasts.nth(i).locator(".sse-notify-toast__title").text_content() for i in range(3)]
    assert shown == titles[:1:-1]
    ys = [toasts.nth(i).bounding_box()["y"] for i in range(3)]
    assert ys[0] > ys[1] > ys[2]
    assert more.bounding_box()["y"] < ys[2]  # "+2 more" furthest from the corner
    # "+2 more" opens the list, where all five are.
    more.click()
    expect(panel(page)).to_be_visible()
    items = page.locator("[data-sse-notify-list] .sse-notify-item__title")
    assert sorted(items.all_text_contents()) == sorted(titles)
    expect(more).to_have_count(0)


def test_long_titles_are_clamped(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    page = sign_in_with_password(new_context(), user)
    title = ("A very long title that goes on " * 6 + uuid.uuid4().hex)[:186]
    demo.send(user, title, body="Short body.")
    toast = page.locator(".sse-notify-toast", has_text="Short body.")
    expect(toast).to_be_visible(timeout=3000)
    heading = toast.locator(".sse-notify-toast__title")
    expect(heading).to_have_text(title)  # all of it for assistive technology
    lines = page.evaluate(
        "el => el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)",
        heading.element_handle(),
    )
    assert 1.5 < lines <= 2.05, lines
    assert heading.evaluate("el => el.scrollHeight > el.clientHeight")
    assert toast.bounding_box()["height"] < 180  # was 262 px before the clamp
    assert heading.get_attribute("title") == title


def test_unread_count_in_the_tab_title_when_asked_for(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    context = new_context()
    sign_in_with_password(context, user).close()
    page = context.new_page()

    def with_tab_title(route: Any) -> None:  # the page as rendered by {% sse_notify tab_title=True %}
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace('"tabTitle": false', '"tabTitle": true'))

    page.route("**/projects/", with_tab_title)
    page.goto("/projects/")
    page.wait_for_function(OPEN)
    base = page.title()
    assert not base.startswith("(")
    for n in (1, 2, 3):
        demo.send(user, unique(f"Title {n}"))
    expect(page).to_have_title(f"(3) {base}", timeout=3000)
    page.evaluate("sseNotify.markAllRead()")
    expect(page).to_have_title(base)
    # Off by default.
    other = context.new_page()
    other.goto("/")
    other.wait_for_function(OPEN)
    demo.send(user, unique("Not in the title"))
    expect(other.locator("[data-sse-notify-count]")).to_have_text("1", timeout=3000)
    assert not other.title().startswith("(")


# ---------------------------------------------------------------------- links and the stream's answers


def test_mailto_links_are_shown_and_javascript_links_never(demo: Demo, new_context: Any, users: list[str]) -> None:
    user = take(users)
    page = sign_in_with_password(new_context(), user)
    mail, evil = unique("Write to support"), unique("Evil")
    demo.send(user, mail, url="mailto:support@example.com")
    demo.send(user, evil, url="javascript:window.__pwned=1", raw=True)
    expect(page.locator(".sse-notify-toast", has_text=mail).locator(".sse-notify-toast__meta")).to_have_text(
        "Open", timeout=3000
    )
    expect(page.locator(".sse-notify-toast", has_text=evil).locator(".sse-notify-toast__meta")).to_have_text(
        "Mark read"
    )
    items = page.locator("[data-sse-notify-list]")
    bell(page).click()
    expect(items.get_by_role("link", name=mail)).to_have_attribute("href", "mailto:support@example.com")
    assert items.locator(".sse-notify-item", has_text=evil).locator("a").count() == 0
    # The server-rendered list after a reload says the same.
    page.reload()
    page.wait_for_function(OPEN)
    bell(page).click()
    expect(items.get_by_role("link", name=mail)).to_have_attribute("href", "mailto:support@example.com")
    assert items.locator(".sse-notify-item", has_text=evil).locator("a").count() == 0


def test_a_stream_answer_that_is_not_an_event_stream_stops_the_client(
    demo: Demo, new_context: Any, users: list[str]
) -> None:
    """As with LoginRequiredMiddleware: a 200 HTML login page is not a stream; no reconnect loop."""
    context = new_context()
    page = sign_in_with_password(context, "carol", "/projects/")
    asked: list[str] = []
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)

    def login_page(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body="<form>Sign in</form>\n\n")

    page.route("**/notifications/stream/**", login_page)
    page.reload()
    page.wait_for_function("() => sseNotify.connection === 'stopped'")
    assert len(asked) == 1
    assert any("text/event-stream" in w for w in warnings), warnings
    page.wait_for_timeout(1000)  # several backoff periods (RETRY_MS is 300 here)
    assert len(asked) == 1
