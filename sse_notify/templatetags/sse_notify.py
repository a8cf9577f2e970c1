"""Template tags that put the notification client on a page.

``{% load sse_notify %}`` then, for a signed-in user:

``{% sse_notify %}``
    The client: its configuration as ``json_script`` (stream URL, the cursor the
    page was rendered at, endpoint URLs, CSRF names, toast timeout) plus one
    static JS file and one CSS file. Put it in ``<head>``. Renders nothing for
    anonymous users, so no stream is opened for them.
``{% sse_notify_badge %}``
    A link to the inbox with the unread count, correct before any JS runs; the
    client keeps it live.
``{% sse_notify_list [limit] %}``
    A dropdown (``<details>``, works without JS) with the badge as its toggle and
    the latest notifications.

Each tag is a thin wrapper over a plain function returning the template's
context (``client_context``, ``badge_context``, ``list_context``); the
templates live in ``sse_notify/`` and are overridable the usual Django way.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import get_language, gettext

from .. import links
from ..conf import app_settings
from ..models import Notification, attach_group_items
from ..models import unread_of as unread_of_user
from ..views import cursor_of

register = template.Library()

# Stand-in primary key reversed into the mark-read URL, replaced by "{id}".
_PK_MARK = 987654321


def _user(context: template.Context | dict[str, Any]) -> Any:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return user if user is not None and user.is_authenticated else None


def csrf_header_name() -> str:
    """``CSRF_HEADER_NAME`` (a WSGI ``META`` key) as the HTTP header a client sends."""
    name = str(settings.CSRF_HEADER_NAME)
    if name.startswith("HTTP_"):
        name = name[5:]
    return "-".join(part.capitalize() for part in name.split("_")).replace("Csrftoken", "CSRFToken")


def safe_link(url: Any) -> str:
    """``url`` as a page may link to it, or ``""`` (the policy of ``sse_notify.links.href``).

    Kept for templates and projects that used it; the JSON payloads carry the
    same answer as ``href``.
    """
    return links.href(url) or ""


#: Above this the badge shows "99+" (as GitHub's does): a wider number covers the bell.
BADGE_CAP = 99


def badge_text(count: Any) -> str:
    """The badge's text: the count, or ``"99+"`` past ``BADGE_CAP``."""
    value = max(0, int(count or 0))
    return f"{BADGE_CAP}+" if value > BADGE_CAP else str(value)


def client_strings() -> dict[str, str]:
    """Every user-visible string the JS client shows, translated for this request.

    The client has English defaults for each key and uses these instead, so a
    project translates the JS through Django's own catalogs. ``{n}``, ``{name}``
    and ``{key}`` are filled in by the client.
    """
    return {
        # {key} is the keyboard shortcut to the toasts (Alt+T).
        "toastRegion": gettext("Notifications ({key})"),
        "dismiss": gettext("Dismiss notification"),
        "open": gettext("Open"),
        "markRead": gettext("Mark read"),
        "markUnread": gettext("Mark unread"),
        "from": gettext("from {name}"),
        "more": gettext("+{n} more"),
        "moreLabel": gettext("{n} more notifications: open the list"),
        "justNow": gettext("just now"),
        "newOne": gettext("1 new notification: show"),
        "newMany": gettext("{n} new notifications: show"),
        "unreadSummary": gettext("{n} unread notifications"),
        "desktopOn": gettext("Desktop alerts"),
        "desktopOff": gettext("Turn off desktop alerts"),
        # A group (same category and group key) shown as one entry or toast.
        "groupNew": gettext("{n} new"),
        "groupCount": gettext("{n} in this group"),
        "showAll": gettext("Show all"),
        "markGroupRead": gettext("Mark all read"),
    }


def _with_id_mark(name: str) -> str:
    return reverse(name, args=[_PK_MARK]).replace(str(_PK_MARK), "{id}")


def client_config(request: HttpRequest | None, user: Any, *, tab_title: bool = False) -> dict[str, Any]:
    """What the JS client needs, as rendered into the page (JSON-serialisable)."""
    mark_read = _with_id_mark("sse_notify:mark_read")
    return {
        "user": str(user.pk),
        "streamUrl": reverse("sse_notify:stream"),
        "cursor": cursor_of(user),
        "listUrl": reverse("sse_notify:list"),
        "unreadUrl": reverse("sse_notify:unread_count"),
        "markReadUrl": mark_read,
        "markUnreadUrl": _with_id_mark("sse_notify:mark_unread"),
        "markGroupReadUrl": _with_id_mark("sse_notify:mark_group_read"),
        "preferencesUrl": reverse("sse_notify:preferences"),
        "markAllReadUrl": reverse("sse_notify:mark_all_read"),
        "inboxUrl": reverse("sse_notify:inbox"),
        "csrfCookieName": settings.CSRF_COOKIE_NAME,
        "csrfHeaderName": csrf_header_name(),
        # The cookie wins when readable; this covers CSRF_USE_SESSIONS / HttpOnly cookies.
        "csrfToken": get_token(request) if request is not None else "",
        "unread": unread_of(user, request),
        "toastTimeout": int(app_settings.TOAST_TIMEOUT_MS),
        "retryMs": int(app_settings.RETRY_MS),
        "heartbeatMs": int(float(app_settings.HEARTBEAT) * 1000),
        # Prefix the page's title with the unread count, "(3) Page" (the tag's tab_title=True).
        "tabTitle": bool(tab_title),
        "strings": client_strings(),
        # The strings' language, for dates and relative times ("vor 5 Minuten") and the toasts' lang.
        "locale": get_language(),
    }


def client_context(context: template.Context | dict[str, Any], *, tab_title: bool = False) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    return {"config": client_config(context.get("request"), user, tab_title=tab_title)}


def unread_of(user: Any, request: HttpRequest | None = None) -> int:
    """The user's unread count, counted once per request however many tags ask."""
    cached = getattr(request, "_sse_notify_unread", None)
    if cached is not None and cached[0] == user.pk:
        return int(cached[1])
    count = unread_of_user(user.pk)[0] if user.is_authenticated else 0
    if request is not None:
        request._sse_notify_unread = (user.pk, count)  # type: ignore[attr-defined]
    return count


def badge_context(context: template.Context | dict[str, Any]) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    unread = unread_of(user, context.get("request"))
    return {"unread": unread, "unread_text": badge_text(unread), "inbox_url": reverse("sse_notify:inbox")}


def list_context(context: template.Context | dict[str, Any], limit: int = 5) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    mine = Notification.objects.for_user(user)
    latest = list(mine.grouped().select_related("actor").order_by("-seq")[: max(0, int(limit))])
    attach_group_items(latest, mine)
    return {
        **badge_context(context),  # type: ignore[dict-item]
        "notifications": latest,
        "limit": limit,
        "preferences_url": reverse("sse_notify:preferences"),
        "request_path": getattr(context.get("request"), "path", ""),
    }


def _render(name: str, ctx: dict[str, Any] | None, context: template.Context) -> str:
    if ctx is None:
        return ""
    return render_to_string(name, ctx, request=context.get("request"))


@register.simple_tag(takes_context=True)
def sse_notify(context: template.Context, tab_title: bool = False) -> str:
    """The client (config, JS, CSS) for a signed-in user; nothing for anonymous ones.

    ``{% sse_notify tab_title=True %}`` also shows the unread count in the tab's
    title, "(3) Page", kept live like the badge.
    """
    return _render("sse_notify/client.html", client_context(context, tab_title=tab_title), context)


@register.simple_tag(takes_context=True)
def sse_notify_badge(context: template.Context) -> str:
    """The unread badge: server-rendered count, kept live by the client."""
    return _render("sse_notify/badge.html", badge_context(context), context)


@register.simple_tag(takes_context=True)
def sse_notify_list(context: template.Context, limit: int = 5) -> str:
    """A dropdown of the latest ``limit`` notifications, toggled by the badge."""
    return _render("sse_notify/list.html", list_context(context, limit), context)


@register.filter(name="sse_notify_safe_link")
def sse_notify_safe_link(url: Any) -> str:
    return safe_link(url)
