"""axe-core finds nothing to report in any state of the demo: light and dark, desktop and phone.

Each state is what a user reaches: the sign-in page, a page with the bell,
the bell's list open (and empty), a toast on screen, a burst of toasts with
"+N more", the inbox (read and unread rows, with and without a body, one
selected), the preferences page. Every axe rule runs (WCAG A/AA and best
practices); the failure message names the rule and the elements.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import describe, violations
from tests.browser.pages import OPEN, Demo, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DESKTOP = {"width": 1100, "height": 640}
PHONE = {"width": 390, "height": 844}


def settled(locator: Any) -> None:
    """Wait for the element's own entry animation: colours mid-fade are not what a user reads."""
    locator.evaluate("(el) => Promise.all(el.getAnimations().map((a) => a.finished))")


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "light-phone", "dark-phone"],
)
def test_no_axe_violations_in_any_state(demo: Demo, new_context: Any, scheme: str, viewport: dict[str, int]) -> None:
    context = new_context(color_scheme=scheme, viewport=viewport)
    found: dict[str, list[dict[str, Any]]] = {}

    page = context.new_page()
    page.goto("/login/?next=/")
    found["sign-in page"] = violations(page)

    demo.send("carol", unique("Deploy finished"), body="Production is on 4.2.", level="success")
    demo.send("carol", unique("Disk almost full"), level="warning", url="/projects/")
    page = sign_in(context, "carol")
    page.wait_for_function(OPEN)
    found["page"] = violations(page)

    page.locator("summary.sse-notify-badge").click()
    expect(page.locator("[data-sse-notify-list]")).to_be_visible()
    found["list open"] = violations(page)
    page.keyboard.press("Escape")

    title = unique("Review requested")
    demo.send("carol", title, body="Bob asked you to review #42.", level="info", actor="bob")
    toast = page.locator(".sse-notify-toast", has_text=title)
    expect(toast).to_be_visible(timeout=2000)
    settled(toast)
    found["toast shown"] = violations(page)

    # A burst: every level, errors and warnings staying, the rest collapsed into "+N more".
    burst = [unique(f"Burst {level}") for level in ("error", "warning", "success", "info", "info", "info")]
    for name, level in zip(burst, ("error", "warning", "success", "info", "info", "info"), strict=True):
        demo.send("carol", name, level=level)
    more = page.locator(".sse-notify-toasts__more")
    expect(more).to_be_visible(timeout=3000)
    for shown in page.locator(".sse-notify-toast").all():
        settled(shown)
    found["toasts: a burst with +N more"] = violations(page)

    empty = new_context(color_scheme=scheme, viewport=viewport)
    nobody = sign_in(empty, "alice")  # nothing is ever sent to alice in this module
    nobody.wait_for_function(OPEN)
    nobody.locator("summary.sse-notify-badge").click()
    expect(nobody.locator("[data-sse-notify-empty]")).to_be_visible()
    found["list open, empty"] = violations(nobody)

    page.goto("/notifications/")
    page.wait_for_function(OPEN)
    found["inbox"] = violations(page)
    page.locator(".sse-notify-inbox__check").first.check()
    expect(page.locator("[data-sse-notify-selected]")).to_be_visible()
    found["inbox, a row selected"] = violations(page)

    page.goto("/notifications/preferences/")
    page.wait_for_function(OPEN)
    found["preferences"] = violations(page)

    report = {state: describe(v) for state, v in found.items() if v}
    counts = {state: len(v) for state, v in found.items()}
    assert not report, f"axe violations per state {counts}:\n" + "\n".join(f"[{s}]\n{d}" for s, d in report.items())
