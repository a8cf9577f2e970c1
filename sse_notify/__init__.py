"""Real-time, per-user notifications for Django over Server-Sent Events.

The public API is importable from here::

    from sse_notify import EVERYONE, asend_notification, send_notification

Importing the package has no side effects: it imports no models and reads no
settings, so a project's settings or ``AppConfig`` may import it before the app
registry is ready. Each name is imported from its module on first access
(PEP 562 module ``__getattr__``), as ``django.contrib.messages`` re-exports its
API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import EVERYONE, Recipients, asend_notification, send_notification
    from .models import Level, Notification
    from .signals import notification_sent, notify

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "EVERYONE": "api",
    "Recipients": "api",
    "send_notification": "api",
    "asend_notification": "api",
    "Level": "models",
    "Notification": "models",
    "notify": "signals",
    "notification_sent": "signals",
}

__all__ = [
    "EVERYONE",
    "Level",
    "Notification",
    "Recipients",
    "asend_notification",
    "notification_sent",
    "notify",
    "send_notification",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sse_notify' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
