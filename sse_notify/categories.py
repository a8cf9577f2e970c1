"""Notification categories: declared once by the project, read everywhere.

A category is a short slug on each notification (``"comments"``, ``"security"``)
plus what a person chooses per category: whether it shows in the app (toast and
badge), as a desktop notification, and whether (and how often) it is emailed.
The project declares its categories once, in ``SSE_NOTIFY["CATEGORIES"]``::

    SSE_NOTIFY = {
        "CATEGORIES": {
            "comments": {
                "label": _("Comments"),
                "description": _("Someone commented on an issue you follow."),
                "in_app": True, "desktop": False, "email": "daily",
            },
            "security": {"label": _("Security"), "email": "immediate", "required": True},
        },
    }

Every key but ``label`` is optional. ``required`` categories (receipts, security,
account messages) always use their defaults: nobody can turn them off.

Why a ``"default"`` category always exists: notifications sent before categories
existed (and sends that name none) belong to it, so a project that declares no
categories works as before, and old rows stay valid when it starts declaring
some. A project may declare ``"default"`` itself to relabel it or change its
defaults.

Declarations are read from settings on every call (cheap: a dict walk) so that
``override_settings`` works; they are validated by the system checks
(``sse_notify.E020``) and, at the latest, on first use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .conf import app_settings

#: The category of a notification sent without one.
DEFAULT_CATEGORY = "default"
#: Longest slug (the width of ``Notification.category``).
SLUG_MAX_LENGTH = 50
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class EmailMode(models.TextChoices):
    """How notifications of a category are emailed when they were not seen in the app."""

    OFF = "off", _("Never")
    IMMEDIATE = "immediate", _("At once")
    HOURLY = "hourly", _("Hourly digest")
    DAILY = "daily", _("Daily digest")


EMAIL_MODES = tuple(EmailMode.values)
_KEYS = {"label", "description", "in_app", "desktop", "email", "required"}


@dataclass(frozen=True)
class Category:
    """One declared category with the defaults each person starts from."""

    slug: str
    label: str | Promise
    description: str | Promise = ""
    #: Shown in the app (toast and unread badge) unless the person turns it off.
    in_app: bool = True
    #: Shown as a desktop notification (when the browser allows it).
    desktop: bool = True
    #: One of ``EMAIL_MODES``.
    email: str = "off"
    #: Nobody can change their preferences for it.
    required: bool = False

    def defaults(self) -> dict[str, Any]:
        return {"in_app": self.in_app, "desktop": self.desktop, "email": self.email}


def _implicit_default() -> Category:
    return Category(DEFAULT_CATEGORY, _("Other notifications"), _("Notifications without a more specific category."))


def parse_category(slug: Any, spec: Any) -> Category:
    """Build a ``Category`` from one settings entry; raise ``ImproperlyConfigured`` if wrong."""
    where = f"SSE_NOTIFY['CATEGORIES'][{slug!r}]"
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > SLUG_MAX_LENGTH:
        raise ImproperlyConfigured(
            f"Category slug {slug!r} must be lowercase letters, digits, '-' or '_' "
            f"(at most {SLUG_MAX_LENGTH} characters)."
        )
    if not isinstance(spec, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict with at least a 'label'.")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}.")
    if "label" not in spec or not str(spec["label"]).strip():
        raise ImproperlyConfigured(f"{where} needs a non-empty 'label'.")
    for key in ("in_app", "desktop", "required"):
        if key in spec and not isinstance(spec[key], bool):
            raise ImproperlyConfigured(f"{where}['{key}'] must be True or False, not {spec[key]!r}.")
    if spec.get("email", "off") not in EMAIL_MODES:
        raise ImproperlyConfigured(f"{where}['email'] must be one of {', '.join(EMAIL_MODES)}, not {spec['email']!r}.")
    return Category(slug=slug, **dict(spec))


def get_categories() -> dict[str, Category]:
    """Every category in declaration order, ``"default"`` last unless declared."""
    declared = app_settings.CATEGORIES or {}
    if not isinstance(declared, Mapping):
        raise ImproperlyConfigured("SSE_NOTIFY['CATEGORIES'] must be a dict of slug -> options.")
    categories = {slug: parse_category(slug, spec) for slug, spec in declared.items()}
    if DEFAULT_CATEGORY not in categories:
        categories[DEFAULT_CATEGORY] = _implicit_default()
    return categories


def get_category(slug: str) -> Category:
    """The category named ``slug``; ``ValidationError`` (naming the known ones) if none is."""
    categories = get_categories()
    try:
        return categories[slug]
    except (KeyError, TypeError):
        known = ", ".join(map(repr, categories))
        raise ValidationError(
            {
                "category": gettext("Unknown category %(slug)r; declared categories: %(known)s.")
                % {"slug": slug, "known": known}
            },
            code="unknown_category",
        ) from None


def check_categories(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check ``sse_notify.E020``: every declared category is well-formed."""
    try:
        get_categories()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See the README's Categories section.", id="sse_notify.E020")]
    return []
