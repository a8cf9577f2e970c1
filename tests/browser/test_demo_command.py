"""``manage.py demo --no-serve``: what a new user runs first (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.pages import Demo

pytestmark = pytest.mark.e2e


def test_demo_command_sets_up_users_once_and_prints_how_to_sign_in(tmp_path: Path) -> None:
    demo = Demo(tmp_path)
    out = demo.manage("demo", "--no-serve", "--port", "8123").stdout
    assert "Created users: alice, bob, carol, admin." in out
    assert "http://127.0.0.1:8123/" in out and "/admin/sse_notify/notification/" in out
    for name in ("alice", "bob", "carol", "admin"):
        assert f"    {name} " in out
    assert "password for all: demo" in out
    users = demo.query("SELECT username, is_superuser, is_staff FROM auth_user ORDER BY id")
    assert users == [("alice", 0, 0), ("bob", 0, 0), ("carol", 0, 0), ("admin", 1, 1)]
    # Running it again changes nothing.
    again = demo.manage("demo", "--no-serve").stdout
    assert "Created users" not in again
    assert len(demo.query("SELECT id FROM auth_user")) == 4
