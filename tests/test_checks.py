"""System checks: one test per id, and a clean ``check`` on the test settings."""

from __future__ import annotations

import importlib
import re
import sys
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from sse_notify.checks import check_channel_layer, check_settings
from sse_notify.conf import RETIRED, SECONDS, SETTINGS, app_settings
from tests.support import ROOT

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_e001_channels_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "channels.layers", None)  # makes the import fail
    (error,) = check_channel_layer()
    assert error.id == "sse_notify.E001"
    assert "pip install channels" in error.hint


@override_settings(CHANNEL_LAYERS={})
def test_e002_layer_alias_missing() -> None:
    (error,) = check_channel_layer()
    assert error.id == "sse_notify.E002"
    assert "'default'" in error.msg and "InMemoryChannelLayer" in error.hint


@override_settings(CHANNEL_LAYERS=IN_MEMORY, SSE_NOTIFY={"CHANNEL_LAYER": "notifications"})
def test_e002_custom_alias_missing() -> None:
    assert ids(check_channel_layer()) == ["sse_notify.E002"]


@override_settings(SSE_NOTIFY={"HEARTBEAT": 15, "HEART_BEAT": 15})
def test_e003_unknown_setting() -> None:
    (error,) = check_settings()
    assert error.id == "sse_notify.E003"
    assert "'HEART_BEAT'" in error.msg and "HEARTBEAT" in error.hint


@pytest.mark.parametrize(
    "value",
    [
        {"HEARTBEAT": 0},
        {"HEARTBEAT": "15"},
        {"RETRY_MS": -1},
        {"DB_THREADS": None},
        {"MAX_STREAMS": 0},
        {"TOAST_TIMEOUT_MS": 1.5},
        {"MAX_STREAMS_PER_USER": True},
        {"URL_SCHEMES": ["https", "javascript"]},
        {"CHANNEL_LAYER": ""},
    ],
)
def test_e004_bad_value(value: dict[str, Any]) -> None:
    with override_settings(SSE_NOTIFY=value):
        (error,) = check_settings()
    ((name, bad),) = value.items()
    assert error.id == "sse_notify.E004"
    # The message names the setting, the bad value and what is allowed; the hint the default and the reason.
    assert f"SSE_NOTIFY[{name!r}] is {bad!r}; it must be {SETTINGS[name].rule.expected}." == error.msg
    assert error.hint == f"Default: {SETTINGS[name].default!r}. {SETTINGS[name].reason}"


@pytest.mark.parametrize("name", sorted(RETIRED))
def test_e003_former_setting_names_the_constant_that_replaced_it(name: str) -> None:
    with override_settings(SSE_NOTIFY={name: 1}):
        (error,) = check_settings()
    assert error.id == "sse_notify.E003"
    module, _, constant = RETIRED[name].rpartition(".")
    assert RETIRED[name] in error.msg
    assert hasattr(importlib.import_module(module), constant), f"{RETIRED[name]} does not exist"
    assert name not in SETTINGS


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_has_a_valid_default_and_a_reason(name: str) -> None:
    setting = SETTINGS[name]
    assert setting.name == name
    assert setting.rule.test(setting.default), f"{name}'s default {setting.default!r} breaks its own rule"
    assert len(setting.reason) > 30, f"{name} says no reason a user would change it"
    with override_settings(SSE_NOTIFY={name: setting.default}):
        assert check_settings() == []
        assert getattr(app_settings, name) == setting.default


def test_only_time_settings_speak_of_seconds() -> None:
    for name, setting in SETTINGS.items():
        timed = setting.rule is SECONDS or name.endswith("_MS")
        assert timed == ("seconds" in setting.rule.expected or "milliseconds" in setting.rule.expected), name


def test_the_readme_table_lists_exactly_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| setting | default |") : readme.index("### System checks")]
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", table, flags=re.M)
    assert [name for name, _ in rows] == list(SETTINGS)
    for name, default in rows:
        assert default.replace("_", "") == repr(SETTINGS[name].default).replace("'", '"').replace("_", ""), name


@override_settings(SSE_NOTIFY=[("HEARTBEAT", 5)])
def test_e004_not_a_dict() -> None:
    assert ids(check_settings()) == ["sse_notify.E004"]


@pytest.mark.parametrize("origin", ["*", "https://app.example.com/", "app.example.com", "ftp://x.example", 7])
def test_e005_bad_cors_origin(origin: Any) -> None:
    with override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": ["https://ok.example.com", origin]}):
        (error,) = check_settings()
    assert error.id == "sse_notify.E005"
    assert "scheme://host[:port]" in error.hint


@override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=False)
def test_w001_in_memory_layer_in_production() -> None:
    (warning,) = check_channel_layer()
    assert warning.id == "sse_notify.W001"
    assert "channels_redis" in warning.hint
    with override_settings(DEBUG=True):
        assert check_channel_layer() == []


@override_settings(ASGI_APPLICATION=None)
def test_w002_no_asgi_application() -> None:
    (warning,) = check_settings()
    assert warning.id == "sse_notify.W002"
    assert "ASGI_APPLICATION" in warning.hint


def test_valid_settings_pass() -> None:
    with override_settings(
        SSE_NOTIFY={"HEARTBEAT": 5, "MAX_STREAMS": None, "CORS_ALLOWED_ORIGINS": ["http://localhost:8000"]}
    ):
        assert check_settings() == []


@pytest.mark.django_db
def test_check_command_is_clean_on_the_test_settings() -> None:
    out = StringIO()
    call_command("check", stdout=out, stderr=StringIO())
    assert "no issues" in out.getvalue()


@pytest.mark.django_db
def test_check_command_reports_our_errors() -> None:
    from django.core.management.base import SystemCheckError

    with override_settings(CHANNEL_LAYERS={}), pytest.raises(SystemCheckError, match=r"sse_notify\.E002"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_migrations_are_complete() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO(), stderr=StringIO())


def test_the_readme_endpoint_table_lists_every_url_of_the_app() -> None:
    """A developer finds every URL the app serves in one table (it lacked five)."""
    from sse_notify import urls

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## JSON endpoints") : readme.index("## Browser side")]
    listed = re.findall(r"^\| `sse_notify:(\w+)` \(`([^`]*)`", table, flags=re.M)
    routes = {
        p.name: str(p.pattern).replace("<int:pk>", "<id>").replace("<str:token>", "<token>") for p in urls.urlpatterns
    }
    assert {name for name, _ in listed} == set(routes)
    for name, route in listed:
        assert route.split("?")[0] == routes[name], name


def test_the_readme_python_snippets_import_what_they_use() -> None:
    """Each decorator or name a snippet uses at the start of a line is imported in it (``@receiver`` was not)."""
    readme = (ROOT / "README.md").read_text()
    for snippet in re.findall(r"```python\n(.*?)```", readme, flags=re.S):
        for decorator in re.findall(r"^@(\w+)", snippet, flags=re.M):
            assert re.search(rf"^(from \S+ )?import .*\b{decorator}\b", snippet, flags=re.M), snippet
