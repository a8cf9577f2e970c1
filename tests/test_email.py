"""Email for what was not seen: who gets which email, when, and what it says.

These tests use Django's locmem backend (``mail.outbox``) to look at messages;
the delivery itself, crashes and concurrent runners are tested over real SMTP in
``test_email_smtp.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any, ClassVar

import pytest
from django.core import mail, signing
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from sse_notify.api import send_notification
from sse_notify.emailing import run_pass
from sse_notify.models import EmailState, Notification
from sse_notify.preferences import email_modes, set_preference
from sse_notify.unsubscribe import make_token, read_token

pytestmark = pytest.mark.django_db

BASE = "https://app.example.test"
CATEGORIES = {
    "comments": {"label": "Comments", "email": "immediate"},
    "mentions": {"label": "Mentions", "email": "immediate"},
    "activity": {"label": "Activity", "email": "hourly"},
    "news": {"label": "News", "email": "daily"},
    "quiet": {"label": "Quiet", "email": "off"},
    "security": {"label": "Security", "email": "immediate", "required": True},
}
DELAY = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def email_settings(settings: Any) -> None:
    settings.SSE_NOTIFY = {
        **settings.SSE_NOTIFY,
        "CATEGORIES": CATEGORIES,
        "EMAIL_BASE_URL": BASE,
        "EMAIL_DELAY": DELAY.total_seconds(),
    }
    settings.DEFAULT_FROM_EMAIL = "notifications@example.test"


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice", email="alice@example.test")


# The tests' clock. Digests follow the clock's hours and days, so a test that read the real clock
# would fail when run a minute before the hour (a pass 11 minutes after a send would find the
# hour over). Every row a test sends is stamped at NOW, twenty minutes into an hour, and each
# pass is given its time as NOW plus some minutes.
NOW = datetime(2026, 12, 1, 9, 20, tzinfo=UTC)


def later(minutes: float = 11) -> datetime:
    return NOW + timedelta(minutes=minutes)


def at(n: Notification, when: datetime) -> Notification:
    Notification.objects.filter(pk=n.pk).update(created_at=when)
    n.refresh_from_db()
    return n


def state(n: Notification) -> str:
    return Notification.objects.values_list("email_state", flat=True).get(pk=n.pk)


def send(user: Any, title: str, category: str = "comments", **kwargs: Any) -> Notification:
    send_notification(user, title, category=category, **kwargs)
    return at(Notification.objects.filter(recipient=user).order_by("-seq")[0], NOW)


def unsubscribe_path(message: Any) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    match = re.fullmatch(r"<" + re.escape(BASE) + r"(/notifications/unsubscribe/[^/>]+/)>", header)
    assert match, header
    return match[1]


# -- when a notification is emailed ---------------------------------------------------------------


def test_unread_after_the_delay_is_emailed_once(alice: Any) -> None:
    n = send(alice, "Bob commented on Issue 42", body="Looks good to me.", url="/issues/42/#c7")
    assert str(run_pass(now=later(9))).startswith("Emailed 0 notification(s)")  # not yet: the delay runs
    assert mail.outbox == []
    report = run_pass(now=later())
    assert (report.emails, report.emailed) == (1, 1)
    [message] = mail.outbox
    assert message.to == ["alice@example.test"]
    assert message.from_email == "notifications@example.test"
    assert message.subject == "Bob commented on Issue 42"
    assert "Looks good to me." in message.body
    assert f"{BASE}/issues/42/#c7" in message.body  # the relative link made absolute
    assert f"{BASE}/notifications/" in message.body  # all notifications / preferences fallback
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{BASE}/issues/42/#c7"' in html
    assert state(n) == EmailState.SENT
    # Later passes find nothing left to send.
    run_pass(now=later(20))
    run_pass(now=later(60 * 24 * 2))
    assert len(mail.outbox) == 1


def test_read_before_the_delay_is_never_emailed(alice: Any) -> None:
    n = send(alice, "Seen in time")
    Notification.objects.filter(pk=n.pk).mark_read()
    run_pass(now=later())
    run_pass(now=later(60 * 25))
    assert mail.outbox == []
    assert state(n) == EmailState.SKIPPED


def test_read_while_waiting_for_the_digest_is_left_out(alice: Any) -> None:
    seen = send(alice, "Read meanwhile", category="activity")
    unseen = send(alice, "Still unread", category="activity")
    run_pass(now=later())  # both now wait for the hourly digest
    assert state(seen) == state(unseen) == EmailState.HOURLY
    Notification.objects.filter(pk=seen.pk).mark_read()
    run_pass(now=later(60 + 20))
    [digest] = mail.outbox
    assert "Still unread" in digest.body
    assert "Read meanwhile" not in digest.body
    assert state(seen) == EmailState.SKIPPED


def test_email_off_by_default_or_by_choice(alice: Any, make_user: Any) -> None:
    bob = make_user("bob", email="bob@example.test")
    quiet = send(alice, "Quiet by default", category="quiet")
    set_preference(bob, "comments", email="off")
    off = send(bob, "Bob turned comments off")
    set_preference(alice, "quiet", email="immediate")
    wanted = send(alice, "Alice wants these now", category="quiet")
    run_pass(now=later())
    [message] = mail.outbox
    assert message.to == ["alice@example.test"]
    # The preference when the delay ends decides, not the one at send time: "Quiet by
    # default" was sent while quiet's email was off, and is emailed with the other.
    assert message.subject == "2 new notifications"
    assert "Alice wants these now" in message.body and "Quiet by default" in message.body
    assert state(quiet) == EmailState.SENT
    assert state(off) == EmailState.SKIPPED
    assert state(wanted) == EmailState.SENT


def test_turned_off_while_waiting_for_the_digest(alice: Any) -> None:
    n = send(alice, "Queued for the digest", category="news")
    run_pass(now=later())
    assert state(n) == EmailState.DAILY
    set_preference(alice, "news", email="off")
    run_pass(now=later(60 * 25))
    assert mail.outbox == []
    assert state(n) == EmailState.SKIPPED


def test_no_address_or_inactive_user_is_skipped(make_user: Any) -> None:
    nomail = make_user("nomail", email="")
    gone = make_user("gone", email="gone@example.test", is_active=False)
    a = send(nomail, "Nowhere to send")
    b = Notification.objects.bulk_create(
        [Notification(recipient=gone, title="Deactivated", category="comments", created_at=NOW)]
    )[0]
    report = run_pass(now=later())
    assert mail.outbox == []
    assert report.skipped == 2
    assert state(a) == state(b) == EmailState.SKIPPED


@pytest.mark.django_db(transaction=True)
def test_rows_from_before_email_existed_are_not_emailed(alice: Any) -> None:
    """The migration makes existing rows ``skipped``: upgrading does not mail the whole backlog."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    mine = ("sse_notify", "0004_email_delivery")
    [before] = MigrationExecutor(connection).loader.graph.node_map[mine].parents
    before = before.key
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([before])
        Old = executor.loader.project_state([before]).apps.get_model("sse_notify", "Notification")
        Old.objects.create(recipient_id=alice.pk, seq=10**6, title="Old unread", created_at=NOW)
        MigrationExecutor(connection).migrate([mine])
    finally:
        MigrationExecutor(connection).migrate(latest)
    send(alice, "New unread")
    run_pass(now=later(60 * 48))
    assert [m.subject for m in mail.outbox] == ["New unread"]
    assert Notification.objects.get(title="Old unread").email_state == EmailState.SKIPPED


# -- immediate emails and digests -----------------------------------------------------------------


def test_immediate_is_one_email_per_category(alice: Any) -> None:
    send(alice, "First comment")
    send(alice, "Second comment")
    send(alice, "You were mentioned", category="mentions")
    run_pass(now=later())
    by_subject = {m.subject: m for m in mail.outbox}
    assert set(by_subject) == {"2 new notifications", "You were mentioned"}
    both = by_subject["2 new notifications"].body
    assert both.index("Second comment") < both.index("First comment")  # newest first
    # Each email's one-click link turns off only its own category.
    assert read_token(unsubscribe_path(by_subject["You were mentioned"]).split("/")[-2]) == (alice.pk, ["mentions"])


def test_hourly_digest_once_per_hour_however_often_the_pass_runs(alice: Any) -> None:
    ten = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    first = [
        at(send(alice, f"Event {i}", category="activity"), ten + timedelta(minutes=m))
        for i, m in enumerate((1, 20, 40))
    ]
    # Every minute from 10:41 to 11:09: they are due (10 min) but their hour is not over plus the delay.
    for minute in range(41, 70):
        run_pass(now=ten + timedelta(minutes=minute))
    assert mail.outbox == []
    assert {state(n) for n in first} == {EmailState.HOURLY}
    at(send(alice, "Event 3", category="activity"), ten + timedelta(minutes=65))
    for minute in range(70, 80):
        run_pass(now=ten + timedelta(minutes=minute))
    [digest] = mail.outbox
    assert digest.subject == "Your hourly digest: 3 new notifications"
    assert [line for line in digest.body.splitlines() if line.startswith("* ")] == [
        "* Event 2",
        "* Event 1",
        "* Event 0",
    ]
    # Event 3 (11:05) goes in the next hour's digest, after 12:10.
    run_pass(now=ten + timedelta(minutes=129))
    assert len(mail.outbox) == 1
    run_pass(now=ten + timedelta(minutes=130))
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject == "Event 3"


def test_daily_digest_collects_a_day_and_several_categories(alice: Any, settings: Any) -> None:
    settings.SSE_NOTIFY = {
        **settings.SSE_NOTIFY,
        "CATEGORIES": {**CATEGORIES, "activity": {"label": "Activity", "email": "daily"}},
    }
    day = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    at(send(alice, "Morning news", category="news"), day + timedelta(hours=8))
    at(send(alice, "Evening activity", category="activity"), day + timedelta(hours=20))
    run_pass(now=day + timedelta(hours=23, minutes=59))
    assert mail.outbox == []
    run_pass(now=day + timedelta(hours=24, minutes=10))
    [digest] = mail.outbox
    assert digest.subject == "Your daily digest: 2 new notifications"
    assert "Morning news" in digest.body and "Evening activity" in digest.body
    # One click leaves both categories of the digest.
    token = unsubscribe_path(digest).split("/")[-2]
    assert read_token(token) == (alice.pk, ["activity", "news"])
    assert "Unsubscribe from emails about Activity, News:" in digest.body


def test_group_shows_as_one_entry_with_a_count(alice: Any) -> None:
    for i in range(3):
        send(alice, "New comment on Issue 42", body=f"Comment {i}", category="activity", group_key="issue-42")
    send(alice, "Build failed", category="activity")
    run_pass(now=later())
    run_pass(now=later(60 + 15))
    [digest] = mail.outbox
    entries = [line for line in digest.body.splitlines() if line.startswith("* ")]
    assert entries == ["* Build failed", "* New comment on Issue 42 (3 notifications)"]
    for i in range(3):
        assert f"- Comment {i}" in digest.body
    html = digest.alternatives[0][0]
    assert html.count("New comment on Issue 42") == 1
    assert "3 notifications" in html


def test_a_single_group_names_itself_in_the_subject(alice: Any) -> None:
    for _ in range(2):
        send(alice, "New comment on Issue 7", group_key="issue-7")
    run_pass(now=later())
    assert [m.subject for m in mail.outbox] == ["New comment on Issue 7 (2 notifications)"]


def test_required_category_has_no_unsubscribe(alice: Any) -> None:
    send(alice, "New sign-in from Firefox", category="security")
    run_pass(now=later())
    [message] = mail.outbox
    assert "List-Unsubscribe" not in message.extra_headers
    assert "List-Unsubscribe-Post" not in message.extra_headers
    assert "/unsubscribe/" not in message.body
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"


def test_titles_are_escaped_in_html_and_cannot_inject_headers(alice: Any) -> None:
    send(alice, "<script>alert(1)</script>\r\nBcc: victim@example.test")
    run_pass(now=later())
    [message] = mail.outbox
    assert message.subject == "<script>alert(1)</script> Bcc: victim@example.test"
    assert message.recipients() == ["alice@example.test"]
    html = message.alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    message.message()  # builds without BadHeaderError


def test_a_title_that_looks_like_an_encoded_word_shows_as_written(alice: Any) -> None:
    """Mail clients decode RFC 2047 encoded words in Subject: a title written as one must
    reach the reader as the literal text, not as the words it encodes."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    spoof = "=?utf-8?b?U2VjdXJpdHkgYWxlcnQ6IHJlc2V0IHlvdXIgcGFzc3dvcmQ=?="  # "Security alert: reset your password"
    send(alice, spoof)
    run_pass(now=later())
    [message] = mail.outbox
    raw = message_from_bytes(message.message().as_bytes())
    shown = str(make_header(decode_header(raw["Subject"])))  # what a mail client displays
    assert spoof in shown
    assert "Security alert" not in shown


def test_in_the_recipients_language(alice: Any, make_user: Any, settings: Any) -> None:
    bob = make_user("bob", email="bob@example.test")
    settings.SSE_NOTIFY = {
        **settings.SSE_NOTIFY,
        "EMAIL_LANGUAGE": lambda user: "de" if user.username == "alice" else None,
    }
    settings.USE_I18N = True
    for user in (alice, bob):
        at(send(user, "Deploy"), datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    run_pass(now=datetime(2026, 12, 1, 9, 45, tzinfo=UTC))
    german, english = sorted(mail.outbox, key=lambda m: m.to[0])
    # Our strings and Django's own formats, through translation.override("de").
    assert german.body.startswith("Sie haben eine Benachrichtigung, die Sie noch nicht gesehen haben.")
    assert "1. Dezember 2026" in german.body
    assert "Ihre Benachrichtigungen öffnen" in german.alternatives[0][0]
    assert english.body.startswith("You have a notification you have not seen yet.")
    assert '<html lang="de">' in german.alternatives[0][0]
    assert "Dec. 1, 2026" in english.body
    assert '<html lang="en-us">' in english.alternatives[0][0]


def test_base_url_from_the_sites_framework_or_an_error(alice: Any, settings: Any) -> None:
    settings.SSE_NOTIFY = {**settings.SSE_NOTIFY, "EMAIL_BASE_URL": ""}
    send(alice, "Needs a link")
    with pytest.raises(CommandError, match="EMAIL_BASE_URL"):
        call_command("sse_notify_email", stdout=StringIO())
    settings.SSE_NOTIFY = {**settings.SSE_NOTIFY, "EMAIL_BASE_URL": "example.test"}
    with pytest.raises(CommandError, match="scheme and host"):
        call_command("sse_notify_email", stdout=StringIO())
    assert mail.outbox == []


# -- one-click unsubscribe ------------------------------------------------------------------------


def test_one_click_unsubscribe_without_signing_in(alice: Any) -> None:
    send(alice, "A comment")
    run_pass(now=later())
    [message] = mail.outbox
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = unsubscribe_path(message)
    assert f"{BASE}{path}" in message.body  # the same link in the body
    client = Client(enforce_csrf_checks=True)  # as a mail provider: no cookie, no CSRF token
    # GET (a mail scanner, or the person) only asks to confirm.
    page = client.get(path)
    assert page.status_code == 200
    assert b"Comments" in page.content and b'method="post"' in page.content
    assert page["Cache-Control"] == "no-store"
    assert email_modes([alice.pk], "comments") == {alice.pk: "immediate"}
    # RFC 8058 section 3.2: POST with this exact body.
    done = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    assert b"You are unsubscribed" in done.content
    assert email_modes([alice.pk], "comments") == {alice.pk: "off"}
    assert email_modes([alice.pk], "mentions") == {alice.pk: "immediate"}  # only that category
    # Idempotent.
    assert client.post(path).status_code == 200
    assert email_modes([alice.pk], "comments") == {alice.pk: "off"}
    send(alice, "Another comment")
    run_pass(now=later(30))
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_or_altered_tokens_are_refused(alice: Any, make_user: Any, method: str) -> None:
    mallory = make_user("mallory")
    token = make_token(mallory.pk, ["comments"])
    value, signature = token.rsplit(":", 1)
    altered = signing.dumps({"u": alice.pk, "c": ["comments"]}, salt="wrong salt", compress=True)
    for bad in (f"{value}:{signature[::-1]}", altered, "garbage", token.replace(":", ".", 1)):
        response = getattr(Client(), method)(f"/notifications/unsubscribe/{bad}/")
        assert response.status_code == 400, bad
        assert b"not valid" in response.content
    assert email_modes([alice.pk, mallory.pk], "comments") == {alice.pk: "immediate", mallory.pk: "immediate"}


def test_unsubscribe_ignores_required_and_removed_categories(alice: Any) -> None:
    token = make_token(alice.pk, ["security", "gone", "news"])
    page = Client().get(f"/notifications/unsubscribe/{token}/")
    assert b"News" in page.content and b"Security" not in page.content
    assert Client().post(f"/notifications/unsubscribe/{token}/").status_code == 200
    assert email_modes([alice.pk], "news") == {alice.pk: "off"}
    assert email_modes([alice.pk], "security") == {alice.pk: "immediate"}


def test_unsubscribe_of_a_deleted_user_is_done(alice: Any) -> None:
    token = make_token(alice.pk, ["comments"])
    alice.delete()
    response = Client().post(f"/notifications/unsubscribe/{token}/")
    assert response.status_code == 200


def test_unsubscribe_accepts_only_get_head_and_post(alice: Any) -> None:
    token = make_token(alice.pk, ["comments"])
    assert Client().put(f"/notifications/unsubscribe/{token}/").status_code == 405
    # A link checker's HEAD: answered like GET, no body, nothing changed.
    head = Client().head(f"/notifications/unsubscribe/{token}/")
    assert head.status_code == 200
    assert head.content == b""
    assert head["Cache-Control"] == "no-store"
    assert email_modes([alice.pk], "comments") == {alice.pk: "immediate"}
    assert Client().head("/notifications/unsubscribe/garbage/").status_code == 400


# -- the command ----------------------------------------------------------------------------------


def test_command_one_pass_prints_what_it_did(alice: Any) -> None:
    n = send(alice, "From cron")
    at(n, timezone.now() - timedelta(minutes=11))
    out = StringIO()
    call_command("sse_notify_email", stdout=out)
    assert out.getvalue().strip() == "Emailed 1 notification(s) in 1 email(s); 0 skipped, 0 failed, 0 deferred."
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(("args", "message"), [(["--loop", "0"], "positive"), (["--batch-size", "0"], "between")])
def test_command_refuses_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("sse_notify_email", *args, stdout=StringIO())


# -- limits ---------------------------------------------------------------------------------------


class KeepingBackend(BaseEmailBackend):
    """Keeps messages without building their MIME form (locmem does): 10,000 of those cost minutes."""

    kept: ClassVar[list[Any]] = []

    def send_messages(self, email_messages: Any) -> int:
        self.kept.extend(email_messages)
        return len(email_messages)


def test_digest_for_10000_users_costs_a_bounded_number_of_queries_per_batch(
    django_user_model: Any, django_assert_max_num_queries: Any, settings: Any
) -> None:
    """Queries per batch are bounded, whatever the number of users (the templates' cost is the project's)."""
    from sse_notify.emailing import BATCH_SIZE

    settings.EMAIL_BACKEND = f"{__name__}.KeepingBackend"
    KeepingBackend.kept = []
    # Small templates: rendering is not what this test measures.
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.cached.Loader",
                        [
                            (
                                "django.template.loaders.locmem.Loader",
                                {
                                    "sse_notify/email/subject.txt": "{{ count }}",
                                    "sse_notify/email/body.txt": "{% for e in entries %}* {{ e.title }} ({{ e.count }})\n{% endfor %}",
                                    "sse_notify/email/body.html": "{{ unsubscribe_url }}",
                                },
                            )
                        ],
                    )
                ]
            },
        }
    ]
    users = 10_000
    django_user_model.objects.bulk_create(
        django_user_model(username=f"d{i:05}", email=f"d{i:05}@example.test") for i in range(users)
    )
    everyone = django_user_model.objects.all()
    send_notification(everyone, "Weekly report", category="activity")
    for _ in range(2):  # a group of two for half of them
        send_notification(
            everyone.filter(username__regex=r"[02468]$"), "Build failed", category="activity", group_key="ci"
        )
    assert Notification.objects.update(created_at=NOW) == 2 * users
    rows = 2 * users
    sort_batches = -(-rows // BATCH_SIZE) + 1  # +1: the pass stops on an empty batch
    claim_batches = -(-users // BATCH_SIZE) + 1
    # Per sort batch: its transaction (2: begin/commit or a savepoint), reading it, one preference
    # lookup per category (1 here), one update per target state (at most 4).
    # Per claim batch: its users, its transaction (2), the claim, reading it back, one lookup per
    # category, skipping the unwanted, marking sent.
    # Per pass: skipping what was read while waiting, one last empty users query per mode, stale claims.
    per_sort, per_claim, per_pass = 2 + 1 + 1 + 4, 1 + 2 + 1 + 1 + 1 + 1 + 1, 1 + 3 + 1
    with django_assert_max_num_queries(per_pass + sort_batches * per_sort + 3):
        run_pass(now=later())  # sorts everything into the hourly queue
    assert Notification.objects.filter(email_state=EmailState.HOURLY).count() == rows
    with django_assert_max_num_queries(per_pass + claim_batches * per_claim):
        report = run_pass(now=later(75))
    assert (report.emails, report.emailed) == (users, rows)
    assert sorted(m.to[0] for m in KeepingBackend.kept) == [f"d{i:05}@example.test" for i in range(users)]
    grouped = next(m for m in KeepingBackend.kept if m.to == ["d00002@example.test"])
    assert grouped.body == "* Build failed (2)\n* Weekly report (1)\n"


def test_check_w030_warns_when_emails_cannot_link_back(settings: Any) -> None:
    from django.core.management import call_command as run_check

    from sse_notify.email_messages import check_email

    assert check_email() == []  # EMAIL_BASE_URL is set
    settings.SSE_NOTIFY = {**settings.SSE_NOTIFY, "EMAIL_BASE_URL": ""}
    [warning] = check_email()
    assert warning.id == "sse_notify.W030"
    assert "'comments', 'mentions', 'activity', 'news', 'security'" in warning.msg
    settings.SSE_NOTIFY = {**settings.SSE_NOTIFY, "CATEGORIES": {"quiet": {"label": "Quiet"}}}
    assert check_email() == []  # nothing is emailed by default: no warning
    settings.SSE_NOTIFY = {**settings.SSE_NOTIFY, "CATEGORIES": CATEGORIES}
    with pytest.raises(Exception, match="W030"):
        run_check("check", fail_level="WARNING", stdout=StringIO(), stderr=StringIO())


def test_admin_shows_and_filters_the_email_state(alice: Any, admin_client: Any) -> None:
    n = send(alice, "Emailed one")
    send(alice, "Still waiting")
    run_pass(now=later())
    Notification.objects.filter(title="Still waiting").update(email_state=EmailState.CLAIMED)
    page = admin_client.get("/admin/sse_notify/notification/", {"email_state__exact": "claimed"})
    assert page.status_code == 200
    assert b"Still waiting" in page.content and b"Emailed one" not in page.content
    detail = admin_client.get(f"/admin/sse_notify/notification/{n.pk}/change/")
    assert b"Emailed" in detail.content
