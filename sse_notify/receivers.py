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
