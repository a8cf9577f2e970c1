"""The settings a project may change, each declared once.

A setting is here only when a user has a reason to change it; the reason is part
of its declaration (and of the README's table). Everything else is a named
constant in the module that uses it (``hub.QUEUE_SIZE``, ``publish.PUBLISH_TIMEOUT``,
``publish.GROUP_SEND_THRESHOLD``, ``stream.MAX_STREAM_BYTES``, ``stream.REPLAY_LIMIT``).

Settings come from one ``SSE_NOTIFY`` dict in the project's settings, merged
over the declared defaults. They are read at access time (``app_settings.HEARTBEAT``),
so ``override_settings`` works and nothing is read at import time. The system
check ``sse_notify.E004`` validates every value with the rule declared here.

To add a setting: one ``Setting(...)`` entry in ``SETTINGS`` (default, rule,
reason), one row in the README's table, and its use as ``app_settings.NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Rule:
    """What a value must be: the test, and the phrase an error message uses for it."""

    test: Callable[[Any], bool]
    expected: str


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, the rule its value must follow, and why a user would change it."""

    name: str
    default: Any
    rule: Rule
    reason: str


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


SECONDS = Rule(lambda v: _number(v) and v > 0, "a number of seconds > 0")
MILLISECONDS = Rule(lambda v: _int(v) and v >= 0, "a whole number of milliseconds >= 0")
POSITIVE_INT = Rule(lambda v: _int(v) and v > 0, "an int > 0")
CAP = Rule(lambda v: v is None or (_int(v) and v > 0), "an int > 0, or None for no cap")
LAYER_ALIAS = Rule(lambda v: isinstance(v, str) and bool(v), "a non-empty str naming a CHANNEL_LAYERS alias")
SCHEMES = Rule(
    lambda v: (
        isinstance(v, (list, tuple))
        and all(isinstance(s, str) and s and s not in ("javascript", "data", "vbscript") for s in v)
    ),
    "a list of scheme names such as ['http', 'https', 'mailto'], never 'javascript', 'data' or 'vbscript'",
)
BASE_URL = Rule(
    lambda v: isinstance(v, str) and (v == "" or v.startswith(("https://", "http://"))),
    "'' or a scheme and host such as 'https://example.com'",
)
LANGUAGE = Rule(
    lambda v: v is None or callable(v) or (isinstance(v, str) and "." in v),
    "None, a callable taking the user and returning a language code, or its dotted path",
)
# Each entry is checked by E005, which names the bad one.
ORIGINS = Rule(lambda v: isinstance(v, (list, tuple)), "a list of origins, such as ['https://app.example.com']")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "CHANNEL_LAYER",
            "default",
            LAYER_ALIAS,
            "Use a channel layer of its own for notifications, apart from the one your consumers use.",
        ),
        Setting(
            "HEARTBEAT",
            15.0,
            SECONDS,
            "Keep it below your proxy's or load balancer's idle timeout (often 60 s), which would cut quiet streams.",
        ),
        Setting(
            "RETRY_MS",
            3000,
            MILLISECONDS,
            "The reconnection delay browsers are told: lower brings the bell back sooner after a restart, higher "
            "spreads a deploy's reconnects of many clients over more time.",
        ),
        Setting(
            "MAX_STREAM_LIFETIME",
            30 * 60.0,
            SECONDS,
            "Streams end after this (jittered -10 %) and the client resumes where it was: how long a deploy or a "
            "permission change may take to reach an open tab, against one reconnect per tab per period.",
        ),
        Setting(
            "MAX_STREAMS_PER_USER",
            10,
            CAP,
            "Simultaneous streams one user may hold in one process (beyond it, the cap's answer: 200 with a long retry:): one per open tab, so raise it "
            "for users who keep many tabs, lower it to bound what one account can hold.",
        ),
        Setting(
            "MAX_STREAMS_PER_IP",
            None,
            CAP,
            "Simultaneous streams one client address may hold in one process (beyond it, the cap's answer: 200 with a long retry:). Off by default: behind "
            "a reverse proxy every client shares its address.",
        ),
        Setting(
            "MAX_STREAMS",
            None,
            CAP,
            "Simultaneous streams one process accepts (beyond it, the cap's answer: 200 with a long retry:): set it from your measured capacity per process.",
        ),
        Setting(
            "POLL_INTERVAL",
            2.0,
            SECONDS,
            "Seconds between each process's database check for notifications the channel layer did not bring: "
            "the delay for sends from other processes on the in-memory layer, against one query per process per "
            "interval.",
        ),
        Setting(
            "DB_THREADS",
            4,
            POSITIVE_INT,
            "Threads, and so database connections, one process uses for all its streams: size it to your "
            "database's connection budget.",
        ),
        Setting(
            "BODY_MAX_LENGTH",
            10_000,
            POSITIVE_INT,
            "Characters a notification's body may have: what your notifications need.",
        ),
        Setting(
            "DATA_MAX_BYTES",
            8192,
            POSITIVE_INT,
            "Bytes the JSON-encoded `data` may have: what your client code needs, and every stream carries it.",
        ),
        Setting(
            "URL_SCHEMES",
            ("http", "https", "mailto"),
            SCHEMES,
            "Link schemes a notification may use (relative links are always allowed): add e.g. 'tel', or "
            "remove 'mailto'.",
        ),
        Setting(
            "CORS_ALLOWED_ORIGINS",
            (),
            ORIGINS,
            "Exact origins (scheme://host[:port]) whose pages may use the stream and the JSON endpoints with the "
            "user's cookies, for a front end on another origin. Empty: same origin only.",
        ),
        Setting(
            "PAGE_SIZE",
            20,
            POSITIVE_INT,
            "Notifications per page in the inbox and the JSON list: your layout's density.",
        ),
        Setting(
            "TOAST_TIMEOUT_MS",
            6000,
            MILLISECONDS,
            "How long a toast stays before hiding itself (0: until dismissed): reading speed and accessibility.",
        ),
        Setting(
            "CATEGORIES",
            {},
            Rule(lambda v: isinstance(v, dict), "a dict of slug -> options (each entry is checked by E020)"),
            "Your notification categories, each with its default per channel and whether it is required "
            "(see sse_notify.categories). Empty: one implicit 'default' category.",
        ),
        Setting(
            "EMAIL_DELAY",
            600.0,
            SECONDS,
            "Seconds a notification must stay unread before it is emailed (or queued for the recipient's digest): "
            "reading it in the app before then means no email. Shorter is quicker, longer sends fewer emails.",
        ),
        Setting(
            "EMAIL_BASE_URL",
            "",
            BASE_URL,
            "Scheme and host of the absolute links in emails, e.g. 'https://example.com' (emails are sent outside "
            "any request). Empty: https:// plus the current django.contrib.sites domain, if installed.",
        ),
        Setting(
            "EMAIL_LANGUAGE",
            None,
            LANGUAGE,
            "Where an email's language comes from: a callable (or dotted path) taking the user and returning a "
            "language code, e.g. from a profile field. None, or a callable returning None: LANGUAGE_CODE.",
        ),
    )
}

#: Former settings, now internal constants, and where each lives (check E003 says so).
RETIRED: dict[str, str] = {
    "QUEUE_SIZE": "sse_notify.hub.QUEUE_SIZE",
    "PUBLISH_TIMEOUT": "sse_notify.publish.PUBLISH_TIMEOUT",
    "GROUP_SEND_THRESHOLD": "sse_notify.publish.GROUP_SEND_THRESHOLD",
    "MAX_STREAM_BYTES": "sse_notify.stream.MAX_STREAM_BYTES",
    "REPLAY_LIMIT": "sse_notify.stream.REPLAY_LIMIT",
}

#: Every setting's default, by name.
DEFAULTS: dict[str, Any] = {name: s.default for name, s in SETTINGS.items()}


def user_settings() -> dict[str, Any]:
    """The project's ``SSE_NOTIFY`` dict as it is now ({} when unset or not a dict; check E004 reports that)."""
    value = getattr(settings, "SSE_NOTIFY", None)
    return value if isinstance(value, dict) else {}


class AppSettings:
    """Attribute access to the merged settings, evaluated on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in SETTINGS:
            raise AttributeError(f"Unknown sse_notify setting {name!r}")
        return user_settings().get(name, SETTINGS[name].default)


app_settings = AppSettings()
