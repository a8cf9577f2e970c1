"""The one link policy: which notification links are accepted, shown and followed.

Decided here once, on the server, and used everywhere a link appears:

- ``check_url`` validates a link at send time (``send_notification``, the admin,
  the command): relative links and the schemes in ``URL_SCHEMES`` (by default
  http, https and mailto) are accepted.
- ``href`` turns a stored link into what a page may render as ``<a href>``, or
  ``None``. The template tags and the JSON payloads (``href`` next to ``url``)
  use it, so the browser client never decides on its own: it shows a link
  exactly when the server sent an ``href``.

``href`` re-applies the policy to stored rows because not every row went through
``check_url`` (a shell, a migration, ``bulk_create``), and ``URL_SCHEMES`` may
have been narrowed since. ``javascript:``, ``data:`` and ``vbscript:`` are
never links, whatever the settings say.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .conf import app_settings

#: Longest link accepted at send time.
MAX_URL_LENGTH = 2000

#: Schemes that run code or carry a document in the link itself: never links.
NEVER_SCHEMES = frozenset({"javascript", "data", "vbscript"})


def check_url(url: str) -> str | None:
    """Return why ``url`` may not be a notification link, or None if it may.

    Relative links (``/orders/7/``) and the schemes in ``URL_SCHEMES`` are
    allowed; ``javascript:``, ``data:`` and protocol-relative ``//host`` are not.
    """
    if any(ord(ch) < 33 for ch in url) or "\\" in url:
        return _("Link may not contain spaces, control characters or backslashes.")
    if len(url) > MAX_URL_LENGTH:
        return _("Link is over %(limit)d characters.") % {"limit": MAX_URL_LENGTH}
    parts = urlsplit(url)
    if not parts.scheme:
        if url.startswith("//"):
            return _("Protocol-relative links (//host) are not allowed; give the scheme.")
        return None
    allowed = tuple(app_settings.URL_SCHEMES)
    scheme = parts.scheme.lower()
    if scheme not in allowed or scheme in NEVER_SCHEMES:
        return _("Link scheme %(scheme)r is not allowed; use one of %(allowed)s or a relative link.") % {
            "scheme": parts.scheme,
            "allowed": ", ".join(allowed),
        }
    return None


def href(url: Any) -> str | None:
    """The link a page may render for a stored ``url``, or None when it shows none.

    Surrounding whitespace is ignored (as a browser would); anything else that
    ``check_url`` refuses yields None, as does an empty link.
    """
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or check_url(url) is not None:
        return None
    return url
