"""A spec-following SSE parser and a small streaming client for tests.

The parser implements the WHATWG "event stream interpretation" algorithm
(fields, comments, the leading-space rule, data joined with LF, the last
event id buffer, events without data not dispatched), independently of
``sse_notify.sse``, so encoder tests compare against the spec, not ourselves.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

_LINE = re.compile(r"\r\n|\r|\n")


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SSEParser:
    """Feed text chunks; collect dispatched events in ``events``."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    last_event_id: str = ""
    retry: int | None = None
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _has_data: bool = False

    def feed(self, text: str) -> list[Event]:
        self._buffer += text
        new: list[Event] = []
        while True:
            match = _LINE.search(self._buffer)
            # A lone CR at the very end may be the first half of CRLF: wait for more.
            if match is None or (match.group() == "\r" and match.end() == len(self._buffer)):
                break
            line, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            event = self._line(line)
            if event is not None:
                new.append(event)
        self.events.extend(new)
        return new

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, sep, value = line.partition(":")
        if sep:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._has_data:
            self._event = ""
            return None
        event = Event(
            event=self._event or "message", data="\n".join(self._data), id=self.last_event_id, retry=self.retry
        )
        self._data, self._event, self._has_data = [], "", False
        return event


def parse(payload: bytes | str) -> list[Event]:
    parser = SSEParser()
    parser.feed(payload.decode() if isinstance(payload, bytes) else payload)
    return parser.events


class SSEStream:
    """An open stream over a real socket. Use as ``async with SSEStream(...) as s``."""

    def __init__(self, url: str, *, cookie: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = dict(headers or {})
        if cookie:
            self.headers["Cookie"] = f"sessionid={cookie}"
        self.parser = SSEParser()
        self.response: httpx.Response | None = None
        self._client: httpx.AsyncClient | None = None
        self._chunks: Iterator[str] | Any = None
        self._pending: list[Event] = []
        self._read: asyncio.Future[str] | None = None

    async def __aenter__(self) -> SSEStream:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        request = self._client.build_request("GET", self.url, headers=self.headers)
        self.response = await self._client.send(request, stream=True)
        self._chunks = self.response.aiter_text()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._read is not None:
            self._read.cancel()
        if self.response is not None:
            await self.response.aclose()
        if self._client is not None:
            await self._client.aclose()

    @property
    def status(self) -> int:
        assert self.response is not None
        return self.response.status_code

    async def next_event(self, timeout: float = 5.0) -> Event:
        """The next dispatched event; raises ``TimeoutError`` if none comes in time.

        A timeout leaves the pending read in place (cancelling ``__anext__`` would
        close httpx's body iterator and end the stream for every later read).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._pending:
            if self._read is None:
                self._read = asyncio.ensure_future(self._chunks.__anext__())
            done, _ = await asyncio.wait((self._read,), timeout=max(0.0, deadline - loop.time()))
            if not done:
                raise TimeoutError(f"no event within {timeout} s")
            read, self._read = self._read, None
            self._pending.extend(self.parser.feed(read.result()))
        return self._pending.pop(0)

    async def events(self, count: int, timeout: float = 5.0, kind: str | None = None) -> list[Event]:
        """The next ``count`` events (of ``kind`` if given, skipping others)."""
        got: list[Event] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < count:
            event = await self.next_event(max(0.01, deadline - loop.time()))
            if kind is None or event.event == kind:
                got.append(event)
        return got

    async def silence(self, seconds: float, kind: str | None = None) -> list[Event]:
        """Events (of ``kind``) that arrive within ``seconds``; usually asserted empty."""
        got: list[Event] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                event = await self.next_event(remaining)
            except (TimeoutError, StopAsyncIteration):
                break
            if kind is None or event.event == kind:
                got.append(event)
        return got
