"""A pure encoder for the Server-Sent Events wire format.

No Django here: this module only turns fields into bytes, following the WHATWG
HTML "Server-sent events" section (event stream interpretation). Deliberate choices:

- ``data`` is split on CRLF, CR and LF into one ``data:`` line each, so a
  multi-line value arrives intact (the parser joins them with LF) and can
  never start a new field or event.
- ``id`` and ``event`` are single-line by nature: CR, LF and NUL are removed
  (a browser ignores an ``id`` that contains NUL).
- A comment is for keep-alive only and is never shown to scripts.
"""

from __future__ import annotations

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\0]")


def _single_line(value: str) -> str:
    return _FORBIDDEN_IN_FIELD.sub("", value)


def encode_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Return one complete event (ending in a blank line) as UTF-8 bytes."""
    lines: list[str] = []
    if id is not None:
        lines.append(f"id: {_single_line(id)}")
    if event is not None:
        lines.append(f"event: {_single_line(event)}")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"retry must be a non-negative int, not {retry!r}")
        lines.append(f"retry: {retry}")
    if data is not None:
        lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    if not lines:
        raise ValueError("an event needs at least one of data, event, id or retry")
    return ("\n".join(lines) + "\n\n").encode()


def encode_comment(text: str = "") -> bytes:
    """Return a comment block (``: text``), used as a keep-alive."""
    body = "\n".join(f": {line}" if line else ":" for line in _LINE_BREAK.split(text))
    return (body + "\n\n").encode()
