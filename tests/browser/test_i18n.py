"""The app in the user's language: a browser that asks for German gets German.

The demo has Django's LocaleMiddleware, so Chromium's Accept-Language (the
context's ``locale``) picks the language, as it would for a real visitor. The
demo's own pages stay English; everything sse_notify renders is German.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import describe, violations
from tests.browser.pages import OPEN, Demo, sign_in, unique, unread_in_db, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_inbox_in_german(demo: Demo, new_context: Any) -> None:
    title = unique("Hallo")
    demo.send("bob", title, body="Wie geht's?", level="warning", actor="alice")
    page = sign_in(new_context(locale="de-DE"), "bob", "/notifications/")
    page.wait_for_function(OPEN)
    inbox = page.locator("[data-sse-notify-inbox]")
    expect(inbox).to_have_attribute("lang", "de")
    expect(inbox.get_by_role("heading", level=1)).to_have_text("Benachrichtigungen")
    row = page.locator(".sse-notify-inbox__item", has_text=title)
    expect(row.locator(".sse-notify-inbox__meta")).to_contain_text("Warnung")
    expect(row.locator(".sse-notify-inbox__meta")).to_contain_text("von alice")
    expect(row.locator(".sse-notify-inbox__meta time")).to_have_text("gerade eben")
    row.get_by_role("button", name="Als gelesen markieren").click()
    expect(row.get_by_role("button", name="Als ungelesen markieren")).to_be_visible()
    expect(page.locator("[data-sse-notify-inbox-status]")).to_have_text("Als gelesen markiert.")
    assert wait_until(lambda: unread_in_db(demo, title)[0][0] is not None)
    page.get_by_label("Alle auswählen").check()
    expect(page.locator("[data-sse-notify-selected]")).to_contain_text("Ausgewählt: ")
    found = violations(page)
    assert not found, describe(found)


def test_the_bell_and_a_toast_in_german(demo: Demo, new_context: Any) -> None:
    page = sign_in(new_context(locale="de-DE"), "carol")
    page.wait_for_function(OPEN)
    title = unique("Neuer Kommentar")
    demo.send("carol", title, body="Zu Ticket 42.", actor="alice", url="/projects/")
    toast = page.locator(".sse-notify-toast", has_text=title)
    expect(toast).to_be_visible(timeout=2000)
    expect(toast).to_contain_text("von alice")
    expect(toast).to_contain_text("Öffnen")
    expect(toast.get_by_role("button", name="Benachrichtigung schließen")).to_be_visible()
    expect(page.locator(".sse-notify-toaster")).to_have_attribute("aria-label", "Benachrichtigungen (Alt+T)")
    expect(page.locator(".sse-notify-toaster")).to_have_attribute("lang", "de")

    toggle = page.locator("summary.sse-notify-badge")
    count = toggle.locator("[data-sse-notify-count]").text_content()
    expect(toggle).to_have_accessible_name(f"Benachrichtigungen: {count} ungelesen")
    toggle.click()
    menu = page.locator("[data-sse-notify-menu]")
    expect(menu).to_have_attribute("lang", "de")
    expect(menu.get_by_role("button", name="Alle als gelesen markieren")).to_be_visible()
    expect(menu.get_by_role("link", name="Alle Benachrichtigungen ansehen")).to_be_visible()
    expect(menu.get_by_role("link", name="Einstellungen")).to_be_visible()
    item = menu.locator(".sse-notify-item", has_text=title)
    expect(item.locator("time")).to_have_text("gerade eben")  # the client's relative time, in German too
    expect(item.get_by_role("button", name="Als gelesen markieren")).to_be_visible()
    found = violations(page)
    assert not found, describe(found)
