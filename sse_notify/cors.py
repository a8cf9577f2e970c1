"""Opt-in CORS for the stream and JSON endpoints: exact origins, with credentials."""

from __future__ import annotations

from django.http import HttpRequest

from .conf import app_settings


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
