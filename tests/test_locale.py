"""Every user-visible string is translatable, and the German catalog translates all of them.

The catalog check runs Django's own ``makemessages`` over a copy of the
package: a string added to the code (Python, templates, the JS client's strings
in the tag's config) without a German translation fails it, as does a
translation left fuzzy or a ``.mo`` not compiled from the current ``.po``.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from sse_notify.api import send_notification
from sse_notify.templatetags.sse_notify import client_config, client_strings
from sse_notify.views import inbox
from tests.support import ROOT, need

CATALOG = ROOT / "sse_notify" / "locale" / "de" / "LC_MESSAGES"


def need_gettext_tools() -> None:
    tools = all(shutil.which(tool) for tool in ("xgettext", "msgfmt", "msgcmp"))
    need(tools, "GNU gettext (xgettext, msgfmt, msgcmp) is missing; .ci/run installs Debian's gettext")


@pytest.mark.e2e
def test_the_german_catalog_translates_every_string_in_the_code(tmp_path: Path) -> None:
    need_gettext_tools()
    copy = tmp_path / "sse_notify"
    shutil.copytree(ROOT / "sse_notify", copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    made = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "de", "--no-obsolete"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    # msgcmp: every msgid found in the code must have a translated, non-fuzzy entry in the shipped catalog.
    compared = subprocess.run(
        ["msgcmp", str(CATALOG / "django.po"), str(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compared.returncode == 0, "strings without a German translation:\n" + compared.stderr


@pytest.mark.e2e
def test_the_shipped_mo_is_compiled_from_the_po(tmp_path: Path) -> None:
    need_gettext_tools()
    stats = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "fresh.mo"), str(CATALOG / "django.po")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stats.returncode == 0, stats.stderr
    assert "fuzzy" not in stats.stderr and "untranslated" not in stats.stderr, stats.stderr

    def catalog(path: Path) -> dict[Any, str]:
        with path.open("rb") as fh:
            return dict(gettext.GNUTranslations(fh)._catalog)  # type: ignore[attr-defined]

    assert catalog(CATALOG / "django.mo") == catalog(tmp_path / "fresh.mo"), "run compilemessages"


@pytest.mark.django_db
def test_validation_messages_follow_the_active_language(user: Any) -> None:
    with translation.override("de"), pytest.raises(ValidationError) as caught:
        send_notification(user, "", url="javascript:alert(1)", level="loud")
    errors = caught.value.message_dict
    assert errors["title"] == ["Eine Benachrichtigung braucht einen Titel."]
    assert errors["url"][0].startswith("Das Link-Schema 'javascript' ist nicht erlaubt")
    assert errors["level"][0].startswith("Unbekannte Stufe 'loud'")
    with pytest.raises(ValidationError) as caught:
        send_notification(user, "")
    assert caught.value.message_dict["title"] == ["A notification needs a non-empty title."]


@pytest.mark.django_db
def test_the_inbox_renders_in_german(user: Any) -> None:
    send_notification(user, "Hallo", body="Welt")
    request = RequestFactory().get("/notifications/")
    request.user = user
    with translation.override("de"):
        page = inbox(request).content.decode()
    assert "Benachrichtigungen filtern" in page and "Ausgewählte als gelesen markieren" in page
    assert "Als gelesen markieren" in page and "Mark read" not in page
    assert '<html lang="de">' in page


@pytest.mark.django_db
def test_the_bell_and_the_clients_strings_render_in_german(user: Any) -> None:
    send_notification(user, "Hallo")
    request = RequestFactory().get("/")
    request.user = user
    with translation.override("de"):
        bell = Template("{% load sse_notify %}{% sse_notify_list %}").render(Context({"request": request}))
        config = client_config(request, user)
    assert '<details class="sse-notify-menu" lang="de"' in bell
    assert "Alle als gelesen markieren" in bell and "Mark all read" not in bell
    assert "Alle Benachrichtigungen ansehen" in bell and 'aria-label="Als gelesen markieren"' in bell
    assert config["locale"] == "de"
    assert config["strings"]["dismiss"] == "Benachrichtigung schließen"
    assert all(value for value in config["strings"].values())


def test_every_english_default_of_the_client_has_a_translated_string_from_the_tag() -> None:
    """The JS falls back to its English DEFAULT_STRINGS for any key the config lacks: there must be none."""
    source = (ROOT / "sse_notify" / "static" / "sse_notify" / "sse-notify.js").read_text()
    block = source[source.index("DEFAULT_STRINGS") :]
    block = block[: block.index("};")]
    defaults = set(re.findall(r"^\s*(\w+):", block, re.MULTILINE))
    assert defaults and defaults == set(client_strings())


@pytest.mark.django_db
def test_the_preferences_page_says_email_not_email_address_in_german(user: Any) -> None:
    """django.contrib.auth (earlier in INSTALLED_APPS) translates a bare "Email" as "E-Mail-Adresse":
    the channel's label needs its own context to get the app's "E-Mail"."""
    from sse_notify.preference_views import preferences_page

    request = RequestFactory().get("/notifications/preferences/")
    request.user = user
    with translation.override("de"):
        page = preferences_page(request).content.decode()
    assert "<span>E-Mail</span>" in page and "E-Mail-Adresse" not in page
    assert "In der App" in page and "Auf dem Desktop" in page
