"""Chromium's own ``EventSource`` (not the bundled client) keeps working when the server says "not now".

A spec client treats any answer but 200 ``text/event-stream`` as final: after a
429 or 503 it reaches ``readyState`` CLOSED (2) and never tries again, whatever
``Retry-After`` says (issue 9 item 6). So the stream's over-cap answer and its
end of lifetime must be streams that end, with a ``retry:``; these tests drive
the browser's native ``EventSource`` against the demo under Daphne to show that
such a client comes back by itself and loses nothing.

The page hosting the streams is a JSON endpoint of the signed-in user: it loads
no bundled client, so every stream of that user is one the test opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.pages import Demo, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

#: Where the test's streams live: same origin, signed in, no bundled client.
HOST_PAGE = "/notifications/api/unread/"

#: ``window.openStream(name)`` opens a native EventSource and logs what it sees in ``window.streams[name]``.
RECORDER = """() => {
  window.streams = {};
  window.sources = {};
  window.openStream = (name) => {
    const log = {opens: 0, readies: 0, errors: [], titles: [], ids: []};
    const source = new EventSource('/notifications/stream/');
    source.onopen = () => { log.opens += 1; };
    source.onerror = () => { log.errors.push(source.readyState); };
    source.addEventListener('ready', () => { log.readies += 1; });
    source.addEventListener('notification', (event) => {
      log.titles.push(JSON.parse(event.data).title);
      log.ids.push(event.lastEventId);
    });
    window.streams[name] = log;
    window.sources[name] = source;
  };
  window.state = (name) => ({...window.streams[name], readyState: window.sources[name].readyState});
}"""


@pytest.fixture
def demo_with(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    """``demo_with(**overrides)``: the demo under Daphne with these ``SSE_NOTIFY`` settings."""
    servers: list[Demo] = []

    def start(**overrides: Any) -> Demo:
        server = Demo(tmp_path / f"demo{len(servers)}")
        (tmp_path / f"demo{len(servers)}").mkdir()
        server.env["SSE_NOTIFY_TEST_OVERRIDES"] = json.dumps(overrides)
        servers.append(server)
        server.manage("demo", "--no-serve")
        server.start()
        return server

    yield start
    for server in servers:
        server.close_sender()
        server.stop()


def host_page(playwright_browser: Any, server: Demo, username: str) -> Any:
    context = playwright_browser.new_context(base_url=server.base)
    context.set_default_timeout(20_000)
    page = sign_in(context, username, HOST_PAGE)
    page.evaluate(RECORDER)
    return page


def state(page: Any, name: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("(name) => window.state(name)", name)
    return result


def test_over_the_cap_a_native_eventsource_waits_and_comes_back_when_a_slot_frees(
    playwright_browser: Any, demo_with: Callable[..., Demo]
) -> None:
    # Over-cap answers ask for a reconnect in 10 x RETRY_MS: 2 s here.
    server = demo_with(MAX_STREAMS_PER_USER=2, RETRY_MS=200)
    page = host_page(playwright_browser, server, "alice")
    try:
        for name in ("first", "second"):
            page.evaluate("(name) => window.openStream(name)", name)
            page.wait_for_function("(name) => window.state(name).readies >= 1", arg=name)

        page.evaluate("window.openStream('extra')")
        # Refused twice: it was told "not now", and it did come back to ask again.
        page.wait_for_function("window.state('extra').errors.length >= 2 || window.state('extra').readyState === 2")
        extra = state(page, "extra")
        assert extra["readyState"] != 2, f"the over-cap answer ended the EventSource for good: {extra}"
        assert extra["errors"][:2] == [0, 0], f"each refusal must leave it CONNECTING (0), not CLOSED (2): {extra}"
        assert extra["readies"] == 0, f"a third stream was served over a cap of 2: {extra}"

        page.evaluate("window.sources.first.close(); window.sources.second.close()")
        page.wait_for_function("window.state('extra').readies >= 1")
        title = unique("after a slot freed")
        server.send("alice", title)
        page.wait_for_function("(title) => window.state('extra').titles.includes(title)", arg=title)
        extra = state(page, "extra")
        assert extra["titles"] == [title], extra
        assert extra["readyState"] == 1, extra
    finally:
        page.context.close()


def test_at_the_end_of_its_lifetime_a_native_eventsource_resumes_without_loss_or_duplicates(
    playwright_browser: Any, demo_with: Callable[..., Demo]
) -> None:
    server = demo_with(MAX_STREAM_LIFETIME=2.0, RETRY_MS=200)
    page = host_page(playwright_browser, server, "bob")
    requests: list[Any] = []
    page.on("request", lambda request: "/notifications/stream/" in request.url and requests.append(request))
    try:
        page.evaluate("window.openStream('tab')")
        page.wait_for_function("window.state('tab').readies >= 1")
        sent: list[str] = []
        # Keep sending across at least two ends of lifetime: some notifications
        # land while the EventSource is between connections, and only its
        # Last-Event-ID can bring those back.
        deadline = time.monotonic() + 60
        while state(page, "tab")["readies"] < 3 and time.monotonic() < deadline:
            title = unique(f"n{len(sent)}")
            server.send("bob", title)
            sent.append(title)
            time.sleep(0.1)
        last = sent[-1]
        page.wait_for_function("(title) => window.state('tab').titles.includes(title)", arg=last)
        tab = state(page, "tab")
        assert tab["readies"] >= 3, f"the stream did not end and resume twice within 60 s: {tab}"
        assert tab["titles"] == sent, "notifications lost, duplicated or reordered across reconnects"
        assert tab["errors"] and set(tab["errors"]) == {0}, f"an end of lifetime closed it for good: {tab}"
        # The raw headers Chromium sent (``request.headers`` leaves Last-Event-ID out).
        resumed_from = [request.all_headers().get("last-event-id") for request in requests]
        resumes = [value for value in resumed_from[1:] if value]
        assert len(resumes) >= 2, f"the reconnects did not carry Last-Event-ID: {resumed_from}"
        assert set(resumes) <= set(tab["ids"]), (resumes, tab["ids"])
    finally:
        page.context.close()
