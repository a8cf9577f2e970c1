"""Signal receivers, connected in ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from .models import Notification, recount_unread


def unread_deleted(sender: type[Notification], instance: Notification, using: str, **kwargs: Any) -> None:
    """Keep the inbox's unread count right when an unread notification is deleted.

    Recounts rather than decrements: the instance may be stale (loaded unread, then
    marked read through the queryset API before ``delete()``), and a decrement would
    then take one too many. Read rows (what pruning deletes) cost no query.
    """
    if instance.read_at is None:
        recount_unread([instance.recipient_id], using)


def end_streams_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A signed-out session's open streams end now, in every process, not at their lifetime."""
    from .publish import publish_signout

    if user is not None and getattr(user, "pk", None) is not None:
        publish_signout(user.pk, getattr(getattr(request, "session", None), "session_key", None))
