"""W007/W008: settings under which the client's JS and CSS cannot load are reported with the fix."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from sse_notify.checks import check_static_files

APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sse_notify",
]


def ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return [m.id for m in check_static_files() if m.id]


def test_a_fresh_project_set_up_as_the_readme_says_is_clean() -> None:
    assert ids(INSTALLED_APPS=APPS, DEBUG=True, STATIC_ROOT=None) == []


def test_production_with_static_root_is_clean() -> None:
    assert ids(INSTALLED_APPS=APPS, DEBUG=False, STATIC_ROOT="/srv/static") == []


def test_w007_daphne_after_staticfiles_makes_runserver_wsgi() -> None:
    apps = [a for a in APPS if a != "daphne"] + ["daphne"]
    with override_settings(INSTALLED_APPS=apps, DEBUG=True):
        [message] = check_static_files()
    assert message.id == "sse_notify.W007"
    assert "501" in message.msg and message.hint == "Put 'daphne' first in INSTALLED_APPS."


def test_w008_without_staticfiles_app() -> None:
    with override_settings(INSTALLED_APPS=[a for a in APPS if a != "django.contrib.staticfiles"]):
        [message] = check_static_files()
    assert message.id == "sse_notify.W008"
    assert "Add 'django.contrib.staticfiles'" in str(message.hint) and "collectstatic" in str(message.hint)


def test_w008_debug_off_without_static_root() -> None:
    with override_settings(INSTALLED_APPS=APPS, DEBUG=False, STATIC_ROOT=None):
        [message] = check_static_files()
    assert message.id == "sse_notify.W008"
    assert "STATIC_ROOT" in message.msg
    assert "WhiteNoise" in str(message.hint) and "runserver" in str(message.hint)


def test_w008_not_raised_when_whitenoise_serves_from_the_finders() -> None:
    middleware = ["whitenoise.middleware.WhiteNoiseMiddleware"]
    assert (
        ids(INSTALLED_APPS=APPS, DEBUG=False, STATIC_ROOT=None, MIDDLEWARE=middleware, WHITENOISE_USE_FINDERS=True)
        == []
    )


def test_w008_not_raised_for_a_storage_that_is_not_on_disk() -> None:
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert ids(INSTALLED_APPS=APPS, DEBUG=False, STATIC_ROOT=None, STORAGES=storages) == []


@pytest.mark.django_db
def test_the_check_is_registered() -> None:
    with (
        override_settings(DEBUG=False, STATIC_ROOT=None),
        pytest.raises(Exception, match=r"sse_notify\.W008"),
    ):
        call_command("check", "--fail-level", "WARNING", stdout=StringIO(), stderr=StringIO())
