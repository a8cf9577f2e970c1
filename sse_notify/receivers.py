"""Signal receivers, connected in ``AppConfig.ready()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def handle_notify(sender: Any, recipient: Any, title: str, **kwargs: Any) -> Sequence[Any]:
    """The ``notify`` signal's receiver: the same as calling ``send_notification``."""
    from .api import send_notification

    kwargs.pop("signal", None)
    return send_notification(recipient, title, **kwargs)


def end_streams_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A signed-out session's open streams end now, in every process, not at their lifetime."""
    from .publish import publish_signout

    if user is not None and getattr(user, "pk", None) is not None:
        publish_signout(user.pk, getattr(getattr(request, "session", None), "session_key", None))
