"""Email over a real SMTP server on loopback (aiosmtpd): delivery, one-click, crashes, concurrency.

The mail goes through Django's SMTP backend to ``tests/smtp_sink.py``; the
runner is the real ``manage.py sse_notify_email`` in a child process wherever a
crash or several runners are the point.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest.mock import patch

import httpx
import pytest
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from sse_notify.api import send_notification
from sse_notify.emailing import run_pass
from sse_notify.models import EMAIL_WAITING, EmailState, Notification
from sse_notify.preferences import email_modes
from tests.smtp_sink import Received, SmtpSink
from tests.support import ROOT, free_port, postgres_only, sqlite_only, subprocess_env

CATEGORIES = {
    "comments": {"label": "Comments", "email": "immediate"},
    "activity": {"label": "Activity", "email": "hourly"},
}
BASE = "https://app.example.test"


@pytest.fixture(autouse=True)
def smtp_settings(settings: Any, smtp_sink: SmtpSink) -> None:
    settings.SSE_NOTIFY = {
        **settings.SSE_NOTIFY,
        "CATEGORIES": CATEGORIES,
        "EMAIL_BASE_URL": BASE,
        "EMAIL_DELAY": 0.001,
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_TIMEOUT = 30


def runner(sink: SmtpSink, *args: str, base: str = BASE) -> subprocess.Popen[str]:
    """``manage.py sse_notify_email`` in a child process, mailing to ``sink``."""
    env = subprocess_env(overrides={"CATEGORIES": CATEGORIES, "EMAIL_BASE_URL": base, "EMAIL_DELAY": 0.001})
    env["SSE_NOTIFY_TEST_SMTP_PORT"] = str(sink.port)
    return subprocess.Popen(
        [sys.executable, "-m", "django", "sse_notify_email", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def titles(received: list[Received]) -> list[str]:
    """Every notification title in the messages (each entry line is ``* title``)."""
    found = []
    for r in received:
        found += [m[1] for m in re.finditer(r"^\* (.+?)(?: \(\d+ notifications\))?$", r.text, re.MULTILINE)]
    return found


def states() -> Counter[str]:
    return Counter(Notification.objects.values_list("email_state", flat=True))


def hello_to(make_user: Any, names: str) -> list[str]:
    """Users named by each letter of ``names`` (address ``<letter>@example.test``), each sent
    one "Hello" of the immediate category; returns their addresses."""
    addresses = [f"{name}@example.test" for name in names]
    users = [make_user(name, email=address) for name, address in zip(names, addresses, strict=True)]
    send_notification(users, "Hello", category="comments")
    return addresses


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the end-to-end case --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_unread_is_mailed_and_one_click_turns_the_category_off(make_user: Any, smtp_sink: SmtpSink) -> None:
    alice = make_user("alice", email="alice@example.test")
    send_notification(alice, "Bob commented on Issue 42", category="comments", url="/issues/42/")
    assert run_pass().emails == 1
    [received] = smtp_sink.wait_for(1)
    assert received.to == ["alice@example.test"]
    assert received.subject == "Bob commented on Issue 42"
    unsubscribe = received.header("List-Unsubscribe")
    assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(https://app\.example\.test(/notifications/unsubscribe/[^/>]+/))>", unsubscribe or "")
    assert match, unsubscribe
    assert match[1] in received.text and match[1] in received.html
    assert f"{BASE}/issues/42/" in received.text

    # The mail provider's one-click POST: no session, no CSRF token.
    response = Client(enforce_csrf_checks=True).post(
        match[2], "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert email_modes([alice.pk], "comments") == {alice.pk: "off"}

    send_notification(alice, "Carol commented too", category="comments")
    report = run_pass(now=timezone.now() + timedelta(days=2))
    assert (report.emails, report.skipped) == (0, 1)
    assert len(smtp_sink.received) == 1


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_end_to_end_command_smtp_and_one_click_through_daphne(
    make_user: Any, smtp_sink: SmtpSink, daphne: Callable[..., Any]
) -> None:
    """The runner as cron starts it, the one-click POST as a mail provider sends it to a real server."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daphne(overrides={"CATEGORIES": CATEGORIES}, port=port)
    alice = make_user("alice", email="alice@example.test")
    send_notification(alice, "Deploy finished", category="comments")
    assert "Emailed 1 notification(s) in 1 email(s)" in finish(runner(smtp_sink, base=base))
    [received] = smtp_sink.wait_for(1)
    assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    match = re.fullmatch(
        r"<(http://127\.0\.0\.1:\d+/notifications/unsubscribe/[^/>]+/)>", received.header("List-Unsubscribe") or ""
    )
    assert match
    # A scanner's GET changes nothing; the provider's POST does.
    assert httpx.get(match[1]).status_code == 200
    assert email_modes([alice.pk], "comments") == {alice.pk: "immediate"}
    response = httpx.post(
        match[1], content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert email_modes([alice.pk], "comments") == {alice.pk: "off"}
    send_notification(alice, "Deploy finished again", category="comments")
    assert "Emailed 0 notification(s)" in finish(runner(smtp_sink, base=base))
    assert len(smtp_sink.received) == 1


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_crash_mid_run_never_sends_twice(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Killed while the server holds the reply to a message it already has: nothing is sent again."""
    users = [make_user(f"user{i}", email=f"user{i}@example.test") for i in range(5)]
    for user in users:
        send_notification(user, f"Note for {user.username}", category="comments")
    smtp_sink.hold_after = 2  # the third message is received, then its "250" is withheld
    first = runner(smtp_sink, "--batch-size", "2")
    assert smtp_sink.held.wait(120), first.stderr.read() if first.poll() is not None else "runner hung"
    first.kill()  # SIGKILL: no cleanup, as in a power cut or an OOM kill
    first.wait(30)
    smtp_sink.release.set()

    assert "Emailed 1 notification(s) in 1 email(s)" in finish(runner(smtp_sink))
    received = titles(smtp_sink.received)
    assert Counter(received).most_common(1)[0][1] == 1, received  # nobody got anything twice
    assert sorted(received) == ["Note for user0", "Note for user1", "Note for user2", "Note for user4"]
    by_user = dict(Notification.objects.values_list("recipient__username", "email_state"))
    assert by_user == {
        "user0": "sent",
        "user1": "sent",
        "user2": "claimed",  # the server has it, but the runner never heard: not sent again
        "user3": "claimed",  # claimed with it, never sent: lost, not doubled
        "user4": "sent",
    }
    # The interrupted claims are reported once they are old, and still not re-sent.
    report = run_pass(now=timezone.now() + timedelta(hours=2))
    assert (report.emails, report.stale) == (0, 2)
    assert len(smtp_sink.received) == 4


@pytest.mark.django_db(transaction=True)
def test_unreachable_mail_server_keeps_the_email_queued(
    make_user: Any, smtp_sink: SmtpSink, settings: Any, caplog: Any
) -> None:
    alice = make_user("alice", email="alice@example.test")
    send_notification(alice, "Waiting for the server", category="comments")
    settings.EMAIL_PORT = free_port()  # nothing listens there
    report = run_pass()
    assert (report.emails, report.deferred) == (0, 1)
    assert "Could not reach the mail server" in caplog.text
    assert states() == Counter({"immediate": 1})
    settings.EMAIL_PORT = smtp_sink.port
    assert run_pass().emails == 1
    assert titles(smtp_sink.wait_for(1)) == ["Waiting for the server"]


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_while_the_mail_server_is_unreachable(
    make_user: Any, smtp_sink: SmtpSink, settings: Any
) -> None:
    """cron and systemd see a mail outage only through the exit status (CommandError: 1); nothing is lost."""
    from django.core.management import CommandError, call_command

    alice = make_user("alice", email="alice@example.test")
    send_notification(alice, "Waiting for the server", category="comments")
    settings.EMAIL_PORT = free_port()  # nothing listens there
    with pytest.raises(CommandError, match="could not be reached or said to try later: 1 notification"):
        call_command("sse_notify_email", stdout=StringIO())
    assert states() == Counter({"immediate": 1})
    settings.EMAIL_PORT = smtp_sink.port
    call_command("sse_notify_email", stdout=StringIO())  # reachable again: no error
    assert titles(smtp_sink.wait_for(1)) == ["Waiting for the server"]


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_never_answers_keeps_the_email_queued(
    make_user: Any, smtp_sink: SmtpSink, settings: Any
) -> None:
    """A server that accepts the connection and never speaks: without a timeout the pass
    hung for good with its rows claimed (never sent). Django's default EMAIL_TIMEOUT is None."""
    import socket

    from tests.support import override_constants

    alice = make_user("alice", email="alice@example.test")
    send_notification(alice, "Waiting for a silent server", category="comments")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings.EMAIL_PORT = silent.getsockname()[1]
        settings.EMAIL_TIMEOUT = None
        with override_constants({"sse_notify.emailing.SMTP_TIMEOUT": 0.5}):
            done: list[Any] = []
            worker = threading.Thread(target=lambda: done.append(run_pass()), daemon=True)
            worker.start()
            worker.join(20)
        assert done, "the pass hung on a server that never answers"
    assert (done[0].emails, done[0].deferred) == (0, 1)
    assert states() == Counter({"immediate": 1})
    settings.EMAIL_PORT = smtp_sink.port
    assert run_pass().emails == 1
    assert titles(smtp_sink.wait_for(1)) == ["Waiting for a silent server"]


@pytest.mark.django_db(transaction=True)
def test_refused_message_fails_alone_and_is_not_retried(
    make_user: Any, smtp_sink: SmtpSink, django_user_model: Any
) -> None:
    make_user("alice", email="alice@example.test")
    bob = make_user("bob", email="bob@example.test")
    make_user("carol", email="carol@example.test")
    send_notification(django_user_model.objects.all(), "Hello", category="comments")
    smtp_sink.refuse = {"bob@example.test"}
    report = run_pass()
    assert (report.emails, report.failed) == (2, 1)
    assert sorted(r.to[0] for r in smtp_sink.received) == ["alice@example.test", "carol@example.test"]
    assert Notification.objects.get(recipient=bob).email_state == EmailState.FAILED
    assert run_pass(now=timezone.now() + timedelta(days=1)).emails == 0
    assert len(smtp_sink.received) == 2


@pytest.mark.django_db(transaction=True)
def test_a_try_later_reply_keeps_that_email_queued_and_the_command_says_so(
    make_user: Any, smtp_sink: SmtpSink, django_user_model: Any
) -> None:
    """A 4xx reply (rate limit, greylisting) means the server did not take the message: it goes
    again next pass, and the single pass exits 1 so cron sees it; it was failed for good."""
    from django.core.management import CommandError, call_command

    make_user("alice", email="alice@example.test")
    bob = make_user("bob", email="bob@example.test")
    make_user("carol", email="carol@example.test")
    send_notification(django_user_model.objects.all(), "Hello", category="comments")
    smtp_sink.defer = {"bob@example.test"}
    with pytest.raises(CommandError, match="try later: 1 notification"):
        call_command("sse_notify_email", stdout=StringIO())
    assert sorted(r.to[0] for r in smtp_sink.received) == ["alice@example.test", "carol@example.test"]
    assert Notification.objects.get(recipient=bob).email_state == EmailState.IMMEDIATE
    smtp_sink.defer = set()
    report = run_pass()
    assert (report.emails, report.deferred, report.failed) == (1, 0, 0)
    assert [r.to[0] for r in smtp_sink.wait_for(3)[2:]] == ["bob@example.test"]
    assert states() == Counter({"sent": 3})


@pytest.mark.django_db(transaction=True)
def test_a_server_that_hangs_up_mid_batch_loses_nothing(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Each connection takes one message, then the server answers the next MAIL 421 and
    closes (a per-connection limit): each refused message waits for the next pass, the
    others go over new connections. An orderly close costs no timeout, so however often
    it happens it never counts as the server being gone. The rest were all failed for
    good without being offered."""
    hello_to(make_user, "abcde")
    smtp_sink.hang_up_after = 1
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (3, 0, 2)
    assert run_pass().emails == 1  # of the two deferred, one per connection again
    assert run_pass().emails == 1
    delivered = sorted(r.to[0] for r in smtp_sink.wait_for(5))
    assert delivered == [f"{name}@example.test" for name in ("a", "b", "c", "d", "e")]
    assert states() == Counter({"sent": 5})


def test_a_connection_the_server_closed_between_messages_is_seen_before_the_next_one(settings: Any) -> None:
    """A server that closes an idle connection: the pass opens a new one instead of sending
    the next message into the closed one (whose fate would then be unknown: failed)."""
    import select
    import socket

    from sse_notify.emailing import _connected, _connection

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        settings.EMAIL_PORT = server.getsockname()[1]

        def greet_and_close() -> None:
            peer, _ = server.accept()
            peer.sendall(b"220 ready\r\n")
            peer.close()

        greeter = threading.Thread(target=greet_and_close)
        greeter.start()
        backend = _connection()
        backend.open()
        greeter.join(10)
        select.select([backend.connection.sock], [], [], 10)  # the FIN has arrived (guards a hang only)
        assert not _connected(backend)
        backend.close()


@pytest.mark.django_db(transaction=True)
def test_a_connection_cut_before_the_body_costs_nothing(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Cut at RCPT: the server certainly never got the message, so it goes again at once over
    a new connection (it was failed for good, never offered)."""
    hello_to(make_user, "abc")
    smtp_sink.drop_at_rcpt = {"b@example.test"}
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (3, 0, 0)
    assert sorted(r.to[0] for r in smtp_sink.wait_for(3)) == ["a@example.test", "b@example.test", "c@example.test"]
    assert states() == Counter({"sent": 3})


@pytest.mark.django_db(transaction=True)
def test_a_reply_that_is_no_smtp_answer_is_a_break_not_a_refusal(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Garbage instead of a reply to MAIL (smtplib reads code -1): not the server's refusal,
    so the message goes again over a new connection (it was failed unseen)."""
    hello_to(make_user, "ab")
    smtp_sink.garble_mail = 1
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (2, 0, 0)
    assert sorted(r.to[0] for r in smtp_sink.wait_for(2)) == ["a@example.test", "b@example.test"]


@pytest.mark.django_db(transaction=True)
def test_a_second_break_in_a_batch_keeps_the_rest_queued(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Each break can cost a timeout: after the second one in a batch the server counts as
    not taking mail, and the rest waits for the next pass."""
    hello_to(make_user, "abcde")
    smtp_sink.drop_at_rcpt = {"b@example.test", "d@example.test"}
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (3, 0, 2)
    assert sorted(r.to[0] for r in smtp_sink.received) == ["a@example.test", "b@example.test", "c@example.test"]
    assert run_pass().emails == 2
    assert states() == Counter({"sent": 5})


@pytest.mark.django_db(transaction=True)
def test_a_refused_data_command_and_an_unanswered_reset_count_as_a_break(
    make_user: Any, smtp_sink: SmtpSink, settings: Any
) -> None:
    """After a refused DATA command the pass resets the transaction itself; a server that
    never answers that RSET cost a timeout per message. It is a break: the second keeps
    the rest of the batch queued."""
    hello_to(make_user, "abcd")
    smtp_sink.defer_data = {f"{name}@example.test" for name in ("a", "b", "c", "d")}
    smtp_sink.hang_rset = True
    settings.EMAIL_TIMEOUT = 0.5
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (0, 0, 4)
    assert smtp_sink.rsets == 2  # two breaks, then the rest waits (it was one per message)
    assert states() == Counter({"immediate": 4})


@pytest.mark.django_db(transaction=True)
def test_an_error_at_quit_does_not_leave_the_sent_rows_claimed(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Django's SMTP backend raises what QUIT gets; raised out of the pass, it left every
    sent row 'claimed' (never marked sent, reported as interrupted an hour later)."""
    import smtplib

    hello_to(make_user, "ab")

    def bad_quit(self: Any) -> Any:
        raise smtplib.SMTPResponseException(500, "Line too long.")

    with patch.object(smtplib.SMTP, "quit", bad_quit):
        report = run_pass()
    assert (report.emails, report.emailed) == (2, 2)
    assert states() == Counter({"sent": 2})


@pytest.mark.django_db(transaction=True)
def test_a_connection_cut_after_the_body_is_never_sent_twice(make_user: Any, smtp_sink: SmtpSink) -> None:
    """Cut after the body, before the reply: the server has the message but the pass cannot
    know, so the message is failed and never sent again (at most once)."""
    hello_to(make_user, "abc")
    smtp_sink.drop_after_body = {"b@example.test"}
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (2, 1, 0)
    assert run_pass(now=timezone.now() + timedelta(days=1)).emails == 0
    assert sorted(r.to[0] for r in smtp_sink.wait_for(3)) == ["a@example.test", "b@example.test", "c@example.test"]
    assert states() == Counter({"sent": 2, "failed": 1})


@pytest.mark.django_db(transaction=True)
def test_a_server_that_stops_taking_mail_costs_one_retry_not_one_per_message(
    make_user: Any, smtp_sink: SmtpSink
) -> None:
    """After one message the server cuts every connection at MAIL: the next message is tried
    once more over a new connection, then the rest of the batch waits for the next pass."""
    from django.core.management import CommandError, call_command

    hello_to(make_user, "abcde")
    smtp_sink.drop_mail_after = 1
    with pytest.raises(CommandError, match="4 notification"):
        call_command("sse_notify_email", stdout=StringIO())
    assert states() == Counter({"sent": 1, "immediate": 4})
    smtp_sink.drop_mail_after = None
    assert run_pass().emails == 4
    assert len(smtp_sink.wait_for(5)) == 5


@pytest.mark.django_db(transaction=True)
def test_a_server_that_greets_and_then_fails_keeps_the_mail_queued(make_user: Any, settings: Any) -> None:
    """The greeting comes, then the connection is cut at EHLO: nothing was handed over, so
    nothing is failed (every message was, one connection each, and the pass exited 0)."""
    import socket

    hello_to(make_user, "abc")
    connections_made: list[int] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(0.5)
        settings.EMAIL_PORT = server.getsockname()[1]
        stop = threading.Event()

        def greet_then_cut() -> None:
            while not stop.is_set():
                try:
                    peer, _ = server.accept()
                except TimeoutError:
                    continue
                connections_made.append(1)
                peer.sendall(b"220 ready\r\n")
                peer.recv(1024)  # EHLO: cut without answering
                peer.close()

        greeter = threading.Thread(target=greet_then_cut)
        greeter.start()
        try:
            report = run_pass()
        finally:
            stop.set()
            greeter.join(10)
    assert (report.emails, report.failed, report.deferred) == (0, 0, 3)
    assert len(connections_made) == 1
    assert states() == Counter({"immediate": 3})


@pytest.mark.django_db(transaction=True)
def test_a_refused_data_command_costs_only_its_own_message(make_user: Any, smtp_sink: SmtpSink) -> None:
    """A 451 to DATA leaves the SMTP transaction open; the next message's MAIL was then refused
    as nested (503) and failed for good, though the server never saw it."""
    hello_to(make_user, "abcd")
    smtp_sink.defer_data = {"b@example.test"}
    report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (3, 0, 1)
    assert sorted(r.to[0] for r in smtp_sink.received) == ["a@example.test", "c@example.test", "d@example.test"]
    smtp_sink.defer_data = set()
    assert run_pass().emails == 1
    assert states() == Counter({"sent": 4})


@pytest.mark.django_db(transaction=True)
def test_a_server_that_goes_silent_mid_batch_costs_one_timeout_not_one_per_message(
    make_user: Any, smtp_sink: SmtpSink, django_user_model: Any, settings: Any
) -> None:
    """After the first message the server hangs up, then accepts connections and never answers.
    One failed reopen keeps the rest of the batch queued at once (it waited a full timeout for
    each message left: hours for a batch of 500 at the default 30 s)."""
    import socket

    for i in range(6):
        make_user(f"u{i}", email=f"u{i}@example.test")
    send_notification(django_user_model.objects.all(), "Hello", category="comments")
    smtp_sink.hang_up_after = 1
    settings.EMAIL_TIMEOUT = 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        silent_port = silent.getsockname()[1]
        real_open = SMTPBackend.open
        attempts: list[int] = []

        def open_then_go_silent(self: Any) -> Any:
            if self.connection is None:
                attempts.append(self.port)
            opened = real_open(self)
            self.port = silent_port  # every later connection: a server that never speaks
            return opened

        with patch.object(SMTPBackend, "open", open_then_go_silent):
            report = run_pass()
    assert (report.emails, report.failed, report.deferred) == (1, 0, 5)
    assert attempts == [smtp_sink.port, silent_port]  # one reopen, not one per message
    assert states() == Counter({"sent": 1, "immediate": 5})


@pytest.mark.django_db(transaction=True)
def test_loop_keeps_mailing_until_sigterm(make_user: Any, smtp_sink: SmtpSink) -> None:
    alice = make_user("alice", email="alice@example.test")
    proc = runner(smtp_sink, "--loop", "0.1")
    try:
        send_notification(alice, "First", category="comments")
        smtp_sink.wait_for(1)
        send_notification(alice, "Second", category="comments")
        assert titles(smtp_sink.wait_for(2)) == ["First", "Second"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Emailed 1 notification(s) in 1 email(s)" in out


# -- concurrent runners ---------------------------------------------------------------------------


@pytest.fixture
def loop_runners(smtp_sink: SmtpSink) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def many_runners_each_notification_once(make_user: Any, sink: SmtpSink, procs: list[subprocess.Popen[str]]) -> None:
    users = [make_user(f"c{i:03}", email=f"c{i:03}@example.test") for i in range(120)]
    # Four runners polling every 100 ms, all waiting for work...
    procs += [runner(sink, "--loop", "0.1", "--batch-size", "3") for _ in range(4)]
    for proc in procs:  # each has finished a first (empty) pass: all are polling now
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("Emailed 0 notification(s)")
    # ...which appears for all of them at once (one commit): 120 users, 1 to 3 notifications each.
    with transaction.atomic():
        for k in range(3):
            send_notification(users[: 120 - 40 * k], f"Round {k}", category="comments")
    expected = sorted((f"c{i:03}@example.test", f"Round {k}") for k in range(3) for i in range(120 - 40 * k))
    wait_until(
        lambda: not Notification.objects.filter(email_state__in=[*EMAIL_WAITING, EmailState.CLAIMED]).exists(),
        "every notification to be sent",
    )
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    outputs = [finish(proc) for proc in procs]
    assert states() == Counter({"sent": len(expected)})
    delivered = [(r.to[0], title) for r in sink.received for title in titles([r])]
    assert [pair for pair, n in Counter(delivered).items() if n > 1] == []  # nothing twice
    assert sorted(delivered) == expected  # nothing lost
    # They really ran side by side: more than one runner sent something.
    busy = [out for out in outputs if re.search(r"Emailed [1-9]", out)]
    assert len(busy) >= 2, outputs


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_concurrent_runners_email_each_notification_once(
    make_user: Any, smtp_sink: SmtpSink, loop_runners: list[subprocess.Popen[str]]
) -> None:
    many_runners_each_notification_once(make_user, smtp_sink, loop_runners)


@sqlite_only  # the PostgreSQL run has its own test
@pytest.mark.django_db(transaction=True)
def test_sqlite_concurrent_runners_email_each_notification_once(
    make_user: Any, smtp_sink: SmtpSink, loop_runners: list[subprocess.Popen[str]]
) -> None:
    many_runners_each_notification_once(make_user, smtp_sink, loop_runners)


@contextmanager
def held_elsewhere(rows: Any, *, roll_back: bool = False) -> Iterator[None]:
    """``rows`` locked (``SELECT ... FOR UPDATE``) by another transaction while the block runs:
    another runner sorting them, a mark-read in progress, a data fix."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(rows.select_for_update())
                locked.set()
                release.wait(120)
                transaction.set_rollback(roll_back)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(60)
        yield
    finally:
        release.set()
        holder.join(60)


def pass_beside_the_lock() -> Any:
    """One pass on its own connection; it must not wait for the lock (the join guards a hang only)."""
    reports: list[Any] = []
    passer = threading.Thread(target=lambda: (reports.append(run_pass()), connection.close()))
    passer.start()
    passer.join(120)
    assert not passer.is_alive(), "the pass waited on a locked row"
    return reports[0]


def last_hour() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1, minutes=-5)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_rows_locked_elsewhere_are_skipped_not_waited_for(make_user: Any, smtp_sink: SmtpSink) -> None:
    """A row another runner (or a mark-read) holds is left for a later pass; the pass does not block."""
    alice = make_user("alice", email="alice@example.test")
    bob = make_user("bob", email="bob@example.test")
    send_notification([alice, bob], "Hello", category="comments")
    with held_elsewhere(Notification.objects.filter(recipient=alice)):
        assert pass_beside_the_lock().emails == 1
        assert [r.to for r in smtp_sink.received] == [["bob@example.test"]]
    assert run_pass().emails == 1
    assert sorted(r.to[0] for r in smtp_sink.wait_for(2)) == ["alice@example.test", "bob@example.test"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_one_digest_even_when_another_runner_is_still_sorting_that_users_rows(
    make_user: Any, smtp_sink: SmtpSink
) -> None:
    """Another runner holds one of alice's due rows while it sorts it: this pass leaves alice
    alone (the holder sends her digest) instead of sending half of it now and half later."""
    alice = make_user("alice", email="alice@example.test")
    bob = make_user("bob", email="bob@example.test")
    send_notification([alice, bob], "First", category="activity")
    send_notification(alice, "Second", category="activity")
    Notification.objects.update(created_at=last_hour())
    # "First" was sorted into the hourly digest by an earlier pass; "Second" is still pending.
    Notification.objects.filter(title="First").update(email_state=EmailState.HOURLY)
    with held_elsewhere(Notification.objects.filter(title="Second")):
        assert pass_beside_the_lock().emails == 1
        assert [r.to for r in smtp_sink.received] == [["bob@example.test"]]  # not alice's half digest
    assert run_pass().emails == 1
    received = smtp_sink.wait_for(2)
    assert [r.to for r in received] == [["bob@example.test"], ["alice@example.test"]]
    assert sorted(titles(received[1:])) == ["First", "Second"]  # one digest with both


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_one_digest_even_when_another_transaction_holds_one_of_its_rows(
    make_user: Any, smtp_sink: SmtpSink
) -> None:
    """One of alice's rows, already in her hourly digest, is locked by another transaction
    (a mark-read that will roll back, a data fix): her digest waits for all its rows instead
    of going out now without that one and again later with it."""
    alice = make_user("alice", email="alice@example.test")
    bob = make_user("bob", email="bob@example.test")
    for title in ("One", "Two", "Three"):
        send_notification([alice, bob], title, category="activity")
    Notification.objects.update(created_at=last_hour(), email_state=EmailState.HOURLY)
    with held_elsewhere(Notification.objects.filter(recipient=alice, title="One"), roll_back=True):
        assert pass_beside_the_lock().emails == 1
        assert [r.to for r in smtp_sink.received] == [["bob@example.test"]]
    assert run_pass().emails == 1
    received = smtp_sink.wait_for(2)
    assert [r.to for r in received] == [["bob@example.test"], ["alice@example.test"]]
    assert sorted(titles(received[1:])) == ["One", "Three", "Two"]
