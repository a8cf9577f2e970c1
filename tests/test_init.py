"""The package root: the public API without side effects at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import sse_notify
from tests.support import ROOT

IMPORT_ONLY = """
import sys
import django.conf
import sse_notify
loaded = sorted(m for m in sys.modules if m.startswith("sse_notify."))
assert loaded == [], loaded
assert not django.conf.settings.configured, "importing sse_notify read the settings"
print("clean")
"""


def test_importing_the_package_imports_no_module_of_it_and_reads_no_settings() -> None:
    # A fresh interpreter without DJANGO_SETTINGS_MODULE: any settings access would raise.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


@pytest.mark.parametrize("name", sse_notify.__all__)
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    import importlib

    module = importlib.import_module(f"sse_notify.{sse_notify._EXPORTS[name]}")
    assert getattr(sse_notify, name) is getattr(module, name)
    assert name in dir(sse_notify)


def test_from_import_of_the_documented_api() -> None:
    from sse_notify import EVERYONE, asend_notification, notify, send_notification
    from sse_notify.api import send_notification as direct

    assert send_notification is direct and callable(asend_notification)
    assert repr(EVERYONE) == "sse_notify.EVERYONE" and notify is not None


def test_all_and_the_lazy_exports_agree_and_unknown_names_raise() -> None:
    assert sorted(sse_notify.__all__) == sorted(sse_notify._EXPORTS)
    with pytest.raises(AttributeError, match="no attribute 'send_notifications'"):
        sse_notify.send_notifications  # noqa: B018
