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


def end_streams_on_credentials_change(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """A user's password changed (``set_password`` then ``save``) or the user was saved
    inactive: end all their open streams now, in every process, after the commit.

    Without this, such a change is seen at the hub's next session check (up to 5 s),
    and a notification delivered live through the layer meanwhile still reached the
    old sessions' streams. The session that changed the password reconnects at once
    (Django's ``update_session_auth_hash`` keeps it signed in); the others are refused.
    ``AbstractBaseUser.save`` keeps the raw password in ``_password`` until after
    ``post_save``, which is how a change is told without a query. A session deleted
    by itself is still found by the periodic check.
    """
    if created or instance.pk is None:
        return
    fields = None if update_fields is None else set(update_fields)
    password_changed = getattr(instance, "_password", None) is not None and (fields is None or "password" in fields)
    deactivated = getattr(instance, "is_active", True) is False and (fields is None or "is_active" in fields)
    if not (password_changed or deactivated):
        return
    from django.db import router, transaction

    from .publish import publish_signout

    user_id = instance.pk
    transaction.on_commit(
        lambda: publish_signout(user_id, None), using=router.db_for_write(type(instance)), robust=True
    )
