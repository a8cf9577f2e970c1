"""System checks: configuration mistakes reported at startup with the fix.

Ids: E001 channels not importable, E002 channel layer alias missing, E003
unknown ``SSE_NOTIFY`` key, E004 bad ``SSE_NOTIFY`` value, E005 bad CORS
origin, W001 in-memory layer in production, W002 no ``ASGI_APPLICATION``,
W003-W006 channels-redis / redis-py 8 traps (see ``check_redis_layer``),
W007-W008 the client's JS and CSS cannot load (see ``check_static_files``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import RETIRED, SECONDS, SETTINGS, app_settings


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    user = getattr(settings, "SSE_NOTIFY", None)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return [
            Error(
                f"SSE_NOTIFY is {user!r}; it must be a dict.",
                hint="SSE_NOTIFY = {...}",
                id="sse_notify.E004",
            )
        ]
    for key, value in user.items():
        setting = SETTINGS.get(key)
        if key in RETIRED:
            errors.append(
                Error(
                    f"SSE_NOTIFY[{key!r}] is no longer a setting; it is the internal constant {RETIRED[key]}.",
                    hint=f"Remove {key!r} from SSE_NOTIFY.",
                    id="sse_notify.E003",
                )
            )
        elif setting is None:
            errors.append(
                Error(
                    f"Unknown setting SSE_NOTIFY[{key!r}].",
                    hint=f"Known settings: {', '.join(sorted(SETTINGS))}.",
                    id="sse_notify.E003",
                )
            )
        elif not setting.rule.test(value):
            errors.append(
                Error(
                    f"SSE_NOTIFY[{key!r}] is {value!r}; it must be {setting.rule.expected}.",
                    hint=f"Default: {setting.default!r}. {setting.reason}",
                    id="sse_notify.E004",
                )
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
    alias = app_settings.CHANNEL_LAYER
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


# -- channels_redis traps (W003-W006) ---------------------------------------------

#: Seconds between the hub's re-joins of its groups (``_poll_loop``: every 600 polls).
MEMBERSHIP_REFRESH_POLLS = 600
#: Below this, a burst to one process is dropped on the layer (see W006).
MIN_HUB_CAPACITY = 1000


def _host_options(host: Any) -> dict[str, Any]:
    """The redis-py options a channels_redis ``hosts`` entry sets explicitly."""
    from urllib.parse import parse_qs

    options: dict[str, Any] = {}
    address = None
    if isinstance(host, dict):
        options.update(host)
        address = host.get("address")
    elif isinstance(host, str):
        address = host
    if isinstance(address, str):
        for key, values in parse_qs(urlsplit(address).query).items():
            options.setdefault(key, values[-1])
    return options


def _redis_default(name: str) -> Any:
    """redis-py's default for ``socket_timeout`` (5 s since redis-py 8, none before)."""
    try:
        from redis import _defaults
    except ImportError:
        return None
    return getattr(_defaults, name, None)


def _redis_major() -> int:
    try:
        import redis
    except ImportError:
        return 0
    try:
        return int(str(redis.__version__).split(".")[0])
    except ValueError:
        return 0


def _as_seconds(value: Any) -> float | None:
    if value is None or value == "" or str(value).lower() == "none":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_redis_layer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """channels_redis + redis-py 8 configurations that break or slow the streams.

    W003 core layer whose socket_timeout cuts its 5 s blocking read; W004 async
    pool limited to redis-py 8's default 100 connections (it raises, not waits);
    W005 group_expiry shorter than the hub's group refresh; W006 core layer
    capacity too low for bursts to one process.
    """
    from django.utils.module_loading import import_string

    alias = app_settings.CHANNEL_LAYER
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(alias)
    if not isinstance(layer, dict) or not str(layer.get("BACKEND", "")).startswith("channels_redis"):
        return []
    try:
        cls = import_string(layer["BACKEND"])
        from channels_redis.core import RedisChannelLayer
    except ImportError:
        return []  # an unimportable backend is reported when the layer is built
    config = dict(layer.get("CONFIG") or {})
    hosts = config.get("hosts") or [("localhost", 6379)]
    core = isinstance(cls, type) and issubclass(cls, RedisChannelLayer)
    where = f"CHANNEL_LAYERS[{alias!r}]"
    errors: list[CheckMessage] = []

    if core:
        brpop = float(getattr(cls, "brpop_timeout", 5))
        for index, host in enumerate(hosts):
            options = _host_options(host)
            timeout = (
                _as_seconds(options["socket_timeout"])
                if "socket_timeout" in options
                else _redis_default("DEFAULT_SOCKET_TIMEOUT")
            )
            if timeout is not None and timeout < brpop + 1:
                errors.append(
                    Warning(
                        f"{where} host {index}: socket_timeout is {timeout:g} s, not above RedisChannelLayer's "
                        f"{brpop:g} s blocking read: every idle receive fails with 'Timeout reading from ...' "
                        "(redis-py 8 made 5 s the default).",
                        hint=(
                            "Give the host as a dict with a longer timeout, e.g. "
                            "{'address': 'redis://127.0.0.1:6379/0', 'socket_timeout': 10, "
                            "'socket_connect_timeout': 5, 'max_connections': 1000}."
                        ),
                        id="sse_notify.W003",
                    )
                )
    if _redis_major() >= 8:
        for index, host in enumerate(hosts):
            options = _host_options(host)
            if "max_connections" not in options and not (isinstance(host, dict) and "sentinels" in host):
                errors.append(
                    Warning(
                        f"{where} host {index}: no max_connections; redis-py 8's async pool allows 100 "
                        "connections per process and then raises MaxConnectionsError ('Too many connections') "
                        "instead of waiting, so bursts of group_add/group_send fail.",
                        hint="Give the host as a dict with 'max_connections' sized to your concurrency, e.g. 1000.",
                        id="sse_notify.W004",
                    )
                )
    if core:
        poll = app_settings.POLL_INTERVAL
        if not SETTINGS["POLL_INTERVAL"].rule.test(poll):
            poll = SETTINGS["POLL_INTERVAL"].default  # E004 reports the bad value
        refresh = MEMBERSHIP_REFRESH_POLLS * float(poll)
        expiry = config.get("group_expiry", 86400)
        if SECONDS.test(expiry) and expiry < 2 * refresh:
            errors.append(
                Warning(
                    f"{where} group_expiry is {expiry:g} s but sse_notify's hubs refresh their group membership "
                    f"only every {refresh:g} s (600 x POLL_INTERVAL): processes drop out of their groups and "
                    "notifications arrive only through the database poll.",
                    hint=f"Set group_expiry to at least {int(2 * refresh)} s (the default 86400 is fine).",
                    id="sse_notify.W005",
                )
            )
        try:
            capacity = cls(**config).get_capacity("sse_notify.hub.x!y")
        except Exception:
            capacity = config.get("capacity", 100)
        if isinstance(capacity, int) and capacity < MIN_HUB_CAPACITY:
            errors.append(
                Warning(
                    f"{where} capacity is {capacity}: each process receives all its notifications on one "
                    f"channel, and a burst of more than {capacity} layer messages to one process is dropped "
                    "(nothing is lost, but those notifications wait for the database poll).",
                    hint=f"Set 'capacity': {MIN_HUB_CAPACITY * 10} (or a channel_capacity entry for 'sse_notify.hub.*').",
                    id="sse_notify.W006",
                )
            )
    return errors


# -- the client's static files (W007-W008) ----------------------------------------

STATIC_FILES_HINT = (
    "In development run `manage.py runserver` with DEBUG=True and 'daphne' first in INSTALLED_APPS; in production "
    "set STATIC_ROOT, run `manage.py collectstatic` and serve it (WhiteNoise or your web server). "
    "See the README's 'Static files'."
)


def check_static_files(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn where ``sse-notify.js`` and ``sse-notify.css`` cannot load: no toasts, an unstyled bell.

    Only what settings show is checked. Serving with plain ``daphne project.asgi:application``
    and DEBUG=True also answers 404 for them, but no check runs under Daphne: for that case
    the ``{% sse_notify %}`` markup itself prints the fix in the browser's console.
    """
    from django.apps import apps
    from django.core.files.storage import FileSystemStorage
    from django.utils.module_loading import import_string

    names = [config.name for config in apps.get_app_configs()]
    if "django.contrib.staticfiles" not in names:
        return [
            Warning(
                "django.contrib.staticfiles is not in INSTALLED_APPS, so nothing finds, serves or collects "
                "sse_notify's JS and CSS (the {% sse_notify %} tag links them under STATIC_URL).",
                hint="Add 'django.contrib.staticfiles' to INSTALLED_APPS. " + STATIC_FILES_HINT,
                id="sse_notify.W008",
            )
        ]
    errors: list[CheckMessage] = []
    if "daphne" in names and names.index("daphne") > names.index("django.contrib.staticfiles"):
        errors.append(
            Warning(
                "'daphne' comes after 'django.contrib.staticfiles' in INSTALLED_APPS, so `manage.py runserver` is "
                "Django's WSGI server: the notification stream answers 501 there.",
                hint="Put 'daphne' first in INSTALLED_APPS.",
                id="sse_notify.W007",
            )
        )
    if not settings.DEBUG and not getattr(settings, "STATIC_ROOT", None):
        backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
        try:
            on_disk = issubclass(import_string(backend), FileSystemStorage)
        except ImportError:
            on_disk = False
        whitenoise_finders = getattr(settings, "WHITENOISE_USE_FINDERS", False) and any(
            "whitenoise" in str(m).lower() for m in settings.MIDDLEWARE
        )
        if on_disk and not whitenoise_finders:
            errors.append(
                Warning(
                    "DEBUG is off and STATIC_ROOT is not set: collectstatic cannot gather sse_notify's JS and CSS, "
                    "so pages with {% sse_notify %} get no live notifications and an unstyled bell.",
                    hint=STATIC_FILES_HINT,
                    id="sse_notify.W008",
                )
            )
    return errors
