"""The public sending API: ``send_notification`` and its async twin.

Recipients may be a user, a ``Group``, ``EVERYONE``, or any iterable / queryset
mixing users and groups. "Everyone" and groups become one row per user, written
set-based (``Notification.objects.send``: one statement per chunk allocates the
seqs and inserts the rows; for everyone the users are selected in the
database, never loaded into Python): each user then has
their own read state, seq cursor and unread count, and isolation is a plain
``WHERE recipient_id = …``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Union

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .categories import DEFAULT_CATEGORY, get_category
from .conf import app_settings
from .links import check_url
from .models import Level, Notification

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class _Everyone(enum.Enum):
    EVERYONE = "everyone"

    def __repr__(self) -> str:
        return "sse_notify.EVERYONE"


#: Send to every active user.
EVERYONE = _Everyone.EVERYONE

Recipients = Union["AbstractBaseUser", Group, _Everyone, Iterable[Union["AbstractBaseUser", Group]]]

TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length or 200
GROUP_KEY_MAX_LENGTH = Notification._meta.get_field("group_key").max_length or 200


def validate_category(category: Any, group_key: Any) -> str:
    """Check a send's category and group key; return the category slug to store.

    ``None`` means the ``"default"`` category. Raises ``ValidationError`` keyed
    ``category`` / ``group_key`` (an unknown category names the declared ones).
    """
    errors: dict[str, Any] = {}
    slug = DEFAULT_CATEGORY if category is None else category
    if not isinstance(slug, str):
        errors["category"] = _("Category must be a string slug, not %(type)s.") % {"type": type(slug).__name__}
    else:
        try:
            get_category(slug)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if not isinstance(group_key, str):
        errors["group_key"] = _("Group key must be a string, not %(type)s.") % {"type": type(group_key).__name__}
    elif len(group_key) > GROUP_KEY_MAX_LENGTH:
        errors["group_key"] = _("Group key is %(length)d characters long; the limit is %(limit)d.") % {
            "length": len(group_key),
            "limit": GROUP_KEY_MAX_LENGTH,
        }
    elif problem := text_problem(group_key):
        errors["group_key"] = _("Group key %(problem)s") % {"problem": problem}
    if errors:
        raise ValidationError(errors)
    return str(slug)


#: Deepest nesting of lists and objects accepted in ``data``. Real payloads are a few
#: levels deep; a bound keeps every encoder, database and client on the way from
#: recursing into trouble (``RecursionError`` at 1,000 levels in CPython's json).
DATA_MAX_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored and streamed as text, or None if it can.

    NUL cannot be stored by PostgreSQL; a lone surrogate (e.g. from
    ``json.loads('"\\ud800"')`` or undecodable bytes in ``sys.argv``) is not
    Unicode, so it cannot be encoded as UTF-8 on the wire and would fail every
    stream that tried to send it. Other helpers (categories, group keys) use
    the same rule for their own text fields.
    """
    if "\x00" in value:
        return _("contains a NUL character (U+0000), which databases cannot store.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return _(
            "contains a lone surrogate (U+%(code)04X at position %(position)d), "
            "which is not valid Unicode and cannot be encoded as UTF-8."
        ) % {"code": ord(value[exc.start]), "position": exc.start}
    return None


def data_problem(data: Any) -> str | None:
    """Why ``data`` cannot be a notification's payload, or None if it can.

    Walks the structure without recursion (so a 100,000-deep list is an answer,
    not a ``RecursionError``), checking every key and string on the way.
    """
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return _("Data %(problem)s") % {"problem": problem}
        elif isinstance(value, (dict, list, tuple)):
            if depth >= DATA_MAX_DEPTH:
                return _("Data is nested more than %(limit)d levels deep.") % {"limit": DATA_MAX_DEPTH}
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    try:
        # allow_nan=False: NaN/Infinity are not JSON; databases and JSON.parse reject them.
        encoded = json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False)
        # What the stream sends (objects the encoder turned into text included) must be UTF-8.
        json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return _("Data contains a lone surrogate, which is not valid Unicode and cannot be encoded as UTF-8.")
    except (TypeError, ValueError, RecursionError) as exc:
        return _("Data must be JSON-serialisable: %(error)s.") % {"error": exc}
    if len(encoded.encode()) > app_settings.DATA_MAX_BYTES:
        return _("Data is over the %(limit)d-byte limit.") % {"limit": app_settings.DATA_MAX_BYTES}
    return None


def _validate(title: Any, body: Any, level: Any, url: Any, data: Any) -> None:
    errors: dict[str, str] = {}
    if not isinstance(title, str) or not title.strip():
        errors["title"] = _("A notification needs a non-empty title.")
    elif len(title) > TITLE_MAX_LENGTH:
        errors["title"] = _("Title is %(length)d characters long; the limit is %(limit)d.") % {
            "length": len(title),
            "limit": TITLE_MAX_LENGTH,
        }
    if not isinstance(body, str):
        errors["body"] = _("Body must be a string, not %(type)s.") % {"type": type(body).__name__}
    elif len(body) > app_settings.BODY_MAX_LENGTH:
        errors["body"] = _("Body is %(length)d characters long; the limit is %(limit)d.") % {
            "length": len(body),
            "limit": app_settings.BODY_MAX_LENGTH,
        }
    for name, label, value in (("title", _("Title"), title), ("body", _("Body"), body), ("url", _("Link"), url)):
        if name not in errors and isinstance(value, str):
            problem = text_problem(value)
            if problem:
                # "Title" + "contains a NUL character ...": a translation may reorder the two.
                errors[name] = _("%(field)s %(problem)s") % {"field": label, "problem": problem}
    if not isinstance(level, str) or level not in Level.values:
        errors["level"] = _("Unknown level %(level)r; choose one of %(levels)s.") % {
            "level": level,
            "levels": ", ".join(map(repr, Level.values)),
        }
    if not isinstance(url, str):
        errors["url"] = _("Link must be a string, not %(type)s.") % {"type": type(url).__name__}
    elif url and "url" not in errors:
        message = check_url(url)
        if message:
            errors["url"] = message
    if data is not None:
        problem = data_problem(data)
        if problem:
            errors["data"] = problem
    if errors:
        raise ValidationError(errors)


def resolve_recipients(recipients: Recipients) -> list[int]:
    """Return the sorted, distinct primary keys of the users ``recipients`` names."""
    User = get_user_model()
    if recipients is EVERYONE:
        return list(User._default_manager.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    if isinstance(recipients, (User, Group)):
        recipients = [recipients]
    if isinstance(recipients, models.QuerySet) and recipients.model is User:
        return sorted(set(recipients.values_list("pk", flat=True)))
    if isinstance(recipients, (str, bytes)) or not isinstance(recipients, Iterable):
        raise TypeError(f"recipients must be a user, a Group, EVERYONE or an iterable of them, not {recipients!r}")
    user_ids: set[int] = set()
    group_ids: list[int] = []
    for item in recipients:
        if isinstance(item, Group):
            if item.pk is None:
                raise ValueError(f"Group {item!r} is not saved.")
            group_ids.append(item.pk)
        elif isinstance(item, User):
            if item.pk is None:
                raise ValueError(f"User {item!r} is not saved; save it before notifying it.")
            user_ids.add(item.pk)
        else:
            raise TypeError(f"Unsupported recipient {item!r}: expected a user or a Group.")
    if group_ids:
        user_ids.update(User._default_manager.filter(groups__in=group_ids, is_active=True).values_list("pk", flat=True))
    return sorted(user_ids)


def _recipient_source(recipients: Recipients) -> list[int] | models.QuerySet[Any]:
    """Recipients as the database can select them (everyone, a user queryset), else their ids."""
    User = get_user_model()
    if recipients is EVERYONE:
        return User._default_manager.filter(is_active=True)
    if isinstance(recipients, models.QuerySet) and recipients.model is User and not recipients.query.is_sliced:
        return recipients
    return resolve_recipients(recipients)


def send_notification(
    recipients: Recipients,
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: AbstractBaseUser | None = None,
    category: str | None = None,
    group_key: str = "",
) -> Sequence[Notification]:
    """Create one notification per recipient and push it to their open streams.

    ``category`` is one of the project's categories (``None``: ``"default"``);
    each recipient's preferences for it decide whether it shows in the app and
    on the desktop (resolved now, stored on the row). Notifications of one
    category with the same ``group_key`` (e.g. ``"issue-42-comments"``) are
    shown as one entry with a count.

    All or nothing: invalid input raises ``ValidationError`` (or ``TypeError`` /
    ``ValueError`` for unusable recipients) and writes nothing. Rows are
    published after the surrounding transaction commits; a rollback sends nothing.
    The rows are written set-based (``Notification.objects.send``): a send to
    everyone selects the users inside the database. The result is a sequence of
    the created notifications, ordered by recipient, built only when looked at.
    """
    errors: dict[str, Any] = {}
    for check in (lambda: _validate(title, body, level, url, data), lambda: validate_category(category, group_key)):
        try:
            check()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    category = validate_category(category, group_key)
    if actor is not None and actor.pk is None:
        raise ValueError(f"Actor {actor!r} is not saved.")
    users = _recipient_source(recipients)
    if isinstance(users, list) and not users:
        return []
    common = {
        "title": title,
        "body": body,
        "level": level,
        "url": url,
        "data": data,
        "actor": actor,
        "created_at": timezone.now(),
        "category": category,
        "group_key": group_key,
    }
    using = router.db_for_write(Notification)
    with transaction.atomic(using=using):
        return Notification.objects.using(using).send(users, common)


async def asend_notification(
    recipients: Recipients,
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: AbstractBaseUser | None = None,
    category: str | None = None,
    group_key: str = "",
) -> Sequence[Notification]:
    """Async twin of :func:`send_notification`."""
    return await sync_to_async(send_notification)(
        recipients,
        title,
        body=body,
        level=level,
        url=url,
        data=data,
        actor=actor,
        category=category,
        group_key=group_key,
    )
