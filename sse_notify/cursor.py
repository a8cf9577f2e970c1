"""Parsing the client's resume cursor (``Last-Event-ID`` or ``?cursor=``)."""

from __future__ import annotations

MAX_CURSOR = 2**63 - 1


def parse_cursor(raw: str | None) -> int | None:
    """Return the cursor as an int, or None if ``raw`` is not a plain decimal seq.

    Only ASCII digits are accepted (``str.isdigit`` would take "²" or Arabic-Indic
    digits); signs, spaces, huge values and anything else are rejected.
    """
    if raw is None or not (1 <= len(raw) <= 19) or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if value <= MAX_CURSOR else None
