"""JSON endpoints for the browser client, and a plain inbox page.

Every view works on ``request.user``'s own notifications only: another user's
id is indistinguishable from a missing one (404). State changes are POST and
CSRF-protected; the JSON endpoints run Django's own CSRF check themselves so
that a failure answers JSON (``{"error": "csrf_failed"}``, 403) rather than the
middleware's HTML page. Anonymous users get 403 JSON (``not_authenticated``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .conf import app_settings
from .cors import cors_headers
from .models import Inbox, Notification


def _json_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            response: HttpResponse = JsonResponse(
                {"error": "not_authenticated", "detail": "Sign in to see notifications."}, status=403
            )
        else:
            response = view(request, *args, **kwargs)
        for name, value in cors_headers(request).items():
            response[name] = value
        return response

    return wrapper


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, returning the failure reason instead of an HTML page."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _json_csrf_protect(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The middleware's CSRF protection, answering JSON when it fails."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        check = _CsrfCheck(lambda _request: HttpResponse())
        check.process_request(request)
        reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
        if reason:
            return JsonResponse({"error": "csrf_failed", "detail": f"CSRF verification failed: {reason}"}, status=403)
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def cursor_of(user: Any) -> int:
    """The user's current resume cursor (rendered into pages for the first connect)."""
    if not user.is_authenticated:
        return 0
    return Inbox.objects.filter(user_id=user.pk).values_list("last_seq", flat=True).first() or 0


def _page(request: HttpRequest) -> tuple[Any, Paginator]:
    qs = Notification.objects.for_user(request.user).select_related("actor").order_by("-seq")
    paginator = Paginator(qs, app_settings.PAGE_SIZE)
    try:
        number = int(request.GET.get("page", "1"))
        page = paginator.page(number)
    except (ValueError, EmptyPage):
        raise Http404("No such page.") from None
    return page, paginator


@require_GET
@_json_login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """``GET ?page=N`` → newest first: ``{results, page, pages, unread, cursor}``."""
    try:
        page, paginator = _page(request)
    except Http404:
        return JsonResponse({"error": "not_found", "detail": "No such page."}, status=404)
    return JsonResponse(
        {
            "results": [n.to_dict() for n in page.object_list],
            "page": page.number,
            "pages": paginator.num_pages,
            "unread": Notification.objects.for_user(request.user).unread_count(),
            "cursor": cursor_of(request.user),
        }
    )


@require_GET
@_json_login_required
def unread_count(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"unread": Notification.objects.for_user(request.user).unread_count(), "cursor": cursor_of(request.user)}
    )


@require_POST
@_json_login_required
@_json_csrf_protect
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the user's notifications read; someone else's id is a 404."""
    mine = Notification.objects.for_user(request.user).filter(pk=pk)
    if not mine.exists():
        return JsonResponse({"error": "not_found", "detail": "No such notification."}, status=404)
    mine.mark_read()
    return JsonResponse({"id": pk, "read": True, "unread": Notification.objects.for_user(request.user).unread_count()})


@require_POST
@_json_login_required
@_json_csrf_protect
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = Notification.objects.for_user(request.user).mark_read()
    return JsonResponse({"marked": marked, "unread": 0})


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = default
    return HttpResponseRedirect(target or default)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """A plain HTML inbox: works without JavaScript (forms POST and redirect back)."""
    if request.method == "POST":
        from django.urls import reverse

        here = reverse("sse_notify:inbox")
        mine = Notification.objects.for_user(request.user)
        if "all" in request.POST:
            mine.mark_read()
        else:
            try:
                pk = int(request.POST.get("id", ""))
            except ValueError:
                raise Http404("No such notification.") from None
            one = mine.filter(pk=pk)
            if not one.exists():
                raise Http404("No such notification.")
            if request.POST.get("action") == "unread":
                one.mark_unread()
            else:
                one.mark_read()
        return _back(request, here)
    page, _paginator = _page(request)
    return render(
        request,
        "sse_notify/inbox.html",
        {
            "page": page,
            "notifications": page.object_list,
            "unread": Notification.objects.for_user(request.user).unread_count(),
        },
    )
