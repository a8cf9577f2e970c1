"""Email for what was not seen: one pass of the email runner.

``run_pass()`` (the ``sse_notify_email`` command, from cron, a systemd timer or
``--loop``) does, in order:

1. **Sort.** Rows still ``pending`` after ``EMAIL_DELAY`` take the recipient's email
   preference for their category *at that moment*: ``immediate``, ``hourly``,
   ``daily``; or ``skipped`` (read in the app in time, email off, unknown category).
   Waiting rows that have been read since are ``skipped`` too.
2. **Claim**, per mode, per batch of users: one conditional ``UPDATE`` moves the
   batch's due, unread rows from ``<mode>`` to ``claimed`` with this claim's token.
   On PostgreSQL its row set is ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent
   runners (and a user marking a row read at that instant) never wait on each
   other; a user with a due row held elsewhere (or still ``pending``, being sorted
   by another runner) is left for later whole, so a digest is never split. On every
   database the ``email_state = <mode>`` condition makes a row claimable once. The
   claim commits before any mail is sent.
3. **Send** through Django's configured email backend (one connection per batch),
   then mark the claim's rows ``sent`` (or a message's rows ``failed``).

**At most once.** A row is emailed only by the runner whose claim moved it out of
its mode, and nothing ever moves a ``claimed`` row back into a mode except the one
case where no mail was handed over at all (the mail server could not be reached
when the batch's connection opened). A crash between claim and "sent" therefore
leaves rows ``claimed``: that email may be lost, never doubled. Such rows are
counted as ``stale`` after ``STALE_CLAIM`` and logged, so an operator can see them.

**Mail server faults.** A message the server answers with a temporary (4xx) refusal
was not taken: its rows go back to their mode (and its SMTP transaction is ended, so
the next message starts clean). A connection that breaks before a message's body is written (the server hung up between
messages, or at MAIL, RCPT or DATA) certainly lost nothing: that message goes once more
over a new connection, and if that breaks too, or the server cannot be reached (or
greeted) again, the rest of the batch goes back to the queue at once; so it does
after a second break anywhere in the batch (each can cost a timeout). A reply that is
no SMTP answer at all (cut off, garbled, out of step) counts as a break, not as the
server's refusal. Only a break after the body was written leaves it unknown whether
the server took the message: that one is ``failed``. An error when closing the
connection (QUIT) changes nothing: the batch's rows are recorded all the same.
Replies are read by smtplib: stray bytes that it reads as a valid code (a server out of
step with itself) are taken at their word; a server that trickles a reply slower than
the timeout holds the batch (the timeout is per read).
(Exactly once across SMTP is impossible without the receiver's help; the one
ambiguity left is a server that accepts the message and then drops the connection
before answering, which is reported as ``failed``, not retried.)

**Periods.** A digest covers what became due before the start of the current hour
(or day, in ``settings.TIME_ZONE``) *minus* the delay; that cutoff is constant for a
whole period, so however often the pass runs, a user gets one digest per period.

**Queries.** Each batch costs a fixed number of queries whatever its size (up to
``BATCH_SIZE`` users): the candidate users, the claim, reading it back (users
joined), one preference lookup per category present, and at most three updates.
"""

from __future__ import annotations

import logging
import select
import smtplib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connections, router, transaction
from django.utils import timezone

from . import compat
from .conf import app_settings
from .email_messages import Composer, address_of
from .models import EMAIL_QUEUED, EmailState, Notification, chunked

logger = logging.getLogger(__name__)

#: Users per claim (and so per SMTP connection); also rows per sort step.
BATCH_SIZE = 500
#: A claim older than this that is not marked sent was interrupted (crash, kill).
STALE_CLAIM = timedelta(hours=1)
#: Breaks of the connection after which the rest of a batch waits for the next pass.
BREAKS_PER_BATCH = 2
#: Seconds an SMTP connection may wait on the server when the project sets no
#: ``EMAIL_TIMEOUT``: past it the pass gives the batch back to the queue.
SMTP_TIMEOUT = 30.0

MODES = EMAIL_QUEUED


@dataclass
class PassReport:
    """What one pass did (the command prints it)."""

    emails: int = 0  # messages the backend accepted
    emailed: int = 0  # notifications in them
    skipped: int = 0  # read in time, email off, no address
    failed: int = 0  # in messages the backend refused (not retried)
    deferred: int = 0  # claimed, but the mail server was unreachable or said "try later": back in the queue
    stale: int = 0  # claimed long ago by a runner that never finished

    def __str__(self) -> str:
        text = (
            f"Emailed {self.emailed} notification(s) in {self.emails} email(s); "
            f"{self.skipped} skipped, {self.failed} failed, {self.deferred} deferred."
        )
        if self.stale:
            text += f" {self.stale} interrupted claim(s) older than {STALE_CLAIM} (not re-sent)."
        return text


def cutoff(mode: str, now: datetime, delay: timedelta) -> datetime:
    """Rows of ``mode`` created at or before this are due now."""
    due = now - delay
    if mode == EmailState.IMMEDIATE:
        return due
    local = timezone.localtime(due)
    if mode == EmailState.HOURLY:
        return local.replace(minute=0, second=0, microsecond=0)
    # Midnight of that day, in the project's time zone (correct across DST changes).
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


def run_pass(*, now: datetime | None = None, using: str | None = None, batch_size: int = BATCH_SIZE) -> PassReport:
    """Email every notification that is due now; see the module docstring."""
    now = now or timezone.now()
    using = using or router.db_for_write(Notification)
    delay = timedelta(seconds=float(app_settings.EMAIL_DELAY))
    composer = Composer()
    report = PassReport()
    rows = Notification.objects.using(using)
    report.skipped += rows.filter(email_state__in=MODES, read_at__isnull=False).update(email_state=EmailState.SKIPPED)
    report.skipped += _sort(now - delay, using, batch_size)
    for mode in MODES:
        for users in _user_batches(mode, cutoff(mode, now, delay), using, batch_size):
            token, claimed, skipped = _claim(mode, cutoff(mode, now, delay), users, now, using)
            report.skipped += skipped
            if claimed:
                _send(mode, token, claimed, composer, using, report)
    report.stale = rows.filter(email_state=EmailState.CLAIMED, emailed_at__lt=now - STALE_CLAIM).count()
    if report.stale:
        logger.warning(
            "%d notification(s) were claimed for email over %s ago by a runner that did not finish "
            "(crash or kill); they are not re-sent (at most once).",
            report.stale,
            STALE_CLAIM,
        )
    return report


def _skip_locked(using: str) -> bool:
    return bool(connections[using].features.has_select_for_update_skip_locked)


def _modes(user_ids: Sequence[int], category: str) -> dict[int, str]:
    from .preferences import email_modes

    try:
        return email_modes(user_ids, category)
    except ValidationError:
        # The category was removed from settings since these rows were sent.
        logger.warning("Not emailing notifications of undeclared category %r.", category)
        return {}


def _sort(due: datetime, using: str, batch_size: int) -> int:
    """Give each pending row past the delay its recipient's email mode; return how many skipped."""
    skipped = 0
    pending = Notification.objects.using(using).filter(email_state=EmailState.PENDING, created_at__lte=due)
    locking = _skip_locked(using)
    while True:
        # On PostgreSQL the batch stays locked (skipped by other runners) until it is sorted.
        # Elsewhere each UPDATE below is atomic on its own and conditional on "pending".
        with transaction.atomic(using=using) if locking else nullcontext():
            batch = pending.select_for_update(skip_locked=True) if locking else pending
            # In the order of the "pending" index, so a batch is read off its front (no sort).
            found = list(
                batch.order_by("created_at", "pk").values_list("pk", "recipient_id", "category", "read_at")[:batch_size]
            )
            if not found:
                return skipped
            by_category: dict[str, list[tuple[int, int, Any]]] = {}
            for pk, uid, category, read_at in found:
                by_category.setdefault(category, []).append((pk, uid, read_at))
            target: dict[str, list[int]] = {}
            for category, items in by_category.items():
                modes = _modes(sorted({uid for _, uid, _ in items}), category)
                for pk, uid, read_at in items:
                    mode = modes.get(uid, "off")
                    state = mode if read_at is None and mode in MODES else EmailState.SKIPPED
                    target.setdefault(state, []).append(pk)
            for state, pks in target.items():
                for chunk in chunked(pks):
                    changed = pending.filter(pk__in=chunk).update(email_state=state)
                    if state == EmailState.SKIPPED:
                        skipped += changed


def _user_batches(mode: str, due: datetime, using: str, batch_size: int) -> Iterator[list[int]]:
    """Users with rows of ``mode`` due, in id order, ``batch_size`` at a time (keyset paging).

    A user who still has a ``pending`` row that is due is left out: another runner holds
    it (its sort skipped the lock) and will give it a mode and then claim this user's rows
    itself. Claimed here too, the user would get two digests (or two emails) for one
    period, each with part of the items.
    """
    objects = Notification.objects.using(using)
    being_sorted = objects.filter(email_state=EmailState.PENDING, created_at__lte=due).values("recipient_id")
    after = 0
    while True:
        users = list(
            objects.filter(email_state=mode, created_at__lte=due, read_at__isnull=True, recipient_id__gt=after)
            .exclude(recipient_id__in=being_sorted)
            .order_by("recipient_id")
            .values_list("recipient_id", flat=True)
            .distinct()[:batch_size]
        )
        if not users:
            return
        yield users
        after = users[-1]


def _claim(
    mode: str, due: datetime, users: list[int], now: datetime, using: str
) -> tuple[str, list[Notification], int]:
    """Claim the due rows of ``mode`` of ``users``; return (token, rows to email, rows skipped).

    Rows whose recipient turned that category's email off while they waited, or has
    no address or is inactive, are skipped in the same transaction.
    """
    token = uuid.uuid4().hex
    objects = Notification.objects.using(using)
    candidates = objects.filter(
        recipient_id__in=users, email_state=mode, created_at__lte=due, read_at__isnull=True
    ).order_by()
    if _skip_locked(using):
        # Rows another runner (or a mark-read, or any other transaction) holds are skipped,
        # not waited for; and so is the rest of that user's due rows of this mode, so the
        # user gets one email (one digest) with all of them later, not one now and one then.
        free = candidates.select_for_update(skip_locked=True).values("pk")
        held_elsewhere = candidates.exclude(pk__in=free).values("recipient_id")
        candidates = objects.filter(pk__in=free, email_state=mode).exclude(recipient_id__in=held_elsewhere).order_by()
    with transaction.atomic(using=using):
        # On SQLite this UPDATE is the transaction's first statement: it takes the write
        # lock before anything is read, so two runners serialise instead of deadlocking.
        if not candidates.update(email_state=EmailState.CLAIMED, email_claim=token, emailed_at=now):
            return token, [], 0
        claimed = list(
            objects.filter(email_state=EmailState.CLAIMED, email_claim=token)
            .select_related("recipient")
            .order_by("recipient_id", "pk")
        )
        by_category: dict[str, set[int]] = {}
        for n in claimed:
            by_category.setdefault(n.category, set()).add(n.recipient_id)
        modes = {category: _modes(sorted(uids), category) for category, uids in by_category.items()}
        keep: list[Notification] = []
        drop: list[int] = []
        for n in claimed:
            wanted = modes[n.category].get(n.recipient_id, "off") in MODES
            if wanted and n.recipient.is_active and address_of(n.recipient):
                keep.append(n)
            else:
                drop.append(n.pk)
        for chunk in chunked(drop):
            objects.filter(pk__in=chunk).update(email_state=EmailState.SKIPPED, email_claim="")
    return token, keep, len(drop)


def _messages(mode: str, rows: list[Notification]) -> Iterator[tuple[Any, list[Notification]]]:
    """One message per user (digests) or per user and category (immediate)."""
    groups: dict[tuple[int, str], list[Notification]] = {}
    for n in rows:
        key = (n.recipient_id, "" if mode != EmailState.IMMEDIATE else n.category)
        groups.setdefault(key, []).append(n)
    for items in groups.values():
        yield items[0].recipient, items


def _connection() -> Any:
    """The configured backend; Django's SMTP backend gets ``SMTP_TIMEOUT`` when the project set
    no ``EMAIL_TIMEOUT`` (Django's default is to wait forever, on a server that accepts and
    never answers: the pass would hang with its rows claimed, and so never sent)."""
    if settings.EMAIL_TIMEOUT is None and settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        return get_connection(timeout=SMTP_TIMEOUT)
    return get_connection()


def _smtp_of(connection: Any) -> smtplib.SMTP | None:
    """The open ``smtplib.SMTP`` of Django's SMTP backend (None for other backends, or closed)."""
    return connection.connection if isinstance(connection, SMTPBackend) else None


def _connected(connection: Any) -> bool:
    """Whether Django's SMTP backend still has its server (other backends: always).

    False when smtplib dropped the socket (a failed reply), and when the server has
    something to say while it is our turn to speak: that is a server hanging up
    between messages (a per-connection message limit, an idle timeout), usually with
    a 421 before it closes. Found here, the next message goes over a new connection
    instead of meeting the closed one (which would leave its fate unknown: failed).
    """
    if not isinstance(connection, SMTPBackend):
        return True
    smtp = _smtp_of(connection)
    sock = None if smtp is None else smtp.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _codes(exc: Exception) -> list[int]:
    """The reply codes an smtplib refusal carries (one per refused recipient); none for other errors."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return [code for code, _ in exc.recipients.values()]
    if isinstance(exc, smtplib.SMTPResponseException):
        return [exc.smtp_code]
    return []


def _closing_in_order(exc: Exception) -> bool:
    """A 421 ("closing"): the server ends the connection in order (a per-connection message
    limit), which costs no timeout; the next message simply goes over a new one."""
    codes = _codes(exc)
    return bool(codes) and all(code == 421 for code in codes)


def _try_later(exc: Exception) -> bool:
    """Whether the server refused ``exc``'s message with a temporary (4xx) reply: it did not take it."""
    codes = _codes(exc)
    return bool(codes) and all(400 <= code < 500 for code in codes)


class _Link:
    """The pass's connection to the mail server, and whether the current message's body
    has been written to it.

    Django's SMTP backend hands a message to ``smtplib.SMTP.sendmail``: commands (text),
    then the body in one write (bytes ending in CRLF.CRLF). A failure before that write
    certainly left the message untaken (it can go again); after it, whether the server
    took it cannot be known (at most once: failed).
    """

    def __init__(self) -> None:
        self.connection = _connection()
        self.body_sent = False

    def open(self) -> bool:
        """Connect and greet (EHLO): a server that fails even that is not taking mail now."""
        self.close()
        try:
            self.connection.open()
            smtp = _smtp_of(self.connection)
            if smtp is not None:
                smtp.ehlo_or_helo_if_needed()  # Django leaves it to the first message
                compat.watch_smtp_body(smtp, self._body_written)
        except Exception:
            self.close()
            raise
        return True

    def close(self) -> None:
        """Close, whatever the server answers to QUIT: the batch's outcome is known by then,
        and an exception here must not keep it from being recorded."""
        try:
            self.connection.close()
        except Exception as exc:
            logger.warning("Closing the mail server connection failed: %s", exc)
            if isinstance(self.connection, SMTPBackend):
                self.connection.connection = None

    def reset(self) -> bool:
        """After a failed message: end its SMTP transaction (smtplib leaves it open when the
        server refuses the DATA command, and the next MAIL would then be refused as nested).
        False when the connection could not even do that (closed, to be reopened): a break."""
        smtp = _smtp_of(self.connection)
        if smtp is None or smtp.sock is None:
            return True
        try:
            code, _ = smtp.rset()
        except Exception:
            code = 0
        if 200 <= code < 300:
            return True
        self.close()
        return False

    def _body_written(self) -> None:
        self.body_sent = True

    def untaken(self, exc: Exception) -> bool:
        """Whether ``exc`` broke the conversation before the message body was written.

        A broken connection or a timeout, and also a reply that is no answer at all: a
        cut-off or garbled line (smtplib reads a code outside 400-599, or says "Line too
        long."), or a 2xx/3xx where a refusal was raised (out of step with the server).
        A 4xx or 5xx is the server's real answer and is not this.
        """
        if not isinstance(self.connection, SMTPBackend) or self.body_sent:
            return False
        if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_error in ("Line too long.", b"Line too long."):
            return True  # smtplib's own verdict on an endless reply line (code 500)
        return any(not 400 <= code < 600 for code in _codes(exc))


def _send(mode: str, token: str, rows: list[Notification], composer: Composer, using: str, report: PassReport) -> None:
    objects = Notification.objects.using(using)
    mine = objects.filter(email_state=EmailState.CLAIMED, email_claim=token)
    link = _Link()
    try:
        link.open()
    except Exception:
        # Nothing was handed over: the rows go back to wait for the next pass.
        logger.exception("Could not reach the mail server; %d notification(s) stay queued.", len(rows))
        report.deferred += mine.update(email_state=mode, email_claim="", emailed_at=None)
        return
    failed: list[int] = []
    later: list[int] = []  # not taken, certainly: back in the queue for the next pass
    breaks = 0  # messages the connection broke under (each cost up to a timeout)
    try:
        for user, items in _messages(mode, rows):
            pks = [n.pk for n in items]
            # A message the connection broke under before its body was written goes once
            # more over a new connection. A second break in the batch means the server is
            # not taking mail now: the rest waits for the next pass (a timeout or two per
            # batch, not one per message). The loop's else: it waits.
            while breaks < BREAKS_PER_BATCH:
                if not _connected(link.connection):
                    try:
                        link.open()
                    except Exception:
                        logger.exception("The mail server went away; the rest of the batch stays queued.")
                        breaks = BREAKS_PER_BATCH
                        continue
                link.body_sent = False
                try:
                    message = composer.message(user, items, mode)
                    message.connection = link.connection
                    if not message.send():
                        raise RuntimeError("the email backend accepted no message")
                except Exception as exc:
                    untaken = link.untaken(exc)
                    if untaken or (not _connected(link.connection) and not _closing_in_order(exc)):
                        breaks += 1
                    if untaken:
                        link.close()
                        logger.warning("The mail server broke the connection before the message: %s", exc)
                        continue  # once more over a new connection, unless that was the second break
                    if _try_later(exc):
                        # The server said "not now" (a 4xx reply: rate limit, greylisting): it
                        # did not take the message, so it goes again next pass.
                        logger.warning("The mail server deferred notification(s) %s to user %s: %s", pks, user.pk, exc)
                        later.extend(pks)
                    else:
                        # Not retried: the server may have taken it (see the module docstring).
                        logger.exception("Emailing notification(s) %s to user %s failed.", pks, user.pk)
                        failed.extend(pks)
                    if not link.reset():
                        breaks += 1
                else:
                    report.emails += 1
                break
            else:
                later.extend(pks)
    finally:
        link.close()
    for chunk in chunked(failed):
        report.failed += mine.filter(pk__in=chunk).update(email_state=EmailState.FAILED)
    for chunk in chunked(later):
        report.deferred += mine.filter(pk__in=chunk).update(email_state=mode, email_claim="", emailed_at=None)
    report.emailed += mine.update(email_state=EmailState.SENT, emailed_at=timezone.now())
