"""The preferences page and its JSON endpoint: the signed-in user's own choices only.

The page is a plain form (works without JavaScript: POST, then redirect back
with a confirmation); ``sse-notify-preferences.js`` enhances it to save each
change at once through the JSON endpoint and to follow changes made in other
tabs (the stream's ``preferences`` event). Required categories are shown,
disabled, with their fixed values.

JSON: ``GET api/preferences/`` → ``{"preferences": [...], "email_modes": [...]}``;
``POST`` (JSON body ``{category: {channel: value}}``, CSRF) applies the
changes all or nothing and answers the same shape, or 400 with
``{"error": "invalid", "errors": {category: [messages]}}``. Anonymous: 403 JSON.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .categories import EmailMode, get_categories
from .preferences import CHANNELS, set_preferences, user_preferences
from .views import _json_csrf_protect, _json_login_required, json_methods, parse_json_body

#: Largest JSON body the endpoint reads (a few categories' worth of choices).
MAX_BODY_BYTES = 64 * 1024


def _email_modes() -> list[dict[str, str]]:
    return [{"value": value, "label": str(label)} for value, label in EmailMode.choices]


def _payload(preferences: list[dict[str, Any]]) -> dict[str, Any]:
    return {"preferences": preferences, "email_modes": _email_modes()}


def _bad_request(error: str, detail: str, errors: dict[str, Any] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=400)


@json_methods("GET", "POST")
@_json_login_required
@_json_csrf_protect
def preferences_api(request: HttpRequest) -> HttpResponse:
    """GET the user's preferences; POST changes (JSON, CSRF-checked like every POST here)."""
    if request.method == "GET":
        return JsonResponse(_payload(user_preferences(request.user)))  # type: ignore[arg-type]
    if len(request.body) > MAX_BODY_BYTES:
        return _bad_request("too_large", _("The body is over %(limit)d bytes.") % {"limit": MAX_BODY_BYTES})
    try:
        changes = parse_json_body(request)
    except ValueError:  # UnicodeDecodeError is one
        return _bad_request("invalid_json", _("The body must be JSON: {category: {channel: value}}."))
    if not isinstance(changes, dict):
        return _bad_request("invalid_json", _("The body must be a JSON object: {category: {channel: value}}."))
    try:
        result = set_preferences(request.user, changes)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _bad_request("invalid", _("Some preferences were not accepted; nothing was changed."), exc.message_dict)
    return JsonResponse(_payload(result))


def _form_changes(request: HttpRequest) -> dict[str, dict[str, Any]]:
    """The page's form as ``set_preferences`` changes.

    Only categories the form listed (``category`` inputs) change: a category
    added after the page was rendered keeps its defaults. An unchecked box is
    absent from the POST, so its absence means off. Required categories are
    disabled in the form and not sent; they are skipped here.
    """
    known = get_categories()
    changes: dict[str, dict[str, Any]] = {}
    for slug in request.POST.getlist("category"):
        category = known.get(slug)
        if category is None or category.required:
            continue
        changes[slug] = {
            "in_app": request.POST.get(f"{slug}-in_app") == "on",
            "desktop": request.POST.get(f"{slug}-desktop") == "on",
            "email": request.POST.get(f"{slug}-email", category.email),
        }
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def preferences_page(request: HttpRequest) -> HttpResponse:
    """The preferences page (CSRF by the middleware, as for any Django form)."""
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            set_preferences(request.user, _form_changes(request))  # type: ignore[arg-type]
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return HttpResponseRedirect(reverse("sse_notify:preferences") + "?saved=1")
    preferences = user_preferences(request.user)  # type: ignore[arg-type]
    return render(
        request,
        "sse_notify/preferences.html",
        {
            "preferences": preferences,
            "email_modes": _email_modes(),
            "channels": CHANNELS,
            "errors": errors,
            "saved": request.GET.get("saved") == "1" and not errors,
            "api_url": reverse("sse_notify:preferences_api"),
            "inbox_url": reverse("sse_notify:inbox"),
        },
        status=400 if errors else 200,
    )
