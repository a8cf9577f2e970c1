"""System checks: configuration mistakes reported at startup with the fix.

Ids: E001 channels not importable, E002 channel layer alias missing, E003
unknown ``SSE_NOTIFY`` key, E004 bad ``SSE_NOTIFY`` value, E005 bad CORS
origin, W001 in-memory layer in production, W002 no ``ASGI_APPLICATION``,
W003/W004 channels-redis traps (see ``check_channel_layer``).
"""

from __future__ import annotations

from numbers import Real
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import DEFAULTS


def _positive_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value > 0


def _positive_int_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


_VALIDATORS = {
    "HEARTBEAT": (_positive_number, "a number of seconds > 0"),
    "MAX_STREAM_LIFETIME": (_positive_number, "a number of seconds > 0"),
    "POLL_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "PUBLISH_TIMEOUT": (_positive_number, "a number of seconds > 0"),
    "RETRY_MS": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "MAX_STREAM_BYTES": (_positive_int_or_none, "an int > 0 or None"),
    "MAX_STREAMS_PER_USER": (_positive_int_or_none, "an int > 0 or None"),
    "MAX_STREAMS_PER_IP": (_positive_int_or_none, "an int > 0 or None"),
    "MAX_STREAMS": (_positive_int_or_none, "an int > 0 or None"),
    "QUEUE_SIZE": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "REPLAY_LIMIT": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "DB_THREADS": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "GROUP_SEND_THRESHOLD": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "BODY_MAX_LENGTH": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "DATA_MAX_BYTES": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "PAGE_SIZE": (lambda v: _positive_int_or_none(v) and v is not None, "an int > 0"),
    "TOAST_TIMEOUT_MS": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "CHANNEL_LAYER": (lambda v: isinstance(v, str) and bool(v), "a CHANNEL_LAYERS alias (str)"),
    "URL_SCHEMES": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) and s not in ("javascript", "data", "vbscript") for s in v),
        "a list of scheme names, without javascript, data or vbscript",
    ),
    "CORS_ALLOWED_ORIGINS": (lambda v: isinstance(v, (list, tuple)), "a list of origins"),
}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    user = getattr(settings, "SSE_NOTIFY", None)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return [Error(f"SSE_NOTIFY must be a dict, not {type(user).__name__}.", hint="SSE_NOTIFY = {...}", id="sse_notify.E004")]
    for key, value in user.items():
        if key not in DEFAULTS:
            errors.append(
                Error(
                    f"Unknown setting SSE_NOTIFY[{key!r}].",
                    hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                    id="sse_notify.E003",
                )
            )
            continue
        valid, expected = _VALIDATORS.get(key, (lambda v: True, ""))
        if not valid(value):
            errors.append(
                Error(f"SSE_NOTIFY[{key!r}] is {value!r}; it must be {expected}.", hint=f"Default: {DEFAULTS[key]!r}.", id="sse_notify.E004")
            )
    origins = user.get("CORS_ALLOWED_ORIGINS", ())
    if isinstance(origins, (list, tuple)):
        for origin in origins:
            parts = urlsplit(origin) if isinstance(origin, str) else None
            if (
                parts is None
                or origin == "*"
                or parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path
                or parts.query
                or parts.fragment
            ):
                errors.append(
                    Error(
                        f"SSE_NOTIFY['CORS_ALLOWED_ORIGINS'] entry {origin!r} is not an exact origin.",
                        hint="Give scheme://host[:port] with no path, e.g. 'https://app.example.com'; '*' is never allowed with credentials.",
                        id="sse_notify.E005",
                    )
                )
    if not getattr(settings, "ASGI_APPLICATION", None):
        errors.append(
            Warning(
                "ASGI_APPLICATION is not set; the notification stream only works under an ASGI server.",
                hint="Add 'daphne' first in INSTALLED_APPS and set ASGI_APPLICATION = 'yourproject.asgi.application'.",
                id="sse_notify.W002",
            )
        )
    return errors


def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        import channels.layers  # noqa: F401
    except ImportError:
        return [
            Error(
                "sse_notify needs the 'channels' package.",
                hint="pip install channels daphne, and add 'daphne' to INSTALLED_APPS.",
                id="sse_notify.E001",
            )
        ]
    alias = (getattr(settings, "SSE_NOTIFY", None) or {}).get("CHANNEL_LAYER", DEFAULTS["CHANNEL_LAYER"])
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if alias not in layers:
        return [
            Error(
                f"CHANNEL_LAYERS has no {alias!r} layer, which sse_notify uses to reach other processes.",
                hint=(
                    "Add CHANNEL_LAYERS = {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}} for one "
                    "process, or channels_redis.core.RedisChannelLayer for production; or set SSE_NOTIFY['CHANNEL_LAYER']."
                ),
                id="sse_notify.E002",
            )
        ]
    backend = str(layers[alias].get("BACKEND", ""))
    errors: list[CheckMessage] = []
    if backend.endswith("InMemoryChannelLayer") and not settings.DEBUG:
        errors.append(
            Warning(
                f"CHANNEL_LAYERS[{alias!r}] is the in-memory layer with DEBUG=False.",
                hint=(
                    "It reaches one process only: notifications sent from other processes (workers, cron, other "
                    "Daphne processes) arrive only through the database poll (SSE_NOTIFY['POLL_INTERVAL']). "
                    "Use channels_redis in production."
                ),
                id="sse_notify.W001",
            )
        )
    return errors
