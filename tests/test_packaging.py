"""The built wheel carries everything a project needs, and nothing of ours besides."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.e2e


def test_wheel_contains_migrations_templates_static_and_types(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("sse_notify-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in [
        "sse_notify/py.typed",
        "sse_notify/migrations/0001_initial.py",
        "sse_notify/static/sse_notify/sse-notify.js",
        "sse_notify/static/sse_notify/sse-notify.css",
        "sse_notify/static/sse_notify/sse-notify-inbox.js",
        "sse_notify/static/sse_notify/sse-notify-inbox.css",
        "sse_notify/templates/sse_notify/inbox.html",
        "sse_notify/locale/de/LC_MESSAGES/django.po",
        "sse_notify/locale/de/LC_MESSAGES/django.mo",
        "sse_notify/templatetags/sse_notify.py",
        "sse_notify/management/commands/sse_notify_send.py",
    ]:
        assert required in names, required
    assert not [n for n in names if n.split("/")[0] in ("tests", "demo_project", "bench")]
