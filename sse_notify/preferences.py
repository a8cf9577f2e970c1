"""Per-user, per-category, per-channel preferences.

Channels: ``in_app`` (the live stream's toast and the unread badge), ``desktop``
(the browser's own notification, still behind the browser's permission) and
``email`` (``EmailMode``: off, at once, hourly or daily digest).

A person's choice overrides the category's default; ``required`` categories
always use their defaults. Only choices that differ from the default are stored
(``Preference`` fields are ``None`` otherwise), so changing a default in
settings reaches everyone who never chose otherwise.

What "in-app off" means: the notification is still stored and listed in the
inbox and the bell's list (and may still be emailed), but it shows no toast, no
desktop notification and is not counted by the unread badge. The choice is
resolved when the notification is sent and stored on its row
(``Notification.in_app`` / ``.desktop``), so a stream needs no lookup per event
and every open tab applies a change from the next notification on. A change is
also pushed to the user's open tabs (the ``preferences`` stream event), so an
open preferences page and the client's desktop setting follow at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils.translation import gettext

from .categories import EMAIL_MODES, Category, EmailMode, get_categories, get_category
from .models import CHUNK, Preference, chunked

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .models import Notification

__all__ = [
    "CHANNELS",
    "EmailMode",
    "apply_to",
    "email_modes",
    "preferences_url",
    "resolve_for_send",
    "set_preference",
    "set_preferences",
    "user_preferences",
]

#: The channels a person chooses per category.
CHANNELS = ("in_app", "desktop", "email")


def _user_id(user: AbstractBaseUser | int) -> int:
    if isinstance(user, int) and not isinstance(user, bool):
        return user
    pk = getattr(user, "pk", None)
    if pk is None:
        raise ValueError(f"User {user!r} is not saved.")
    return int(pk)


def preferences_url() -> str:
    """The preferences page (for links in emails and pages)."""
    return reverse("sse_notify:preferences")


def _resolved(category: Category, row: Mapping[str, Any] | None) -> dict[str, Any]:
    values = category.defaults()
    if row is not None and not category.required:
        for channel in CHANNELS:
            if row.get(channel) is not None:
                values[channel] = row[channel]
    return values


def user_preferences(user: AbstractBaseUser | int) -> list[dict[str, Any]]:
    """Every category with the user's effective choice per channel, in declaration order.

    One query. Each entry: ``category``, ``label``, ``description``, ``required``,
    ``in_app``, ``desktop``, ``email`` and ``defaults`` (the category's own).
    """
    uid = _user_id(user)
    rows = {row["category"]: row for row in Preference.objects.filter(user_id=uid).values("category", *CHANNELS)}
    out = []
    for slug, category in get_categories().items():
        out.append(
            {
                "category": slug,
                "label": str(category.label),
                "description": str(category.description),
                "required": category.required,
                **_resolved(category, rows.get(slug)),
                "defaults": category.defaults(),
            }
        )
    return out


def email_modes(user_ids: Iterable[int], category: str) -> dict[int, str]:
    """``{user_id: EmailMode value}`` for every given user, for one category.

    For the email sender: one query per ``CHUNK`` (900) users; none at all for a
    ``required`` category (its default applies to everyone). Unknown category:
    ``ValidationError``.
    """
    cat = get_category(category)
    ids = sorted(set(map(int, user_ids)))
    modes = dict.fromkeys(ids, cat.email)
    if cat.required or not ids:
        return modes
    for chunk in chunked(ids, CHUNK):
        rows = Preference.objects.filter(category=category, user_id__in=chunk, email__isnull=False)
        for uid, mode in rows.values_list("user_id", "email"):
            modes[uid] = str(mode)
    return modes


def _id_chunks(ids: list[int], using: str) -> list[list[int]] | list[RawSQL]:
    """``ids`` for ``user_id__in`` filters: as they are up to ``CHUNK``; more travel as one
    JSON parameter the database unpacks (PostgreSQL, SQLite), so any number is one query."""
    vendor = connections[using].vendor
    if len(ids) <= CHUNK or vendor not in ("postgresql", "sqlite"):
        return [list(chunk) for chunk in chunked(ids, CHUNK)]
    unpack = (
        "SELECT value::bigint FROM jsonb_array_elements_text(%s::jsonb)"
        if vendor == "postgresql"
        else ("SELECT value FROM json_each(%s)")
    )
    return [RawSQL(unpack, [json.dumps(ids)])]


def apply_to(notifications: Sequence[Notification], using: str | None = None) -> None:
    """Set each new notification's ``in_app`` and ``desktop`` from its recipient's choices.

    Called by ``Notification.objects.bulk_create`` inside the sending
    transaction: one query per category, however many recipients (none for a
    required category). An unknown category raises ``ValidationError``.
    """
    by_category: dict[str, list[Notification]] = {}
    for n in notifications:
        by_category.setdefault(n.category, []).append(n)
    for slug, objs in by_category.items():
        category = get_category(slug)
        overrides: dict[int, tuple[bool | None, bool | None]] = {}
        if not category.required:
            ids = sorted({n.recipient_id for n in objs})
            manager = Preference.objects.using(using) if using else Preference.objects
            for chunk in _id_chunks(ids, manager.db):
                rows = manager.filter(category=slug, user_id__in=chunk).exclude(in_app=None, desktop=None)
                for uid, in_app, desktop in rows.values_list("user_id", "in_app", "desktop"):
                    overrides[uid] = (in_app, desktop)
        for n in objs:
            in_app, desktop = overrides.get(n.recipient_id, (None, None))
            n.in_app = category.in_app if in_app is None else in_app
            n.desktop = category.desktop if desktop is None else desktop


def resolve_for_send(
    users: Sequence[int] | QuerySet[Any], category: str, using: str | None = None
) -> tuple[dict[str, bool], dict[int, dict[str, bool]]]:
    """For a set-based send: the category's ``in_app``/``desktop``, and the users who chose otherwise.

    ``users`` is ids or a queryset of users (then one query with a subquery, so a
    send to everyone never lists everyone). Only users with a stored choice are
    returned, so the result stays as small as the preferences table.
    """
    cat = get_category(category)
    defaults = {"in_app": cat.in_app, "desktop": cat.desktop}
    overrides: dict[int, dict[str, bool]] = {}
    if cat.required:
        return defaults, overrides
    rows = (Preference.objects.using(using) if using else Preference.objects).filter(category=category)
    rows = rows.exclude(in_app=None, desktop=None)
    if isinstance(users, QuerySet):
        rows = rows.filter(user_id__in=users.values("pk"))
        wanted = None
    elif len(users) <= CHUNK:
        rows = rows.filter(user_id__in=list(users))
        wanted = None
    else:  # many ids: the category's stored choices are fewer than the ids; one query, filtered here
        wanted = set(users)
    for uid, in_app, desktop in rows.values_list("user_id", "in_app", "desktop"):
        if wanted is None or uid in wanted:
            mine = {
                "in_app": defaults["in_app"] if in_app is None else in_app,
                "desktop": defaults["desktop"] if desktop is None else desktop,
            }
            if mine != defaults:
                overrides[uid] = mine
    return defaults, overrides


def _clean_changes(category: Category, changes: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[str] = []
    cleaned: dict[str, Any] = {}
    for channel, value in changes.items():
        if channel not in CHANNELS:
            errors.append(
                gettext("Unknown channel %(channel)r; channels: %(channels)s.")
                % {"channel": channel, "channels": ", ".join(CHANNELS)}
            )
        elif value is None:
            continue
        elif channel == "email" and value not in EMAIL_MODES:
            errors.append(
                gettext("Email must be one of %(modes)s, not %(value)r.")
                % {"modes": ", ".join(EMAIL_MODES), "value": value}
            )
        elif channel != "email" and not isinstance(value, bool):
            errors.append(
                gettext("%(channel)s must be true or false, not %(value)r.") % {"channel": channel, "value": value}
            )
        else:
            cleaned[channel] = value
    if not errors and category.required and any(v != getattr(category, c) for c, v in cleaned.items()):
        errors.append(
            gettext("%(category)s notifications are required and cannot be changed.") % {"category": category.label}
        )
    if errors:
        raise ValidationError({category.slug: errors}, code="invalid_preference")
    return cleaned


def set_preferences(user: AbstractBaseUser | int, changes: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Apply ``{category: {channel: value}}`` for one user, all or nothing.

    A value of ``None`` leaves that channel as it is; a value equal to the
    category's default stores "follow the default". Raises ``ValidationError``
    for an unknown category or channel, a bad value, or a change to a required
    category (setting it to its default is accepted, so a form that posts every
    field works). Idempotent. The user's open tabs are told after commit.
    Returns ``user_preferences(user)``.
    """
    uid = _user_id(user)
    errors: dict[str, Any] = {}
    cleaned: dict[str, tuple[Category, dict[str, Any]]] = {}
    for slug, channel_values in changes.items():
        try:
            category = get_category(slug)
            if not isinstance(channel_values, Mapping):
                raise ValidationError({slug: [gettext("Give an object of channel: value.")]})
            cleaned[slug] = (category, _clean_changes(category, channel_values))
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    using = router.db_for_write(Preference)
    changed = False
    with transaction.atomic(using=using):
        for slug, (category, values) in cleaned.items():
            if not values or category.required:
                continue
            row = Preference.objects.using(using).select_for_update().filter(user_id=uid, category=slug).first()
            current = {c: getattr(row, c) for c in CHANNELS} if row else dict.fromkeys(CHANNELS)
            wanted = dict(current)
            for channel, value in values.items():
                wanted[channel] = None if value == getattr(category, channel) else value
            if wanted == current:
                continue
            changed = True
            if all(v is None for v in wanted.values()):
                if row is not None:
                    row.delete()
            elif row is None:
                try:
                    with transaction.atomic(using=using):
                        Preference.objects.using(using).create(user_id=uid, category=slug, **wanted)
                except IntegrityError:
                    # Another request created it meanwhile (a mail client posting an
                    # unsubscribe twice at once): ours is the later choice; apply it.
                    Preference.objects.using(using).filter(user_id=uid, category=slug).update(**wanted)
            else:
                for channel, value in wanted.items():
                    setattr(row, channel, value)
                row.save()
        result = user_preferences(uid)
        if changed:
            from .publish import publish_preferences

            transaction.on_commit(lambda: publish_preferences(uid, result), using=using, robust=True)
    return result


def set_preference(
    user: AbstractBaseUser | int,
    category: str,
    *,
    in_app: bool | None = None,
    desktop: bool | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """Change one category's channels for one user (``None``: unchanged); see ``set_preferences``.

    The one-click unsubscribe is ``set_preference(user_id, category, email="off")``.
    Returns that category's entry from ``user_preferences``.
    """
    result = set_preferences(user, {category: {"in_app": in_app, "desktop": desktop, "email": email}})
    return next(entry for entry in result if entry["category"] == category)
