"""The notification queue: the database is the source of truth.

The cursor a client resumes from is ``Notification.seq``, a per-recipient
sequence number. It is allocated while holding a lock on the recipient's
``Inbox`` row, inside the sending transaction, so for one user *commit order is
sequence order*: a client that has seen seq 11 can never later find a committed
seq 10. (A plain auto-increment id lacks that property: two transactions may
commit out of id order.) Rolled-back sends roll the counter back too, so one
user's committed sequence numbers have no gaps, which lets a stream notice a
message the channel layer dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import links
from .categories import DEFAULT_CATEGORY, SLUG_MAX_LENGTH, EmailMode

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# SQLite before 3.32 allowed 999 variables a statement; stay under it everywhere.
CHUNK = 900


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Level(models.TextChoices):
    INFO = "info", _("Info")
    SUCCESS = "success", _("Success")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


class Inbox(models.Model):
    """Per-user state: the sequence counter (the lock that orders sends) and counts."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sse_notify_inbox",
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    unread = models.PositiveIntegerField(default=0)
    # Highest seq removed by pruning: a client resuming from below it has a stale list.
    pruned_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")

    def __str__(self) -> str:
        return f"inbox of user {self.user_id}"


def allocate_seqs(
    user_ids: Sequence[int],
    using: str,
    counts: Mapping[int, int] | None = None,
    unread_counts: Mapping[int, int] | None = None,
) -> dict[int, tuple[int, int]]:
    """Reserve the next seq (or ``counts[user_id]`` seqs) for each user.

    The unread count grows by the same number, or by ``unread_counts[user_id]``
    when given (rows the user turned off in the app are not counted: see
    ``Notification.in_app``). Return ``{user_id: (last seq reserved,
    unread_after)}``; a user given ``n`` seqs owns ``last - n + 1 .. last``.
    Must run inside the sending transaction:
    the inbox rows stay locked until it commits, which is what makes per-user
    commit order equal seq order. Rows are locked in user-id order so concurrent
    multi-user sends cannot deadlock.
    """
    allocated: dict[int, tuple[int, int]] = {}
    inboxes = Inbox.objects.using(using)
    for chunk in chunked(sorted(set(user_ids))):
        # Starting with a write also takes SQLite's write lock up front.
        inboxes.bulk_create([Inbox(user_id=uid) for uid in chunk], ignore_conflicts=True)
        list(inboxes.select_for_update().filter(user_id__in=chunk).order_by("user_id").values_list("pk"))
        # One UPDATE per distinct count (usually one): 10,000 rows for one user cost one.
        by_count: dict[tuple[int, int], list[int]] = {}
        for uid in chunk:
            n = counts[uid] if counts else 1
            by_count.setdefault((n, unread_counts.get(uid, 0) if unread_counts is not None else n), []).append(uid)
        for (n, u), uids in by_count.items():
            inboxes.filter(user_id__in=uids).update(last_seq=F("last_seq") + n, unread=F("unread") + u)
        for uid, seq, unread in inboxes.filter(user_id__in=chunk).values_list("user_id", "last_seq", "unread"):
            allocated[uid] = (seq, unread)
    return allocated


def recount_unread(user_ids: Iterable[int], using: str) -> dict[int, int]:
    """Set each inbox's unread count from the notifications themselves; return them."""
    ids = sorted(set(user_ids))
    unread = (
        Notification.objects.using(using)
        .filter(recipient_id=OuterRef("user_id"), read_at__isnull=True, in_app=True)
        .order_by()
        .values("recipient_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    counts: dict[int, int] = {}
    for chunk in chunked(ids):
        inboxes = Inbox.objects.using(using).filter(user_id__in=chunk)
        inboxes.update(unread=Coalesce(Subquery(unread), Value(0)))
        counts.update(inboxes.values_list("user_id", "unread"))
    return {uid: counts.get(uid, 0) for uid in ids}


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> NotificationQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(recipient_id=user.pk)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)

    def read(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=False)

    def unread_count(self) -> int:
        """What the badge shows: unread rows the recipient sees in the app (``in_app``)."""
        return self.unread().filter(in_app=True).count()

    def after(self, seq: int) -> NotificationQuerySet:
        """What a client resuming from ``seq`` has not seen (the replay query)."""
        return self.filter(seq__gt=seq).order_by("seq")

    def grouped(self) -> NotificationQuerySet:
        """One entry per group: notifications without a ``group_key``, and the newest of each
        (category, group_key) among the rows of this queryset, annotated with
        ``group_count`` / ``group_unread`` (1 / 0-or-1 for ungrouped rows).

        The groups are computed within this queryset's own filters (an "unread" view
        groups the unread items), so paginating the result pages through entries, not rows.
        """
        base = self.order_by()
        same = dict(
            recipient_id=OuterRef("recipient_id"), category=OuterRef("category"), group_key=OuterRef("group_key")
        )
        newer = base.filter(**same, seq__gt=OuterRef("seq"))
        members = base.filter(**same).values("recipient_id")
        count = members.annotate(n=Count("pk")).values("n")
        unread = members.filter(read_at__isnull=True).annotate(n=Count("pk")).values("n")
        return self.filter(Q(group_key="") | ~Exists(newer)).annotate(
            group_count=Case(When(group_key="", then=Value(1)), default=Coalesce(Subquery(count), Value(1))),
            group_unread=Case(
                When(group_key="", then=Case(When(read_at__isnull=True, then=Value(1)), default=Value(0))),
                default=Coalesce(Subquery(unread), Value(0)),
            ),
        )

    def group_of(self, notification: Notification) -> NotificationQuerySet:
        """The notifications shown together with ``notification`` (itself alone if it has no group)."""
        if not notification.group_key:
            return self.filter(pk=notification.pk)
        return self.filter(
            recipient_id=notification.recipient_id,
            category=notification.category,
            group_key=notification.group_key,
        )

    def mark_read(self) -> int:
        """Mark every unread notification here read in one UPDATE; return how many.

        Recipients' other tabs and devices are told after commit.
        """
        return self._set_read(timezone.now())

    def mark_unread(self) -> int:
        return self._set_read(None)

    def _set_read(self, when: Any) -> int:
        from . import publish

        target = self.filter(read_at__isnull=True) if when else self.filter(read_at__isnull=False)
        using = self.db
        with transaction.atomic(using=using):
            pairs = list(target.order_by().values_list("recipient_id", "pk"))
            if not pairs:
                return 0
            changed = 0
            for chunk in chunked([pk for _, pk in pairs]):
                changed += Notification.objects.using(using).filter(pk__in=chunk).update(read_at=when)
            by_user: dict[int, list[int]] = {}
            for uid, pk in pairs:
                by_user.setdefault(uid, []).append(pk)
            counts = recount_unread(by_user, using)
            transaction.on_commit(
                lambda: publish.publish_read(
                    {uid: (counts[uid], ids) for uid, ids in by_user.items()}, read=when is not None
                ),
                using=using,
                robust=True,
            )
        return changed

    def bulk_create(self, objs: Iterable[Notification], *args: Any, **kwargs: Any) -> list[Notification]:
        """Create notifications the one correct way: seq allocated, published after commit.

        Every path that creates notifications (``send_notification``, the signal,
        the admin, direct use of the manager) comes through here, so none can
        skip the cursor or the push. ``post_save`` is not involved.
        """
        from . import preferences, publish

        objs = list(objs)
        if not objs:
            return objs
        using = self.db
        with transaction.atomic(using=using, savepoint=False):
            need = [o for o in objs if not o.seq]
            # Each recipient's in-app and desktop choice for the category, fixed now:
            # streams then need no preference lookup per event.
            preferences.apply_to(need, using)
            # One seq per notification: a user named twice gets two consecutive seqs,
            # in the order of ``objs``; one allocation for all of them.
            counts = Counter(o.recipient_id for o in need)
            if counts:
                loud = Counter(o.recipient_id for o in need if o.in_app and o.read_at is None)
                last = allocate_seqs(list(counts), using, counts, loud)
                next_seq = {uid: seq - counts[uid] + 1 for uid, (seq, _) in last.items()}
                unread_now = {uid: unread - loud[uid] for uid, (_, unread) in last.items()}
                for obj in need:
                    uid = obj.recipient_id
                    obj.seq = next_seq[uid]
                    if obj.in_app and obj.read_at is None:
                        unread_now[uid] += 1
                    obj._unread_after = unread_now[uid]  # type: ignore[attr-defined]
                    next_seq[uid] += 1
            created = super().bulk_create(objs, *args, **kwargs)
            transaction.on_commit(lambda: publish.publish_created(created), using=using, robust=True)
        return created


class NotificationManager(models.Manager.from_queryset(NotificationQuerySet)):  # type: ignore[misc]
    pass


#: Most members of one group listed when it is expanded (the count still says how many).
GROUP_ITEMS = 20


def attach_group_items(entries: Sequence[Notification], members: NotificationQuerySet) -> None:
    """Give each grouped entry on a page its members (``entry.group_items``), in one query.

    ``members`` is the queryset the entries came from (the same user and filters).
    """
    groups = {(e.category, e.group_key): e for e in entries if e.group_key and getattr(e, "group_count", 1) > 1}
    for entry in entries:
        grouped = groups.get((entry.category, entry.group_key)) is entry
        entry.group_items = [] if grouped else None  # type: ignore[attr-defined]
    if not groups:
        return
    match = Q()
    for category, key in groups:
        match |= Q(category=category, group_key=key)
    newest_first = Window(RowNumber(), partition_by=[F("category"), F("group_key")], order_by=F("seq").desc())
    rows = members.filter(match).annotate(rank=newest_first).filter(rank__lte=GROUP_ITEMS)
    for item in rows.select_related("actor").order_by("-seq"):
        groups[(item.category, item.group_key)].group_items.append(item)  # type: ignore[attr-defined]


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sse_notifications",
        verbose_name=_("recipient"),
    )
    seq = models.PositiveBigIntegerField(
        _("sequence"), editable=False, help_text=_("Per-recipient position; the stream's resume cursor.")
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.INFO)
    url = models.CharField(_("link"), max_length=2000, blank=True)
    data = models.JSONField(_("data"), null=True, blank=True, encoder=DjangoJSONEncoder)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    # The columns below have database defaults too, so rows inserted by set-based
    # SQL (or by older code) that leave them out get the same values as the ORM.
    category = models.CharField(
        _("category"),
        max_length=SLUG_MAX_LENGTH,
        default=DEFAULT_CATEGORY,
        db_default=DEFAULT_CATEGORY,
        help_text=_("One of the project's categories (SSE_NOTIFY['CATEGORIES'])."),
    )
    group_key = models.CharField(
        _("group"),
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text=_("Notifications of one category with the same group show as one entry."),
    )
    in_app = models.BooleanField(
        _("shown in the app"),
        default=True,
        db_default=True,
        help_text=_("The recipient's in-app choice when it was sent: off means listed, but no toast and not counted."),
    )
    desktop = models.BooleanField(
        _("desktop notification"),
        default=True,
        db_default=True,
        help_text=_("The recipient's desktop choice when it was sent."),
    )

    objects = NotificationManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            # Also the index for the replay query (recipient, seq > cursor).
            models.UniqueConstraint(fields=["recipient", "seq"], name="sse_notify_recipient_seq"),
        ]
        indexes = [
            models.Index(
                fields=["recipient", "seq"],
                condition=Q(read_at__isnull=True),
                name="sse_notify_unread",
            ),
            # Reading a group (and counting its items) for one recipient; partial,
            # so notifications without a group cost nothing.
            models.Index(
                fields=["recipient", "category", "group_key"],
                condition=~Q(group_key=""),
                name="sse_notify_group",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.seq:
            # A new row made with save() (e.g. the admin's add form) takes the same
            # path as a bulk send: seq under lock, publish after commit.
            using = kwargs.get("using") or router.db_for_write(Notification, instance=self)
            Notification.objects.using(using).bulk_create([self])
            self._state.adding = False
            return
        super().save(*args, **kwargs)

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    def common_fields(self) -> dict[str, Any]:
        """The payload shared by every recipient of one send (no per-user fields)."""
        return {
            "title": self.title,
            "body": self.body,
            "level": self.level,
            "url": self.url,
            # What the page may link to (the one link policy, sse_notify.links), or None.
            "href": links.href(self.url),
            "data": self.data,
            "created": self.created_at.isoformat(),
            "actor": str(self.actor) if self.actor_id and self.actor else None,
            "category": self.category,
            "group": self.group_key,
            # Per recipient, but recipients with the same choices share a message:
            # a send is at most four layer payloads however many users it reaches.
            "in_app": self.in_app,
            "desktop": self.desktop,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by the list endpoint (the stream adds ``unread``).

        An entry of ``grouped()`` adds ``group_count``, ``group_unread`` and, when
        the view attached them (``group_items``), ``items``: the group's members,
        newest first, for expanding it.
        """
        out = {
            "id": self.pk,
            "seq": self.seq,
            **self.common_fields(),
            "read": self.is_read,
        }
        if hasattr(self, "group_count"):
            out["group_count"] = self.group_count
            out["group_unread"] = self.group_unread  # type: ignore[attr-defined]
        items = getattr(self, "group_items", None)
        if items is not None:
            out["items"] = [item.to_dict() for item in items]
        return out


class Preference(models.Model):
    """One person's choices for one category; ``None`` follows the category's default.

    Only what differs from the default is stored (a page that saves every field
    stores nothing for untouched ones), so a project that changes a default
    reaches everyone who never chose otherwise.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sse_notify_preferences",
        verbose_name=_("user"),
    )
    category = models.CharField(_("category"), max_length=SLUG_MAX_LENGTH)
    in_app = models.BooleanField(_("in the app"), null=True, blank=True)
    desktop = models.BooleanField(_("desktop"), null=True, blank=True)
    email = models.CharField(_("email"), max_length=10, choices=EmailMode.choices, null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "category"], name="sse_notify_preference_user_category"),
        ]

    def __str__(self) -> str:
        return f"preferences of user {self.user_id} for {self.category}"
