"""Opt-in CORS for the stream and JSON endpoints: exact origins, with credentials."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from .conf import app_settings

#: Request headers a cross-origin client may send: the stream's resume cursor, the
#: CSRF token of the POST endpoints, JSON bodies, and the no-cache header that
#: EventSource polyfills add.
ALLOWED_HEADERS = ("Last-Event-ID", "X-CSRFToken", "Content-Type", "Cache-Control")
#: Seconds a browser may reuse a preflight answer.
PREFLIGHT_MAX_AGE = 600


def cors_headers(request: HttpRequest) -> dict[str, str]:
    """Headers that let an allow-listed origin read the response with cookies.

    Never ``*``: credentials with a wildcard are refused by browsers and would
    let any site read a signed-in user's notifications. A ``"*"`` entry in the
    setting (refused by check E005) matches nothing, not even ``Origin: *``.
    While an allow-list is set the answer depends on ``Origin``, so every
    response says ``Vary: Origin`` (refusals too), or a shared cache could hand
    one origin's response to another.
    """
    allowed = tuple(o for o in app_settings.CORS_ALLOWED_ORIGINS if o != "*")
    if not allowed:
        return {}
    origin = request.headers.get("Origin")
    if not origin or origin not in allowed:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def preflight_response(request: HttpRequest, methods: tuple[str, ...]) -> HttpResponse | None:
    """The answer to a CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``), else None.

    An allow-listed origin is told the methods and headers it may use; any other
    origin gets an empty 204 without them, which the browser treats as a refusal.
    """
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    response = HttpResponse(status=204)
    headers = cors_headers(request)
    if "Access-Control-Allow-Origin" in headers:
        headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    for name, value in headers.items():
        response[name] = value
    return response


def allow_preflight(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer CORS preflights for a view (sync or async) that accepts ``methods``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
                return preflight_response(request, methods) or await view(request, *args, **kwargs)

            return markcoroutinefunction(async_wrapper)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return preflight_response(request, methods) or view(request, *args, **kwargs)

        return wrapper

    return decorator
