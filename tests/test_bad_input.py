"""Bad input, each answered clearly and harmlessly: cursors, payloads, links, abusive clients."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from sse_notify.api import send_notification
from sse_notify.models import Notification
from tests.sse_client import SSEStream, parse
from tests.support import AsgiStream, http_scope, open_stream, session_cookie, sse_settings

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user: Any, *, header: bytes | None = None, query: bytes | None = None) -> AsgiStream:
    cookie = await sync_to_async(session_cookie)(user)
    headers = [(b"last-event-id", header)] if header is not None else []
    s = await AsgiStream(http_scope(cookie=cookie, headers=headers, query=query or b"")).start()
    await s.read_until(lambda st: bool(st.events("ready")))
    return s


# -- cursors ------------------------------------------------------------------------------------

BAD_CURSORS = [
    b"abc",
    b"-1",
    b"+1",
    b" 1",
    b"1.0",
    b"0x10",
    b"9" * 10_240,
    b"99999999999999999999",
    "١٢".encode(),  # Arabic-Indic digits: str.isdigit() says yes, int() would take them
    "²".encode(),
    "é".encode(),
    b"1\x00",
]


@pytest.mark.parametrize("where", ["header", "query"])
async def test_bad_cursor_starts_from_the_present_and_says_reset(fresh_hub, make_user, where):
    from urllib.parse import quote_from_bytes

    alice = await sync_to_async(make_user)()
    for i in range(3):
        await sync_to_async(send_notification)(alice, f"old {i}")
    for n, raw in enumerate(BAD_CURSORS):
        if where == "header":
            s = await connect(alice, header=raw)
        else:
            s = await connect(alice, query=b"cursor=" + quote_from_bytes(raw).encode())
        assert s.status == 200, raw
        assert s.events("ready")[0].json() == {"cursor": 3 + n, "unread": 3 + n}, raw
        reset = s.events("reset")
        assert len(reset) == 1 and reset[0].json()["reason"] == "invalid_cursor", raw
        assert reset[0].id == str(3 + n), raw
        assert s.notifications() == [], "nothing is replayed from a cursor we cannot read"
        # Live delivery works from there.
        await sync_to_async(send_notification)(alice, "new")
        await s.read_until(lambda st: len(st.notifications()) == 1)
        assert s.notifications()[0].id == str(4 + n), raw
        await s.disconnect()


async def test_empty_cursor_is_a_fresh_start_without_reset(fresh_hub, make_user):
    alice = await sync_to_async(make_user)()
    await sync_to_async(send_notification)(alice, "old")
    for kw in ({"header": b""}, {"query": b"cursor="}):
        s = await connect(alice, **kw)
        assert s.events("ready")[0].json() == {"cursor": 1, "unread": 1}
        assert s.events("reset") == [] and s.notifications() == []
        await s.disconnect()


async def test_a_session_key_with_a_nul_is_signed_out_not_a_database_outage(fresh_hub, caplog):
    """Django unquotes ``"...\\000..."`` in a cookie to a NUL, which PostgreSQL refuses in a
    query: the stream said "unavailable" (come back later) and logged a database failure,
    so any anonymous client could fake an outage (found by an outside attack)."""
    s = await AsgiStream(http_scope(headers=[(b"cookie", b'sessionid="abcdefgh\\000xyz"')])).start()
    await s.chunk()
    assert (s.status, b"not_authenticated" in s.raw) == (403, True), s.raw
    assert "failed" not in caplog.text


async def test_another_users_cursor_never_shows_their_data(fresh_hub, make_user):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    for i in range(2):
        await sync_to_async(send_notification)(alice, f"alice {i}")
    for i in range(10):
        await sync_to_async(send_notification)(bob, f"bob {i}")
    # Bob's cursor is beyond anything alice has: reset to alice's present.
    s = await connect(alice, header=b"10")
    assert s.events("reset")[0].json() == {"cursor": 2, "unread": 2, "reason": "unknown_cursor"}
    assert s.notifications() == []
    await s.disconnect()
    # A cursor below alice's own: only alice's notifications are replayed.
    s = await connect(alice, header=b"0")
    await s.read_until(lambda st: len(st.notifications()) == 2)
    assert [e.json()["title"] for e in s.notifications()] == ["alice 0", "alice 1"]
    assert b"bob" not in s.raw
    await s.disconnect()


# -- payloads -----------------------------------------------------------------------------------

NASTY = {
    "crlf": "line1\r\nevent: forged\r\n\r\ndata: injected\rid: 999\n\nid: 1000",
    "nonbmp": "emoji 😀, clef 𝄞, astral 𐍈 and a lone surrogate-free ZWJ 👩‍💻",
    "html": "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>",
    "json": '"}, "id": 1, "title": "forged',
    "sse_comment": ": ping\n\n: ping",
}


async def test_nasty_titles_and_bodies_arrive_intact_as_one_event(fresh_hub, make_user):
    alice = await sync_to_async(make_user)()
    s = await connect(alice, header=b"0")
    for text in NASTY.values():
        await sync_to_async(send_notification)(alice, text[:200], body=text, data={"raw": text})
    await s.read_until(lambda st: len(st.notifications()) == len(NASTY))
    assert s.events("forged") == [] and len(s.events("notification")) == len(NASTY)
    for event, (name, text) in zip(s.notifications(), NASTY.items(), strict=True):
        data = event.json()
        assert (data["title"], data["body"], data["data"]) == (text[:200], text, {"raw": text}), name
    assert s.parser.last_event_id == str(len(NASTY)), "no payload moved the client's cursor"
    await s.disconnect()
    # The JSON list and the HTML inbox carry them as data, never markup.
    client = Client()
    await sync_to_async(client.force_login)(alice)
    listed = await sync_to_async(client.get)(reverse("sse_notify:list"))
    assert listed["Content-Type"] == "application/json"
    assert {n["body"] for n in listed.json()["results"]} == set(NASTY.values())
    page = await sync_to_async(client.get)(reverse("sse_notify:inbox"))
    assert b"<script>alert" not in page.content and b"<img src=x" not in page.content


def test_nul_in_text_is_rejected_clearly_never_a_database_error(db, make_user):
    """PostgreSQL cannot store NUL in text: sending one must fail clearly, on every database alike."""
    alice = make_user()
    for field in ("title", "body"):
        kwargs = {"title": "t", "body": "b"}
        kwargs[field] = "before\x00after"
        with pytest.raises(ValidationError) as info:
            send_notification(alice, **kwargs)
        assert field in info.value.message_dict
        assert "NUL" in " ".join(info.value.message_dict[field])
    with pytest.raises(ValidationError) as info:
        send_notification(alice, "t", data={"k": ["a\x00"]})
    assert "NUL" in info.value.message_dict["data"][0]
    assert not Notification.objects.filter(recipient=alice).exists()


def test_one_megabyte_body_is_rejected_at_send_with_a_clear_error(db, make_user):
    alice = make_user()
    with pytest.raises(ValidationError) as info:
        send_notification(alice, "big", body="x" * 1_000_000)
    assert "limit" in info.value.message_dict["body"][0] and "1000000" in info.value.message_dict["body"][0]
    with pytest.raises(ValidationError):
        send_notification(alice, "big data", data={"blob": "x" * 1_000_000})
    with pytest.raises(ValidationError):
        send_notification(alice, "t" * 201)
    assert not Notification.objects.filter(recipient=alice).exists()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "DATA:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "//evil.example/path",
        "\\\\evil.example",
        "/\\evil.example",
        "https://ok.example/\x00",
    ],
)
def test_dangerous_links_are_rejected(db, make_user, url):
    alice = make_user()
    with pytest.raises(ValidationError) as info:
        send_notification(alice, "click", url=url)
    assert "url" in info.value.message_dict
    assert not Notification.objects.filter(recipient=alice).exists()


@pytest.mark.parametrize("url", ["/orders/7/", "https://example.com/a?b=c#d", "mailto:x@example.com", "orders/7"])
def test_ordinary_links_are_accepted(db, make_user, url):
    alice = make_user()
    assert send_notification(alice, "click", url=url)[0].url == url


# -- stream caps ---------------------------------------------------------------------------------


def assert_come_back_later(refused: Any, code: str, body: bytes) -> None:
    """The over-cap answer keeps spec clients alive: 200 text/event-stream, a comment
    naming why, a long ``retry:``, no event, and the end (a 429 would end a native EventSource)."""
    assert refused.status == 200
    assert refused.headers[b"Content-Type"] == b"text/event-stream; charset=utf-8"
    assert refused.ended and refused.parser.comments == [code]
    assert refused.events() == [] and b"data:" not in body
    assert refused.parser.retry is not None and refused.parser.retry >= 10_000
    assert int(refused.headers[b"Retry-After"]) >= 10


async def test_too_many_streams_from_one_user_get_a_long_retry(fresh_hub, make_user):
    alice = await sync_to_async(make_user)()
    with sse_settings(MAX_STREAMS_PER_USER=2):
        a, b = await open_stream(alice), await open_stream(alice)
        third = await open_stream(alice)
        assert_come_back_later(third, "too_many_streams", await third.read_to_end())
        assert fresh_hub.streams_of(alice.pk) == 2
        await a.disconnect()
        await asyncio.sleep(0.05)
        again = await open_stream(alice)
        assert again.status == 200, "a closed stream frees its slot"
        await b.disconnect()
        await again.disconnect()
    assert fresh_hub.count == 0


async def test_too_many_streams_from_one_address_get_a_long_retry(fresh_hub, make_user):
    users = [await sync_to_async(make_user)() for _ in range(3)]
    with sse_settings(MAX_STREAMS_PER_IP=2):
        a = await open_stream(users[0], client=("10.0.0.1", 1))
        b = await open_stream(users[1], client=("10.0.0.1", 2))
        refused = await open_stream(users[2], client=("10.0.0.1", 3))
        assert_come_back_later(refused, "too_many_streams", await refused.read_to_end())
        elsewhere = await open_stream(users[2], client=("10.0.0.2", 4))
        assert elsewhere.status == 200
        for s in (a, b, elsewhere):
            await s.disconnect()
    await asyncio.sleep(0.05)
    assert fresh_hub.count == 0 and dict(fresh_hub.per_ip) == {}


async def test_a_stopping_server_asks_for_the_usual_reconnect_not_the_long_one(fresh_hub, make_user):
    """During a deploy a client that reaches a stopping process comes back after one
    reconnection delay, as the streams it ends do (outside attack: it was told 30 s,
    the wait for a cap, and the browser kept that delay for its later reconnects)."""
    alice = await sync_to_async(make_user)()
    with sse_settings(RETRY_MS=2000):
        fresh_hub.stopping = True
        refused = await open_stream(alice)
        await refused.read_to_end()
        assert refused.status == 200 and refused.ended
        assert refused.parser.comments == ["server_stopping"] and refused.events() == []
        assert refused.parser.retry == 2000
        assert refused.headers[b"Retry-After"] == b"2"
        fresh_hub.stopping = False
        with sse_settings(RETRY_MS=2000, MAX_STREAMS_PER_USER=0):
            capped = await open_stream(alice)
            await capped.read_to_end()
            assert capped.parser.comments == ["too_many_streams"] and capped.parser.retry == 20_000
    assert fresh_hub.count == 0


async def test_a_request_body_on_the_stream_is_ignored(fresh_hub, make_user):
    alice = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(alice)
    s = await AsgiStream(http_scope(cookie=cookie, query=b"cursor=0"), body=b'{"user": 1}' * 1000).start()
    assert s.status == 200
    await s.read_until(lambda st: bool(st.events("ready")))
    await s.disconnect()
    post = await AsgiStream(http_scope(cookie=cookie, method="POST"), body=b"x").start()
    assert post.status == 405  # in JSON, as every error here (the stream changes nothing: no CSRF check)
    assert json.loads(await post.read_to_end())["error"] == "method_not_allowed"


# -- abusive clients against a real Daphne ---------------------------------------------------------


def raw_request(port: int, payload: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


async def assert_serves(server: Any, user: Any) -> None:
    """The server still answers a normal client and delivers to it."""
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url(), cookie=cookie) as s:
        assert s.status == 200
        await s.next_event()
        await sync_to_async(send_notification)(user, "still here")
        event = await s.next_event()
        assert event.json()["title"] == "still here"


@pytest.mark.e2e
async def test_malformed_http_does_not_hurt_the_server(daphne, make_user):
    server = daphne()
    alice = await sync_to_async(make_user)()
    garbage = [
        b"\x00\xff\xfe GARBAGE\r\n\r\n",
        b"GET /notifications/stream/ HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n",
        b"GET /notifications/stream/ HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /notifications/stream/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /notifications/stream/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /notifications/stream/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /notifications/stream/ HTTP/1.1\r\nHo",  # cut short
        b"\r\n" * 10_000,
    ]
    for payload in garbage:
        answer = await asyncio.to_thread(raw_request, server.port, payload, payload.endswith(b"\r\n\r\n"))
        assert b"text/event-stream" not in answer, payload[:40]
    assert server.proc is not None and server.proc.poll() is None
    await assert_serves(server, alice)


@pytest.mark.e2e
async def test_a_client_that_never_reads_is_cut_off_at_the_byte_budget(daphne, make_user):
    budget = 100_000
    server = daphne(overrides={"POLL_INTERVAL": 0.1}, constants={"sse_notify.stream.MAX_STREAM_BYTES": budget})
    alice = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(alice)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        request = (
            f"GET /notifications/stream/?cursor=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={cookie}\r\n\r\n"
        )
        sock.sendall(request.encode())
        # 4 MB of notifications, 40x the budget, while the client reads nothing.
        body = "x" * 8000
        for _ in range(10):
            await sync_to_async(send_notification)(alice, "flood", body=body)
        await sync_to_async(
            lambda: Notification.objects.bulk_create(
                [Notification(recipient=alice, title="flood", body=body) for _ in range(490)]
            )
        )()
        await asyncio.sleep(1.0)  # a few POLL_INTERVALs: the stream has run into its budget
        assert server.proc is not None and server.proc.poll() is None
        await assert_serves(server, alice)
        # Now read what the server kept for us: the stream ended near the budget.
        sock.settimeout(5)
        received = b""
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body_bytes = received.partition(b"\r\n\r\n")
        assert b"200" in head.split(b"\r\n")[0]
        assert received.endswith(b"0\r\n\r\n"), "the stream did not end"
        assert len(body_bytes) < budget + 2 * 8400 + 20_000, len(body_bytes)
        events = parse(_dechunk(body_bytes))
        assert events[0].event == "ready"
        seqs = [int(e.id) for e in events if e.event == "notification"]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 500
    finally:
        sock.close()


def _dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


async def test_streams_opened_all_at_once_cannot_pass_the_per_user_cap(fresh_hub, make_user):
    alice = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(alice)
    with sse_settings(MAX_STREAMS_PER_USER=2):
        await fresh_hub._ensure_started()
        streams = [AsgiStream(http_scope(cookie=cookie, query=b"cursor=0")) for _ in range(8)]
        await asyncio.gather(*(s.start() for s in streams))
        for s in streams:
            await s.chunk()
        live = [s for s in streams if s.events("ready")]
        assert len(live) == 2 and fresh_hub.streams_of(alice.pk) == 2
        assert all(s.status == 200 for s in streams)
        for s in streams:
            if s in live:
                await s.disconnect()
            else:
                await s.read_to_end()
                assert s.events() == [], "a refused stream carried data"


@pytest.mark.e2e
async def test_raw_bad_cursor_bytes_on_a_real_socket(daphne, make_user):
    """Bytes no browser would send in Last-Event-ID (latin-1 garbage, 10 KB) through Daphne."""
    server = daphne()
    alice = await sync_to_async(make_user)()
    await sync_to_async(send_notification)(alice, "old")
    cookie = await sync_to_async(session_cookie)(alice)
    for raw in (b"\xff\xfe\x01", b"\x00", "١٢".encode(), b"7" * 10_240, b"-1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(
                b"GET /notifications/stream/ HTTP/1.0\r\nHost: x\r\nCookie: sessionid="
                + cookie.encode()
                + b"\r\nLast-Event-ID: "
                + raw
                + b"\r\n\r\n"
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if b"\x00" in raw:  # Daphne (Twisted) refuses a NUL in a header outright
                assert b" 400 " in head.split(b"\r\n")[0], head
                continue
            assert b" 200 " in head.split(b"\r\n")[0], (raw[:10], head)
            body = b""
            while b"event: reset" not in body or not body.endswith(b"\n\n"):
                body += await asyncio.wait_for(reader.read(4096), 5)
            events = parse(body)
            assert [e.event for e in events] == ["ready", "reset"], raw[:10]
            assert events[1].json()["reason"] == "invalid_cursor" and events[1].id == "1"
        finally:
            writer.close()
    await assert_serves(server, alice)
