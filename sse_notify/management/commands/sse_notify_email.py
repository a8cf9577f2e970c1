"""``manage.py sse_notify_email [--loop SECONDS]``: email what was not seen.

One pass by default, for cron or a systemd timer (run it every minute or few:
each run sends what is due, and digests go out once per period however often it
runs). ``--loop 60`` keeps running a pass every 60 seconds until SIGTERM/SIGINT,
finishing the pass in progress first. A single pass that found the mail server
unreachable exits with status 1 (the notifications stay queued; the loop logs
it and tries again). Any number of runners may run at once:
each notification is claimed by one of them (see ``sse_notify.emailing``).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from sse_notify.emailing import BATCH_SIZE, run_pass
from sse_notify.models import CHUNK

logger = logging.getLogger("sse_notify.emailing")


class Command(BaseCommand):
    help = "Email unread notifications past SSE_NOTIFY['EMAIL_DELAY'] and due digests (one pass, or --loop)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop",
            type=float,
            metavar="SECONDS",
            help="Run a pass every SECONDS until SIGTERM or Ctrl-C, instead of once.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Users per claim and SMTP connection (default {BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= CHUNK:
            raise CommandError(f"--batch-size must be between 1 and {CHUNK}.")
        interval = options["loop"]
        if interval is None:
            self._pass(batch_size, options["verbosity"])
            return
        if interval <= 0:
            raise CommandError("--loop needs a positive number of seconds.")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            try:
                self._pass(batch_size, options["verbosity"], once_more_later=True)
            except CommandError:
                raise
            except Exception:
                # A database or mail outage: say so and try again next time.
                logger.exception("Email pass failed; retrying in %s s.", interval)
            close_old_connections()
            stop.wait(interval)

    def _pass(self, batch_size: int, verbosity: int, once_more_later: bool = False) -> None:
        try:
            report = run_pass(batch_size=batch_size)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            self.stdout.write(str(report))
            self.stdout.flush()
        if report.deferred and not once_more_later:
            # Nothing is lost (the rows are back in the queue), but cron and systemd
            # only notice a mail outage through the exit status.
            raise CommandError(
                f"The mail server could not be reached or said to try later: {report.deferred} notification(s) stay "
                "queued for the next pass."
            )
