"""Signal receivers, connected in ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from .models import Inbox, Notification


def unread_deleted(sender: type[Notification], instance: Notification, using: str, **kwargs: Any) -> None:
    """Keep the inbox's unread count right when an unread notification is deleted."""
    if instance.read_at is None:
        Inbox.objects.using(using).filter(user_id=instance.recipient_id, unread__gt=0).update(unread=F("unread") - 1)
