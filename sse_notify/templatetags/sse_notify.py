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
from urllib.parse import urlsplit

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse

from ..conf import app_settings
from ..models import Notification
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
    """``url`` if a browser may follow it (http, https or relative), else ``""``.

    Notifications are validated on send, but rows made another way (a shell, a
    migration) are not: the page never renders a ``javascript:`` or ``data:`` link.
    """
    url = str(url or "").strip()
    if not url or any(ord(ch) < 32 for ch in url) or "\\" in url or url.startswith("//"):
        return ""
    scheme = urlsplit(url).scheme.lower()
    return url if scheme in ("", "http", "https") else ""


def client_config(request: HttpRequest | None, user: Any) -> dict[str, Any]:
    """What the JS client needs, as rendered into the page (JSON-serialisable)."""
    mark_read = reverse("sse_notify:mark_read", args=[_PK_MARK]).replace(str(_PK_MARK), "{id}")
    return {
        "user": str(user.pk),
        "streamUrl": reverse("sse_notify:stream"),
        "cursor": cursor_of(user),
        "listUrl": reverse("sse_notify:list"),
        "unreadUrl": reverse("sse_notify:unread_count"),
        "markReadUrl": mark_read,
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
    }


def client_context(context: template.Context | dict[str, Any]) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    return {"config": client_config(context.get("request"), user)}


def unread_of(user: Any, request: HttpRequest | None = None) -> int:
    """The user's unread count, counted once per request however many tags ask."""
    cached = getattr(request, "_sse_notify_unread", None)
    if cached is not None and cached[0] == user.pk:
        return int(cached[1])
    count = Notification.objects.for_user(user).unread_count()
    if request is not None:
        request._sse_notify_unread = (user.pk, count)  # type: ignore[attr-defined]
    return count


def badge_context(context: template.Context | dict[str, Any]) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    return {"unread": unread_of(user, context.get("request")), "inbox_url": reverse("sse_notify:inbox")}


def list_context(context: template.Context | dict[str, Any], limit: int = 5) -> dict[str, Any] | None:
    user = _user(context)
    if user is None:
        return None
    latest = list(Notification.objects.for_user(user).select_related("actor").order_by("-seq")[: max(0, int(limit))])
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
def sse_notify(context: template.Context) -> str:
    """The client (config, JS, CSS) for a signed-in user; nothing for anonymous ones."""
    return _render("sse_notify/client.html", client_context(context), context)


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
