"""``manage.py sse_notify_prune --older-than 30d``: delete old read notifications.

A thin shell over ``Notification.objects.prune()`` (batches, locks, ``pruned_seq``
and unread counts are the manager's business), as ``clearsessions`` is over
the session store. Unread notifications are kept unless ``--include-unread``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router
from django.utils import timezone

from sse_notify.models import Notification

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """``"30d"`` -> 30 days; units s, m, h, d, w."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age; write a number and a unit, e.g. 30d, 12h, 90m (units: s m h d w).")
    return timedelta(**{_UNITS[match[2].lower()]: int(match[1])})


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
        notifications = Notification.objects.using(router.db_for_write(Notification))
        what = "notifications" if options["include_unread"] else "read notifications"
        if options["dry_run"]:
            count = notifications.prunable(cutoff, include_unread=options["include_unread"]).count()
            self.stdout.write(
                f"Would delete {count} {what} older than {options['older_than']} (before {cutoff:%Y-%m-%d %H:%M} UTC)."
            )
            return

        def progress(total: int) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"  deleted {total} so far")

        total = notifications.prune(
            cutoff, include_unread=options["include_unread"], batch_size=batch_size, progress=progress
        )
        self.stdout.write(self.style.SUCCESS(f"Deleted {total} {what} older than {options['older_than']}."))
