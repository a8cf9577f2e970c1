"""``manage.py sse_notify_prune --older-than 30d``: delete old read notifications.

Deletes in batches (one short transaction per batch) so a large prune never
holds locks for long. Unread notifications are kept unless ``--include-unread``.

Before a batch is deleted, each affected user's ``Inbox.pruned_seq`` is raised to
the highest deleted seq: a stream resuming from an older cursor can no longer
replay what it missed, so it sends a ``reset`` event and the client reloads.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router, transaction
from django.db.models import Case, F, PositiveBigIntegerField, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from sse_notify.models import Inbox, Notification, chunked

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """``"30d"`` -> 30 days; units s, m, h, d, w."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age; write a number and a unit, e.g. 30d, 12h, 90m (units: s m h d w).")
    return timedelta(**{_UNITS[match[2].lower()]: int(match[1])})


def raise_pruned_seq(deleted: list[tuple[int, int]], using: str) -> None:
    """Set ``pruned_seq = max(pruned_seq, highest deleted seq)`` for each user in ``deleted``."""
    highest: dict[int, int] = {}
    for user_id, seq in deleted:
        highest[user_id] = max(seq, highest.get(user_id, 0))
    # Two parameters per user in the CASE: half a chunk per statement.
    for chunk in chunked(sorted(highest.items()), 400):
        ids = [uid for uid, _ in chunk]
        inboxes = Inbox.objects.using(using).filter(user_id__in=ids)
        # Lock in user-id order, as sends do, so the two cannot deadlock.
        list(inboxes.select_for_update().order_by("user_id").values_list("pk"))
        top = Case(
            *(When(user_id=uid, then=Value(seq)) for uid, seq in chunk),
            default=F("pruned_seq"),
            output_field=PositiveBigIntegerField(),
        )
        inboxes.update(pruned_seq=Greatest(F("pruned_seq"), top))


class Command(BaseCommand):
    help = "Delete read notifications older than an age (e.g. 30d), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m (units s m h d w).")
        parser.add_argument(
            "--include-unread", action="store_true", help="Also delete unread notifications older than AGE."
        )
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per DELETE (default 1000).")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_age(options["older_than"])
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from exc
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - age
        using = router.db_for_write(Notification)
        old = Notification.objects.using(using).filter(created_at__lt=cutoff)
        if not options["include_unread"]:
            old = old.filter(read_at__isnull=False)
        what = "notifications" if options["include_unread"] else "read notifications"
        if options["dry_run"]:
            count = old.count()
            self.stdout.write(
                f"Would delete {count} {what} older than {options['older_than']} (before {cutoff:%Y-%m-%d %H:%M} UTC)."
            )
            return
        total = 0
        while True:
            with transaction.atomic(using=using):
                rows = list(
                    old.select_for_update().order_by("pk").values_list("pk", "recipient_id", "seq")[:batch_size]
                )
                if not rows:
                    break
                raise_pruned_seq([(uid, seq) for _, uid, seq in rows], using)
                # Through the ORM so post_delete keeps unread counts right (--include-unread).
                Notification.objects.using(using).filter(pk__in=[pk for pk, _, _ in rows]).delete()
                total += len(rows)
            if options["verbosity"] >= 2:
                self.stdout.write(f"  deleted {total} so far")
        self.stdout.write(self.style.SUCCESS(f"Deleted {total} {what} older than {options['older_than']}."))
