"""Opt-in CORS for the stream and JSON endpoints: exact origins, with credentials."""

from __future__ import annotations

from django.http import HttpRequest

from .conf import app_settings


def cors_headers(request: HttpRequest) -> dict[str, str]:
    """Headers that let an allow-listed origin read the response with cookies.

    Never ``*``: credentials with a wildcard are refused by browsers and would
    let any site read a signed-in user's notifications.
    """
    origin = request.headers.get("Origin")
    if not origin or origin not in tuple(app_settings.CORS_ALLOWED_ORIGINS):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }
