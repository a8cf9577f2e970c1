"""Every setting of the app, with its default, in one place.

Settings come from one ``SSE_NOTIFY`` dict in the project's settings, merged
over ``DEFAULTS``. They are read at access time (``app_settings.HEARTBEAT``), so
``override_settings`` works in tests and nothing is read at import time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Alias in CHANNEL_LAYERS used to fan notifications out across processes.
    "CHANNEL_LAYER": "default",
    # Seconds between keep-alive comments; proxies often cut idle streams at 60 s.
    "HEARTBEAT": 15.0,
    # Reconnection delay (ms) the browser is told to use, sent once per stream.
    "RETRY_MS": 3000,
    # Seconds after which a stream ends so the client reconnects and replays:
    # lets deploys and permission changes take effect. Jittered by +-10 %.
    "MAX_STREAM_LIFETIME": 30 * 60.0,
    # Bytes after which a stream ends the same way; bounds what a client that
    # stops reading can make the server buffer (Daphne applies no backpressure).
    "MAX_STREAM_BYTES": 4 * 1024 * 1024,
    # Simultaneous streams one user may hold in one process (answered with 429).
    "MAX_STREAMS_PER_USER": 10,
    # Simultaneous streams one client address may hold in one process; None = no cap.
    # Behind a reverse proxy every client shares its address, so it is off by default.
    "MAX_STREAMS_PER_IP": None,
    # Simultaneous streams one process accepts before answering 503; None = no cap.
    "MAX_STREAMS": None,
    # Events one stream may have queued; past it the stream catches up from the
    # database instead, so a slow reader costs bounded memory and loses nothing.
    "QUEUE_SIZE": 256,
    # Seconds between the hub's database check for notifications the channel
    # layer did not deliver (other process on the in-memory layer, dropped message).
    "POLL_INTERVAL": 2.0,
    # Most events replayed on (re)connect; further behind, the client is told to reload.
    "REPLAY_LIMIT": 1000,
    # Threads (and so database connections) one process uses for all its streams.
    "DB_THREADS": 4,
    # Seconds a publish to the channel layer may take before the sender gives up on
    # the fast path (the row is committed; streams find it in the database).
    "PUBLISH_TIMEOUT": 2.0,
    # Recipients above which one message goes to the broadcast group (read by every
    # process once) instead of one message per user group.
    "GROUP_SEND_THRESHOLD": 16,
    # Validation limits for notifications.
    "BODY_MAX_LENGTH": 10_000,
    "DATA_MAX_BYTES": 8192,
    "URL_SCHEMES": ("http", "https", "mailto"),
    # Exact origins (scheme://host[:port]) allowed to open the stream and call the
    # JSON endpoints cross-origin with credentials. Empty: same origin only.
    "CORS_ALLOWED_ORIGINS": (),
    # Notifications per page in the JSON list and the inbox.
    "PAGE_SIZE": 20,
    # Milliseconds a toast stays before hiding itself (0 = until dismissed).
    "TOAST_TIMEOUT_MS": 6000,
}


class AppSettings:
    """Attribute access to the merged settings, evaluated on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown sse_notify setting {name!r}")
        user = getattr(settings, "SSE_NOTIFY", None) or {}
        return user.get(name, DEFAULTS[name])


app_settings = AppSettings()
