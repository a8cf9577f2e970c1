"""Build the email for a set of notifications: subject, plain text, HTML, headers.

The bodies come from templates a project may override
(``sse_notify/email/subject.txt``, ``body.txt``, ``body.html``), rendered in the
recipient's language (``SSE_NOTIFY["EMAIL_LANGUAGE"]``, else ``LANGUAGE_CODE``).
Every link is absolute (``SSE_NOTIFY["EMAIL_BASE_URL"]``, else the current
``django.contrib.sites`` domain over https).

Notifications sent with the same ``group_key`` in the same category show as one
entry with a count ("New comment on Issue 42 — 3 notifications"), newest first.
An email whose categories can be turned off carries the RFC 8058 one-click
unsubscribe headers; one made only of ``required`` categories has none (receipts
and security messages have no way out, by the project's own declaration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.module_loading import import_string

from .conf import app_settings
from .models import Notification
from .unsubscribe import make_token, optional_categories

#: Entries listed in one email; the rest are counted with a link to the inbox.
MAX_ENTRIES = 50
#: Items of a group shown under its entry.
MAX_GROUP_ITEMS = 3

SUBJECT_TEMPLATE = "sse_notify/email/subject.txt"
TEXT_TEMPLATE = "sse_notify/email/body.txt"
HTML_TEMPLATE = "sse_notify/email/body.html"


def check_email(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check ``sse_notify.W030``: a category emails by default, but links cannot be made absolute."""
    from .categories import get_categories

    try:
        emailing = [slug for slug, c in get_categories().items() if c.email != "off"]
    except ImproperlyConfigured:
        return []  # E020 reports it
    if not emailing or app_settings.EMAIL_BASE_URL or apps.is_installed("django.contrib.sites"):
        return []
    return [
        Warning(
            f"Categories {', '.join(map(repr, emailing))} are emailed, but emails cannot link back to the site: "
            "sse_notify_email will refuse to run.",
            hint="Set SSE_NOTIFY['EMAIL_BASE_URL'] = 'https://your.site' (or install django.contrib.sites).",
            id="sse_notify.W030",
        )
    ]


def site_url() -> str:
    """The scheme and host the emails' links start with (no trailing slash)."""
    base = app_settings.EMAIL_BASE_URL
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImproperlyConfigured(
                f"SSE_NOTIFY['EMAIL_BASE_URL'] is {base!r}; give scheme and host, e.g. 'https://example.com'."
            )
        return base.rstrip("/")
    if apps.is_installed("django.contrib.sites"):
        from django.contrib.sites.models import Site

        return f"https://{Site.objects.get_current().domain}"
    raise ImproperlyConfigured(
        "Notification emails need absolute links: set SSE_NOTIFY['EMAIL_BASE_URL'] = 'https://example.com' "
        "(or install django.contrib.sites)."
    )


@dataclass
class Entry:
    """One line of an email: a notification, or a group of them (same category and group_key)."""

    title: str
    body: str
    url: str
    category: str
    created_at: datetime
    items: list[Notification] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def shown_items(self) -> list[Notification]:
        return self.items[:MAX_GROUP_ITEMS] if self.count > 1 else []


class Composer:
    """Builds the emails of one pass: what is the same for all of them is looked up once.

    That is the base URL, the declared categories, the language setting, and the fixed
    links (per language: ``i18n_patterns`` may put it in the path).
    """

    def __init__(self) -> None:
        from .categories import get_categories

        self.base = site_url()
        self.categories = get_categories()
        setting = app_settings.EMAIL_LANGUAGE
        self._language = import_string(setting) if isinstance(setting, str) else setting
        self._fixed: dict[tuple[str, str | None], str] = {}

    def language(self, user: Any) -> str:
        return (self._language(user) if self._language else None) or settings.LANGUAGE_CODE

    # Links ------------------------------------------------------------------------------

    def absolute(self, url: str) -> str:
        return urljoin(self.base + "/", url)

    def _fixed_url(self, name: str, fallback: str | None = None) -> str:
        key = (name, translation.get_language())
        if key not in self._fixed:
            try:
                self._fixed[key] = self.absolute(reverse(name))
            except NoReverseMatch:
                if fallback is None:
                    raise
                self._fixed[key] = self._fixed_url(fallback)
        return self._fixed[key]

    def inbox_url(self) -> str:
        return self._fixed_url("sse_notify:inbox")

    def preferences_url(self) -> str:
        return self._fixed_url("sse_notify:preferences", fallback="sse_notify:inbox")

    def notification_url(self, notification: Notification) -> str:
        # The link policy (api.check_url) allowed it at send time: absolute http(s)/mailto or relative.
        return self.absolute(notification.url) if notification.url else self.inbox_url()

    # Messages ---------------------------------------------------------------------------

    def entries(self, notifications: Sequence[Notification]) -> list[Entry]:
        """Group ``notifications`` (any order) into entries, newest first."""
        entries: dict[tuple[str, str] | int, Entry] = {}
        for n in sorted(notifications, key=lambda n: (n.created_at, n.pk), reverse=True):
            key: tuple[str, str] | int = (n.category, n.group_key) if n.group_key else n.pk
            entry = entries.get(key)
            if entry is None:
                category = self.categories.get(n.category)
                entry = entries[key] = Entry(
                    title=n.title,
                    body=n.body,
                    url=self.notification_url(n),
                    category=str(category.label) if category else n.category,
                    created_at=n.created_at,
                )
            entry.items.append(n)
        return list(entries.values())

    def message(self, user: Any, notifications: Sequence[Notification], mode: str) -> EmailMultiAlternatives:
        """The email telling ``user`` about ``notifications`` (``mode``: immediate, hourly or daily)."""
        language = self.language(user)
        with translation.override(language):
            entries = self.entries(notifications)
            optional = optional_categories({n.category for n in notifications}, self.categories)
            unsubscribe_url = ""
            if optional:
                token = make_token(user.pk, [c.slug for c in optional])
                unsubscribe_url = self.absolute(reverse("sse_notify:unsubscribe", args=[token]))
            context = {
                "user": user,
                "mode": mode,
                "count": len(notifications),
                "entries": entries[:MAX_ENTRIES],
                "more": max(0, len(entries) - MAX_ENTRIES),
                "site_url": self.base,
                "inbox_url": self.inbox_url(),
                "preferences_url": self.preferences_url(),
                "unsubscribe_url": unsubscribe_url,
                "unsubscribe_categories": [str(c.label) for c in optional],
                "language": language,
            }
            # A subject is one line: newlines in a title would be a header injection.
            subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
            if "=?" in subject:
                # Text that looks like an RFC 2047 encoded word would be decoded by mail
                # clients (a title "=?utf-8?b?...?=" shown as other words): encode it
                # ourselves, so every client shows the literal text.
                subject = Header(subject, "utf-8", maxlinelen=998).encode()
            text = render_to_string(TEXT_TEMPLATE, context)
            html = render_to_string(HTML_TEMPLATE, context)
        headers = {"Auto-Submitted": "auto-generated"}  # RFC 3834: no vacation auto-replies.
        if unsubscribe_url:
            # RFC 8058 section 3.1: an https URI in List-Unsubscribe, and the one-click marker.
            headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message = EmailMultiAlternatives(subject, text, to=[address_of(user)], headers=headers)
        message.attach_alternative(html, "text/html")
        return message


def address_of(user: Any) -> str:
    return getattr(user, user.get_email_field_name(), "") or ""
