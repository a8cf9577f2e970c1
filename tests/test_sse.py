"""The pure SSE encoder: byte-exact framing and a spec round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_notify.events import encode_common, notification_frame, read_frame, ready_frame, reset_frame
from sse_notify.sse import encode_comment, encode_event
from tests.sse_client import SSEParser, parse


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "a\nb"}, b"data: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc\n"}, b"data: a\ndata: b\ndata: c\ndata: \n\n"),
        ({"data": "x", "event": "notification", "id": "7"}, b"id: 7\nevent: notification\ndata: x\n\n"),
        (
            {"data": "x", "event": "evil\ndata: injected", "id": "1\r\nevent: x\0"},
            b"id: 1event: x\nevent: evildata: injected\ndata: x\n\n",
        ),
        ({"retry": 3000}, b"retry: 3000\n\n"),
        ({"data": "é😀"}, "data: é😀\n\n".encode()),
    ],
)
def test_encode_event_bytes(kwargs, expected):
    assert encode_event(**kwargs) == expected


@pytest.mark.parametrize("retry", [-1, 1.5, "10", True])
def test_retry_must_be_a_non_negative_int(retry):
    with pytest.raises(ValueError, match="retry"):
        encode_event("x", retry=retry)


def test_empty_event_is_refused():
    with pytest.raises(ValueError):
        encode_event()


def test_comments_are_keepalive_only():
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    assert encode_comment() == b":\n\n"
    parser = SSEParser()
    assert parser.feed(encode_comment("ping\ndata: not an event").decode()) == []


def test_notification_frame_is_one_event_with_the_seq_as_id():
    common = encode_common({"title": "Line 1\nLine 2\r\n", "body": "<img src=x onerror=alert(1)>", "data": {"k": "\0"}})
    [event] = parse(notification_frame(common, pk=42, seq=7, unread=3))
    assert (event.event, event.id) == ("notification", "7")
    assert event.json() == {
        "id": 42,
        "seq": 7,
        "unread": 3,
        "title": "Line 1\nLine 2\r\n",
        "body": "<img src=x onerror=alert(1)>",
        "data": {"k": "\0"},
    }


def test_ready_read_reset_frames():
    ready, read, reset = parse(ready_frame(5, 2, 3000) + read_frame([1, 2], True, 0) + reset_frame(9, 1, "expired"))
    assert (ready.event, ready.json(), ready.retry) == ("ready", {"cursor": 5, "unread": 2}, 3000)
    assert ready.id == ""  # ready never moves the browser's Last-Event-ID
    assert (read.event, read.json(), read.id) == ("read", {"ids": [1, 2], "read": True, "unread": 0}, "")
    assert (reset.event, reset.id, reset.json()["reason"]) == ("reset", "9", "expired")


@settings(max_examples=300, deadline=None)
@given(data=st.text(), event=st.text(), id=st.text())
def test_arbitrary_strings_survive_encode_parse(data, event, id):
    """Whatever the strings, the parser sees exactly one event carrying them.

    data is preserved up to line-break normalisation (CRLF and CR arrive as LF,
    as the spec says); id and event lose only CR, LF and NUL.
    """
    payload = encode_event(data, event=event, id=id)
    events = parse(payload)
    assert len(events) == 1
    got = events[0]
    assert got.data == data.replace("\r\n", "\n").replace("\r", "\n")
    expected_event = event.replace("\r", "").replace("\n", "").replace("\0", "")
    assert got.event == (expected_event or "message")
    assert got.id == id.replace("\r", "").replace("\n", "").replace("\0", "")


@settings(max_examples=200, deadline=None)
@given(title=st.text(), body=st.text(), seq=st.integers(1, 2**63 - 1))
def test_notification_json_survives_any_text(title, body, seq):
    [event] = parse(notification_frame(encode_common({"title": title, "body": body}), pk=1, seq=seq, unread=0))
    assert event.json()["title"] == title and event.json()["body"] == body and event.id == str(seq)


async def test_sse_stream_survives_a_read_timeout():
    """The test client itself: a quiet moment must not end the stream for later reads."""
    import asyncio

    from tests.sse_client import SSEStream

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        writer.write(b"data: one\n\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"data: two\n\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, SSEStream(f"http://127.0.0.1:{port}/") as s:
        assert (await s.next_event()).data == "one"
        assert await s.silence(0.05) == []
        assert (await s.next_event(timeout=5)).data == "two"
