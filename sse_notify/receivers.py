"""Signal receivers, connected in ``AppConfig.ready()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def handle_notify(sender: Any, recipient: Any, title: str, **kwargs: Any) -> Sequence[Any]:
    """The ``notify`` signal's receiver: the same as calling ``send_notification``."""
    from .api import send_notification

    kwargs.pop("signal", None)
    return send_notification(recipient, title, **kwargs)


def reset_cached_state(sender: Any, setting: str, **kwargs: Any) -> None:
    """A setting changed (``override_settings`` in tests, mostly): drop what was built
    from the old value: the database pool's size, and idle hubs on another layer."""
    if setting == "SSE_NOTIFY":
        from . import db
        from .hub import forget_idle_hubs

        db.reset_if_resized()
        forget_idle_hubs()
    elif setting == "CHANNEL_LAYERS":
        from .hub import forget_idle_hubs

        forget_idle_hubs(any_layer=True)


def end_streams_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A signed-out session's open streams end now, in every process, not at their lifetime."""
    from .publish import publish_signout

    if user is not None and getattr(user, "pk", None) is not None:
        publish_signout(user.pk, getattr(getattr(request, "session", None), "session_key", None))
