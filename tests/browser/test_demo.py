"""The demo in real Chromium: what a signed-in user sees, across tabs and restarts.

Each test signs a demo user in through the sign-in page of a fresh browser
profile and talks to the demo served by a real Daphne (see conftest.py).
Notifications come from other processes (``manage.py sse_notify_send``), which
reach Daphne through the database poll, as with any cron job or worker.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.pages import OPEN, Demo, sign_in, unique, unread_in_db, wait_until
from tests.support import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Records every notification event the page sees, to check each shows once.
RECORD_EVENTS = """
window.__seen = [];
document.addEventListener("sse-notify:notification", (e) => window.__seen.push(e.detail.seq));
"""


def open_tab(context: Any, path: str = "/") -> Any:
    page = context.new_page()
    page.goto(path)
    page.wait_for_function(OPEN)
    return page


def badge(page: Any) -> Any:
    return page.locator("[data-sse-notify-count]").first


def streams_of(page: Any, demo: Demo) -> int:
    """Open streams the server holds for this page's user (the demo's DEBUG-only view)."""
    user = page.evaluate("window.sseNotify.config.user")
    counts = page.request.get(f"{demo.base}/_demo/streams/").json()
    return int(counts["users"].get(user, 0))


# 1 ----------------------------------------------------------------------------------


def test_badge_is_server_rendered_and_a_notification_from_another_process_toasts(demo: Demo, new_context: Any) -> None:
    demo.send_command("alice", unique("waiting for you"))
    # Without JavaScript, the badge already has the right count.
    no_js = sign_in(new_context(java_script_enabled=False), "alice")
    rendered = int(badge(no_js).text_content())
    assert rendered >= 1

    context = new_context()
    page = sign_in(context, "alice")
    page.wait_for_function(OPEN)
    expect(badge(page)).to_have_text(str(rendered))
    title = unique("Build finished")
    demo.send_command("alice", title, "--body", "All 312 tests passed.", "--level", "success")
    toast = page.locator(".sse-notify-toast", has_text=title)
    expect(toast).to_be_visible(timeout=2000)
    expect(toast).to_contain_text("All 312 tests passed.")
    expect(toast).to_have_class("sse-notify-toast sse-notify-level-success")
    expect(badge(page)).to_have_text(str(rendered + 1))
    # Accessible: the stack is a polite live region.
    stack = page.locator(".sse-notify-toasts")
    assert (stack.get_attribute("role"), stack.get_attribute("aria-live")) == ("status", "polite")
    # The dropdown list got it too, newest first; the toggle's accessible name carries the count.
    toggle = page.locator("summary.sse-notify-badge")
    expect(toggle).to_have_accessible_name(f"Notifications: {rendered + 1} unread")
    toggle.click()
    expect(page.locator("[data-sse-notify-list] .sse-notify-item").first).to_contain_text(title)
    page.keyboard.press("Escape")
    expect(page.locator("[data-sse-notify-list]")).to_be_hidden()


def test_sending_from_the_admin_in_another_browser_toasts_live(demo: Demo, new_context: Any) -> None:
    """The README's walk-through: admin sends from the admin's page, alice sees it arrive."""
    alice = sign_in(new_context(), "alice", "/projects/")
    alice.wait_for_function(OPEN)
    admin = sign_in(new_context(), "admin")
    admin.get_by_role("link", name="Admin", exact=True).click()
    admin.get_by_role("link", name="Send notification").click()
    title = unique("Welcome from the admin")
    admin.fill("input[name=title]", title)
    admin.check("input[name=everyone]")
    admin.click("input[name=_send]")
    expect(admin.locator(".messagelist")).to_contain_text("sent to")
    expect(alice.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)
    expect(alice.locator(".sse-notify-toast", has_text=title)).to_contain_text("from admin")


def test_the_home_pages_send_form_toasts_without_reloading(demo: Demo, new_context: Any) -> None:
    page = sign_in(new_context(), "bob")
    page.wait_for_function(OPEN)
    title = unique("Sent from the form")
    page.fill("#send-form input[name=title]", title)
    page.select_option("#send-form select[name=level]", "warning")
    page.click("#send-form button[type=submit]")
    toast = page.locator(".sse-notify-toast", has_text=title)
    expect(toast).to_be_visible(timeout=2000)
    expect(toast).to_have_class("sse-notify-toast sse-notify-level-warning")
    expect(toast).to_contain_text("from bob")
    expect(page.locator("#event-log")).to_contain_text(title)  # the page's own listener of sse-notify:notification


# 2 ----------------------------------------------------------------------------------


def test_clicking_a_toast_marks_it_read_in_the_database_and_in_every_tab(demo: Demo, new_context: Any) -> None:
    context = new_context()
    first = sign_in(context, "bob")
    first.wait_for_function(OPEN)
    second = open_tab(context, "/projects/")
    before = int(badge(first).text_content())
    title = unique("Review requested")
    demo.send("bob", title)
    for page in (first, second):
        expect(page.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)
        expect(badge(page)).to_have_text(str(before + 1))

    second.locator(".sse-notify-toast", has_text=title).locator(".sse-notify-toast__main").click()

    assert wait_until(lambda: unread_in_db(demo, title)[0][0] is not None), "not marked read in the database"
    for page in (first, second):
        expect(badge(page)).to_have_text(str(before))
        # Read elsewhere: the other tab's toast goes away too.
        expect(page.locator(".sse-notify-toast", has_text=title)).to_have_count(0)
    assert second.url.endswith("/projects/")  # no link: clicking did not navigate

    # "Mark all read" in the dropdown: no page load, every tab's badge goes to zero.
    demo.send("bob", unique("One more"))
    expect(badge(first)).to_have_text(str(before + 1))
    first.locator("summary.sse-notify-badge").click()
    first.get_by_role("button", name="Mark all read").click()
    for page in (first, second):
        expect(badge(page)).to_have_text("0")
    assert first.url.endswith("/")
    unread = demo.query(
        "SELECT count(*) FROM sse_notify_notification n JOIN auth_user u ON u.id = n.recipient_id "
        "WHERE u.username = 'bob' AND n.read_at IS NULL"
    )
    assert unread == [(0,)]


# 3 ----------------------------------------------------------------------------------


def test_two_tabs_share_one_stream_and_the_other_tab_takes_over(demo: Demo, new_context: Any) -> None:
    context = new_context()
    leader = sign_in(context, "carol")
    leader.wait_for_function(OPEN)
    follower = open_tab(context, "/projects/")
    assert leader.evaluate("sseNotify.isLeader") is True
    assert follower.evaluate("sseNotify.isLeader") is False
    assert streams_of(follower, demo) == 1

    # Events reach the follower through the leader.
    title = unique("Shared")
    demo.send("carol", title)
    expect(follower.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)

    leader.close()
    follower.wait_for_function("() => sseNotify.isLeader && sseNotify.connection === 'open'")
    assert wait_until(lambda: streams_of(follower, demo) == 1), "the closed tab's stream did not go away"
    title = unique("After hand-over")
    demo.send("carol", title)
    expect(follower.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)
    # The new leader resumed from the last seq it had seen: nothing shown twice.
    seqs = follower.evaluate(
        "[...document.querySelectorAll('[data-sse-notify-list] .sse-notify-item')].map(i => i.dataset.seq)"
    )
    assert len(seqs) == len(set(seqs))


def test_without_web_locks_every_tab_streams_on_its_own(demo: Demo, new_context: Any) -> None:
    """Plain http on a non-localhost host is not a secure context: no Web Locks. Still works."""
    context = new_context()
    context.add_init_script("delete Navigator.prototype.locks;")
    first = sign_in(context, "carol")
    first.wait_for_function(OPEN)
    second = open_tab(context, "/projects/")
    assert first.evaluate("sseNotify.isLeader") and second.evaluate("sseNotify.isLeader")
    assert wait_until(lambda: streams_of(second, demo) == 2)
    title = unique("Everyone hears it")
    demo.send("carol", title)
    for page in (first, second):
        expect(page.locator(".sse-notify-toast", has_text=title)).to_have_count(1, timeout=2000)


# 4 ----------------------------------------------------------------------------------


def test_server_restart_reconnects_and_shows_what_was_sent_while_down(demo: Demo, new_context: Any) -> None:
    context = new_context()
    context.add_init_script(RECORD_EVENTS)
    page = sign_in(context, "admin")
    page.wait_for_function(OPEN)
    before = int(badge(page).text_content())
    live = unique("Before restart")
    demo.send("admin", live)
    expect(page.locator(".sse-notify-toast", has_text=live)).to_be_visible(timeout=2000)

    demo.stop()
    page.wait_for_function("() => sseNotify.connection === 'reconnecting'")
    missed = [unique("Sent while down 1"), unique("Sent while down 2")]
    for title in missed:
        demo.send("admin", title)
    demo.start()

    page.wait_for_function(OPEN, timeout=15_000)
    for title in missed:
        expect(page.locator(".sse-notify-toast", has_text=title)).to_have_count(1, timeout=5000)
    expect(badge(page)).to_have_text(str(before + 3))
    seen = page.evaluate("window.__seen")
    assert len(seen) == 3 and len(set(seen)) == 3, seen
    expect(page.locator(".sse-notify-toast", has_text=live)).to_have_count(1)


# 5 ----------------------------------------------------------------------------------


def test_xss_title_is_text_and_javascript_links_are_never_followed(demo: Demo, new_context: Any) -> None:
    context = new_context()
    page = sign_in(context, "alice")
    page.wait_for_function(OPEN)
    evil = f'<img src=x onerror="window.__xss=1"> {uuid.uuid4().hex[:6]}'
    # Straight into the table, as a careless script might: send_notification would refuse the link.
    demo.send("alice", evil, url="javascript:window.__pwned=1", raw=True)
    toast = page.locator(".sse-notify-toast", has_text=evil)
    expect(toast).to_be_visible(timeout=2000)
    expect(toast.locator(".sse-notify-toast__title")).to_have_text(evil)
    assert page.locator(".sse-notify-toasts img, [data-sse-notify-list] img").count() == 0
    item = page.locator("[data-sse-notify-list] .sse-notify-item", has_text=evil)
    assert item.locator("a").count() == 0  # rendered without a link

    url = page.url
    toast.locator(".sse-notify-toast__main").click()
    assert wait_until(lambda: unread_in_db(demo, evil)[0][0] is not None)
    assert page.url == url
    assert page.evaluate("[window.__xss, window.__pwned]") == [None, None]

    # The inbox page (server-rendered) shows it as text, without the link, too.
    page.goto("/notifications/")
    expect(page.locator(".sse-notify-inbox__title", has_text=evil)).to_have_text(evil)
    assert page.locator(".sse-notify-inbox__title", has_text=evil).locator("a").count() == 0

    # On the inbox, a new arrival is announced above the list; its safe link is followed, and marked read.
    page.wait_for_function(OPEN)
    title = unique("See the projects")
    demo.send("alice", title, url="/projects/")
    expect(page.locator(".sse-notify-inbox__new")).to_have_text("1 new notification: show", timeout=2000)
    page.locator(".sse-notify-toast", has_text=title).locator(".sse-notify-toast__main").click()
    page.wait_for_url("**/projects/")
    assert wait_until(lambda: unread_in_db(demo, title)[0][0] is not None)


# 6 ----------------------------------------------------------------------------------


def test_anonymous_pages_open_no_stream(demo: Demo, new_context: Any) -> None:
    context = new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/projects/")  # redirected to sign in
    page.wait_for_url("**/login/?next=/projects/")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.sseNotify") == "undefined"
    assert not [u for u in requested if "/notifications/" in u or "sse-notify" in u], requested
    expect(page.locator("[data-login]")).to_have_count(4)


# toasts -------------------------------------------------------------------------------


def test_toasts_hide_by_themselves_pause_on_hover_and_can_be_dismissed(demo: Demo, new_context: Any) -> None:
    context = new_context()
    page = sign_in(context, "bob", "/projects/")

    def short_toasts(route: Any) -> None:  # the page as rendered with TOAST_TIMEOUT_MS = 1500
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace('"toastTimeout": 30000', '"toastTimeout": 1500'))

    page.route("**/projects/", short_toasts)
    page.reload()
    page.wait_for_function(OPEN)
    assert page.evaluate("sseNotify.config.toastTimeout") == 1500

    hovered, ignored = unique("Hover me"), unique("Ignore me")
    demo.send("bob", hovered)
    demo.send("bob", ignored)
    toasts = page.locator(".sse-notify-toast")
    expect(toasts).to_have_count(2)
    expect(toasts.first).to_contain_text(ignored)  # newest first in the DOM (shown nearest the corner)
    page.locator(".sse-notify-toast", has_text=hovered).hover()
    expect(page.locator(".sse-notify-toast", has_text=ignored)).to_have_count(0)  # gone by itself
    page.wait_for_timeout(2000)  # longer than the timeout: the hovered one stays
    expect(page.locator(".sse-notify-toast", has_text=hovered)).to_be_visible()
    page.mouse.move(5, 5)
    expect(page.locator(".sse-notify-toast", has_text=hovered)).to_have_count(0)

    closed = unique("Close me")
    demo.send("bob", closed)
    page.locator(".sse-notify-toast", has_text=closed).get_by_role("button", name="Dismiss notification").click()
    expect(page.locator(".sse-notify-toast", has_text=closed)).to_have_count(0)
    # Dismissing is not reading.
    assert unread_in_db(demo, closed) == [(None,)]


# desktop notifications ----------------------------------------------------------------

# Headless Chromium shows no desktop notifications: record them, and pretend the tab is hidden.
FAKE_DESKTOP = """
window.__desktop = [];
window.Notification = class {
  static permission = "default";
  static requestPermission() { window.Notification.permission = "granted"; return Promise.resolve("granted"); }
  constructor(title, options) { window.__desktop.push([title, options.tag]); }
  close() {}
};
Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
"""


def test_desktop_notifications_only_after_opting_in_and_only_when_hidden(demo: Demo, new_context: Any) -> None:
    context = new_context()
    context.add_init_script(FAKE_DESKTOP)
    page = sign_in(context, "bob", "/projects/")
    page.wait_for_function(OPEN)
    before = unique("Before opting in")
    demo.send("bob", before)
    expect(page.locator(".sse-notify-toast", has_text=before)).to_be_visible(timeout=2000)
    assert page.evaluate("window.__desktop") == []

    page.locator("summary.sse-notify-badge").click()
    page.get_by_role("button", name="Desktop alerts").click()
    page.wait_for_function("() => sseNotify.desktopNotifications")
    after = unique("After opting in")
    demo.send("bob", after)
    expect(page.locator(".sse-notify-toast", has_text=after)).to_be_visible(timeout=2000)
    [(title, tag)] = page.evaluate("window.__desktop")
    assert title == after and tag.startswith("sse-notify-")


# reconnect policy -------------------------------------------------------------------


def test_5xx_and_429_are_retried_with_backoff_then_the_stream_resumes(demo: Demo, new_context: Any) -> None:
    """A proxy's 503 or a 429 is not the end (a native EventSource would give up)."""
    context = new_context()
    page = sign_in(context, "bob", "/projects/")
    page.wait_for_function(OPEN)
    answers = [
        {"status": 503, "content_type": "text/html", "body": "<h1>Bad gateway</h1>"},
        {"status": 429, "content_type": "application/json", "body": "{}", "headers": {"Retry-After": "0"}},
    ]
    seen: list[str] = []

    def stream(route: Any) -> None:
        seen.append(route.request.headers.get("last-event-id", ""))
        if answers:
            route.fulfill(**answers.pop(0))
        else:
            route.continue_()

    page.route("**/notifications/stream/**", stream)
    page.reload()
    page.wait_for_function(OPEN)
    assert len(seen) == 3
    assert seen[0] == ""  # first connect of a page: ?cursor=, no header
    assert seen[1] == seen[2] != ""  # reconnects resume with Last-Event-ID
    title = unique("After the outage")
    demo.send("bob", title)
    expect(page.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)


def test_duplicates_are_shown_once_and_reset_reloads_the_list(demo: Demo, new_context: Any) -> None:
    """Feeds the client crafted streams: the same seq twice, then a ``reset``."""
    context = new_context()
    context.add_init_script(
        RECORD_EVENTS + "window.__resets = 0; document.addEventListener('sse-notify:reset', () => window.__resets++);"
    )
    page = sign_in(context, "carol", "/projects/")
    page.wait_for_function(OPEN)
    cursor = page.evaluate("sseNotify.lastSeq")
    unread = page.evaluate("sseNotify.unreadCount")
    fake = json.dumps(
        {
            "id": 999999,
            "seq": cursor + 1,
            "unread": unread + 1,
            "title": "Crafted twice",
            "body": "",
            "level": "info",
            "url": "",
            "data": None,
            "created": "2026-01-01T00:00:00+00:00",
            "actor": None,
        }
    )
    bodies = [
        f'retry: 300\nevent: ready\ndata: {{"cursor": {cursor}, "unread": {unread}}}\n\n'
        f"id: {cursor + 1}\nevent: notification\ndata: {fake}\n\n"
        f"id: {cursor + 1}\nevent: notification\ndata: {fake}\n\n",
        f'event: ready\ndata: {{"cursor": {cursor}, "unread": {unread}}}\n\n'
        f'id: {cursor}\nevent: reset\ndata: {{"cursor": {cursor}, "unread": {unread}, "reason": "unknown_cursor"}}\n\n',
    ]
    resumed: list[str] = []

    def stream(route: Any) -> None:
        resumed.append(route.request.headers.get("last-event-id", ""))
        if bodies:
            route.fulfill(status=200, content_type="text/event-stream", body=bodies.pop(0))
        else:
            route.continue_()

    page.route("**/notifications/stream/**", stream)
    page.reload()
    expect(page.locator(".sse-notify-toast", has_text="Crafted twice")).to_have_count(1)
    page.wait_for_function("() => window.__resets === 1")
    page.wait_for_function(OPEN)
    assert page.evaluate("window.__seen") == [cursor + 1]
    assert resumed[:3] == ["", str(cursor + 1), str(cursor)]
    # The reset put the cursor back and reloaded the list from the server: the crafted item is gone.
    assert page.evaluate("sseNotify.lastSeq") == cursor
    expect(page.locator("[data-sse-notify-list] .sse-notify-item", has_text="Crafted twice")).to_have_count(0)
    expect(badge(page)).to_have_text(str(unread))
    # And the real stream still delivers.
    title = unique("Real again")
    demo.send("carol", title)
    expect(page.locator(".sse-notify-toast", has_text=title)).to_be_visible(timeout=2000)


def test_signing_out_in_one_tab_stops_the_other(demo: Demo, new_context: Any) -> None:
    context = new_context()
    first = sign_in(context, "carol")
    first.wait_for_function(OPEN)
    second = open_tab(context, "/projects/")
    asked: list[str] = []
    second.on("request", lambda r: asked.append(r.url) if "/notifications/stream/" in r.url else None)

    first.get_by_role("button", name="Sign out").click()
    first.wait_for_url("**/login/")
    # The other tab takes the stream over, is told 403 and stops for good.
    second.wait_for_function("() => sseNotify.connection === 'signed-out'")
    tries = len(asked)
    assert tries == 1
    second.wait_for_timeout(1000)  # several backoff periods (RETRY_MS is 300 here)
    assert len(asked) == tries


# the README screenshot ----------------------------------------------------------------


def test_screenshot_of_the_demo(demo: Demo, new_context: Any, tmp_path: Path) -> None:
    """Home with the open list and a toast; ``SSE_NOTIFY_SCREENSHOT=1`` saves it as docs/screenshot.png."""
    demo.send("carol", "Bob commented on Mobile app 2.0", body="Can we move the beta to Friday?", actor="bob")
    demo.send("carol", "Invoice #1042 is overdue", level="warning")
    context = new_context(viewport={"width": 1100, "height": 680}, reduced_motion="reduce")
    page = sign_in(context, "carol")
    page.wait_for_function(OPEN)
    demo.send(
        "carol",
        "Your report is ready",
        body="The Q3 numbers are in. Have a look before Monday's review.",
        level="success",
        url="/projects/",
    )
    toast = page.locator(".sse-notify-toast", has_text="Your report is ready")
    expect(toast).to_be_visible(timeout=2000)
    page.locator("summary.sse-notify-badge").click()
    expect(page.locator("[data-sse-notify-list] .sse-notify-item", has_text="Your report is ready")).to_be_visible()
    page.mouse.move(10, 600)
    target = ROOT / "docs" / "screenshot.png" if os.environ.get("SSE_NOTIFY_SCREENSHOT") else tmp_path / "shot.png"
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000
