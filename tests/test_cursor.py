import pytest

from sse_notify.cursor import parse_cursor


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("17", 17), ("9223372036854775807", 2**63 - 1)])
def test_valid_cursors(raw, expected):
    assert parse_cursor(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        " 1",
        "1 ",
        "-1",
        "+1",
        "1.0",
        "0x10",
        "abc",
        "²",
        "١٢",
        "9223372036854775808",
        "9" * 20,
        "1" * 10_000,
        "1\n2",
    ],
)
def test_invalid_cursors_are_none(raw):
    assert parse_cursor(raw) is None
