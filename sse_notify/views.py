"""JSON endpoints for the browser client, and a plain inbox page.

Every view works on ``request.user``'s own notifications only: another user's
id is indistinguishable from a missing one (404). State changes are POST and
CSRF-protected; the JSON endpoints run Django's own CSRF check themselves so
that a failure answers JSON (``{"error": "csrf_failed"}``, 403) rather than the
middleware's HTML page. Anonymous users get 403 JSON (``not_authenticated``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.decorators import login_not_required, login_required
from django.core.paginator import EmptyPage, Paginator
from django.db import DatabaseError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from . import db
from .compat import csrf_failure
from .conf import app_settings
from .cors import cors_headers
from .models import Level, Notification, NotificationQuerySet, attach_group_items, is_id, unread_of


def json_methods(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Like Django's ``require_http_methods``, but the 405 is JSON like every other error here.

    The JSON endpoints answer every failure as ``{"error", "detail"}``; Django's
    decorator answers an empty ``text/html`` 405, the one odd answer a client
    would have to special-case. Works on sync and async views (the stream).

    A view that only reads (GET, HEAD, OPTIONS) is also exempt from CSRF: it changes
    nothing, and a POST or DELETE to it would otherwise meet the CSRF middleware's
    HTML 403 before this JSON 405.
    """
    allowed = sorted({method.upper() for method in methods})
    read_only = set(allowed) <= {"GET", "HEAD", "OPTIONS"}

    def refuse(request: HttpRequest) -> HttpResponse | None:
        if request.method in allowed:
            return None
        response = JsonResponse(
            {
                "error": "method_not_allowed",
                "detail": _("Use %(methods)s here.") % {"methods": ", ".join(allowed)},
            },
            status=405,
        )
        response["Allow"] = ", ".join(allowed)
        return response

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return refuse(request) or await view(request, *args, **kwargs)

            wrapped: Callable[..., Any] = markcoroutinefunction(async_wrapper)
        else:

            @wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return refuse(request) or view(request, *args, **kwargs)

            wrapped = wrapper
        return csrf_exempt(wrapped) if read_only else wrapped

    return decorator


def parse_json_body(request: HttpRequest) -> Any:
    """``request.body`` parsed, or ``ValueError`` for anything that is not JSON.

    ``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deeply nested
    input such as 5,000 ``[``: without this, a small body is a 500.
    """
    try:
        return json.loads(request.body or b"null")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _json_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 JSON for anonymous users; 503 JSON with ``Retry-After`` while the database is down.

    An outage is logged once per interval (``db.log_error``), as the stream does,
    instead of one traceback per request from every open tab.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            if not request.user.is_authenticated:
                response: HttpResponse = JsonResponse(
                    {"error": "not_authenticated", "detail": _("Sign in to see notifications.")}, status=403
                )
            else:
                response = view(request, *args, **kwargs)
        except DatabaseError as exc:
            db.log_error("notifications endpoint", exc)
            response = JsonResponse(
                {"error": "unavailable", "detail": _("Notifications are unavailable for a moment; retry.")},
                status=503,
                headers={"Retry-After": str(max(1, int(app_settings.RETRY_MS) // 1000))},
            )
        for name, value in cors_headers(request).items():
            response[name] = value
        return response

    # They answer 403 JSON themselves: Django's LoginRequiredMiddleware must not turn
    # that into a redirect to an HTML login page the client would take for data.
    return login_not_required(wrapper)


def _json_csrf_protect(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The middleware's CSRF protection, answering JSON when it fails."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reason = csrf_failure(request)
        if reason:
            return JsonResponse(
                {"error": "csrf_failed", "detail": _("CSRF verification failed: %(reason)s") % {"reason": reason}},
                status=403,
            )
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def cursor_of(user: Any) -> int:
    """The user's current resume cursor (rendered into pages for the first connect)."""
    if not user.is_authenticated:
        return 0
    return unread_of(user.pk)[1]


def _unread(request: HttpRequest) -> int:
    """The badge's count: ``Inbox.unread``, the same number the stream sends."""
    return unread_of(request.user.pk)[0]


def _page(request: HttpRequest, qs: NotificationQuerySet | None = None) -> tuple[Any, Paginator]:
    """A page of entries: a notification, or the newest of a group with its members attached.

    Groups are formed within ``qs`` (the inbox's filters), so an "unread" view
    groups the unread items.
    """
    mine = Notification.objects.for_user(request.user) if qs is None else qs
    qs = mine.grouped().select_related("actor").order_by("-seq")
    paginator = Paginator(qs, app_settings.PAGE_SIZE)
    try:
        number = int(request.GET.get("page", "1"))
        page = paginator.page(number)
    except (ValueError, EmptyPage):
        raise Http404(_("No such page.")) from None
    page.object_list = entries = list(page.object_list)
    attach_group_items(entries, mine)
    return page, paginator


@json_methods("GET")
@_json_login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """``GET ?page=N`` → newest first: ``{results, page, pages, unread, cursor}``."""
    try:
        page, paginator = _page(request)
    except Http404:
        return JsonResponse({"error": "not_found", "detail": _("No such page.")}, status=404)
    return JsonResponse(
        {
            "results": [n.to_dict() for n in page.object_list],
            "page": page.number,
            "pages": paginator.num_pages,
            **dict(zip(("unread", "cursor"), unread_of(request.user.pk), strict=True)),
        }
    )


@json_methods("GET")
@_json_login_required
def unread_count(request: HttpRequest) -> HttpResponse:
    unread, cursor = unread_of(request.user.pk)
    return JsonResponse({"unread": unread, "cursor": cursor})


@json_methods("POST")
@_json_login_required
@_json_csrf_protect
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the user's notifications read; someone else's id is a 404."""
    mine = Notification.objects.for_user(request.user).filter(pk=pk)
    if not mine.exists():
        return JsonResponse({"error": "not_found", "detail": _("No such notification.")}, status=404)
    mine.mark_read()
    return JsonResponse({"id": pk, "read": True, "unread": _unread(request)})


@json_methods("POST")
@_json_login_required
@_json_csrf_protect
def mark_unread(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the user's notifications unread again (the list's per-item action)."""
    mine = Notification.objects.for_user(request.user).filter(pk=pk)
    if not mine.exists():
        return JsonResponse({"error": "not_found", "detail": _("No such notification.")}, status=404)
    mine.mark_unread()
    return JsonResponse({"id": pk, "read": False, "unread": _unread(request)})


@json_methods("POST")
@_json_login_required
@_json_csrf_protect
def mark_group_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Read the group notification ``pk`` belongs to (all its members); someone else's id is a 404."""
    mine = Notification.objects.for_user(request.user)
    entry = mine.filter(pk=pk).first()
    if entry is None:
        return JsonResponse({"error": "not_found", "detail": _("No such notification.")}, status=404)
    group = mine.group_of(entry)
    ids = sorted(group.unread().values_list("pk", flat=True))
    marked = group.mark_read()
    return JsonResponse({"id": pk, "ids": ids, "marked": marked, "read": True, "unread": _unread(request)})


@json_methods("POST")
@_json_login_required
@_json_csrf_protect
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = Notification.objects.for_user(request.user).mark_all_read()
    return JsonResponse({"marked": marked, "unread": 0})


@csrf_exempt  # it changes nothing; a CSRF check would answer Django's HTML 403 first
def api_not_found(request: HttpRequest, anything: str) -> HttpResponse:
    """A URL under ``api/`` that names no endpoint: the JSON 404 the endpoints give (not the
    site's HTML page, CORS headers included), so a client that built a bad URL can read
    what went wrong."""
    response = JsonResponse({"error": "not_found", "detail": _("No such page.")}, status=404)
    for name, value in cors_headers(request).items():
        response[name] = value
    return response


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = default
    return HttpResponseRedirect(target or default)


# The inbox's filters: query parameter -> allowed values (the first is the default).
INBOX_STATES = ("all", "unread")


def inbox_filters(request: HttpRequest) -> dict[str, str]:
    """The inbox's filters from the query string; unknown values fall back to "everything"."""
    state = request.GET.get("state", "")
    level = request.GET.get("level", "")
    return {
        "state": state if state in INBOX_STATES else INBOX_STATES[0],
        "level": level if level in Level.values else "",
    }


def _filtered(qs: NotificationQuerySet, filters: dict[str, str]) -> NotificationQuerySet:
    if filters["state"] == "unread":
        qs = qs.unread()
    if filters["level"]:
        qs = qs.filter(level=filters["level"])
    return qs


def _wants_json(request: HttpRequest) -> bool:
    """The inbox's script asks for JSON; a plain form post (any Accept) gets a redirect."""
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def _inbox_post(request: HttpRequest) -> HttpResponse:
    """Mark all, or the posted ids (``id`` repeated; ``action`` = read|unread|read_group), as asked.

    Reading (``read`` or ``read_group``) an id that is a group's entry reads every
    member of its group.

    One form serves a row's button (one id) and the bulk toolbar (the checked
    ids). Every id must be the user's own: one that is not fails the whole
    request with a 404, as a missing one does, and changes nothing.
    """
    here = reverse("sse_notify:inbox")
    mine = Notification.objects.for_user(request.user)
    read = request.POST.get("action", "read") != "unread"
    ids: list[int] | None
    if "all" in request.POST:
        ids = None
        read = True
        mine.mark_all_read()
    else:
        raw = request.POST.getlist("id")
        if not raw and "action" not in request.POST:
            raise Http404(_("No such notification."))
        if not all(is_id(value) for value in raw):
            # Not an id, or beyond 64 bits (which SQLite cannot even compare): no such row.
            raise Http404(_("No such notification."))
        ids = sorted({int(value) for value in raw})
        chosen = mine.filter(pk__in=ids)
        if chosen.count() != len(ids):
            raise Http404(_("No such notification."))
        if ids and read:
            # A group's entry stands for the whole group (its own button says
            # ``read_group``; a checked entry in the bulk toolbar says ``read``): reading
            # it reads every member, listed or not. Marking unread marks the entry only,
            # which is enough to show the group as unread again.
            members = Q(pk__in=ids, group_key="")
            for n in chosen.exclude(group_key=""):
                members |= Q(pk__in=mine.group_of(n).values("pk"))
            group = mine.filter(members)
            ids = sorted(group.values_list("pk", flat=True))
            group.mark_read()
        elif ids:
            chosen.mark_unread()
    if _wants_json(request):
        return JsonResponse({"ids": ids, "read": read, "unread": _unread(request)})
    return _back(request, here)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """The inbox page: works without JavaScript (forms POST and redirect back).

    ``sse-notify-inbox.js`` enhances it: the same POSTs answer JSON when asked,
    and the page updates in place. GET takes the filters ``state`` (all, unread)
    and ``level``, and ``page``.
    """
    if request.method == "POST":
        try:
            return _inbox_post(request)
        except Http404 as exc:
            if not _wants_json(request):
                raise
            # The inbox's script asked for JSON: its failures are JSON too, like its successes.
            return JsonResponse({"error": "not_found", "detail": str(exc)}, status=404)
    filters = inbox_filters(request)
    page, _paginator = _page(request, _filtered(Notification.objects.for_user(request.user), filters))
    return render(
        request,
        "sse_notify/inbox.html",
        {
            "page": page,
            "notifications": page.object_list,
            "unread": _unread(request),
            "filters": filters,
            "filter_query": _query(filters),
            "states": _filter_links(filters, "state", [("all", _("All")), ("unread", _("Unread"))]),
            "levels": _filter_links(filters, "level", [("", _("Any level")), *Level.choices]),
            "here": request.get_full_path(),
        },
    )


def _query(filters: dict[str, str]) -> str:
    """The filters as a query string, leaving out the defaults (``state=all``, any level)."""
    return urlencode({key: value for key, value in filters.items() if value and value != INBOX_STATES[0]})


def _filter_links(filters: dict[str, str], key: str, choices: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """One link per choice of ``key``, keeping the other filters (and back to page 1)."""
    return [
        {"label": label, "href": "?" + _query({**filters, key: value}), "current": filters[key] == value}
        for value, label in choices
    ]
