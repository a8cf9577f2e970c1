"""The management commands: sse_notify_send and sse_notify_prune."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sse_notify.api import send_notification
from sse_notify.management.commands.sse_notify_prune import parse_age
from sse_notify.models import Inbox, Notification

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


# -- sse_notify_send ---------------------------------------------------------------------------


def test_send_to_users(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    make_user("carol")
    out = run(
        "sse_notify_send", "--user", "alice", "--user", "bob", "--title", "Deploy", "--body", "at six",
        "--level", "warning", "--url", "https://status.example.com/", "--data", '{"deploy": 42}',
    )  # fmt: skip
    assert "Notified 2 users." in out
    rows = Notification.objects.order_by("recipient_id")
    assert [(n.recipient_id, n.title, n.body, n.level, n.url, n.data) for n in rows] == [
        (alice.pk, "Deploy", "at six", "warning", "https://status.example.com/", {"deploy": 42}),
        (bob.pk, "Deploy", "at six", "warning", "https://status.example.com/", {"deploy": 42}),
    ]


def test_send_to_group_and_everyone(make_user: Any) -> None:
    ops = Group.objects.create(name="ops")
    alice, _bob = make_user("alice"), make_user("bob")
    make_user("gone", is_active=False)
    alice.groups.add(ops)
    assert "Notified 1 user." in run("sse_notify_send", "--group", "ops", "--title", "Pager")
    assert "Notified 2 users." in run("sse_notify_send", "--all", "--title", "Maintenance")
    assert Notification.objects.filter(recipient=alice).count() == 2
    assert not Notification.objects.filter(recipient__username="gone").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "x"], "Choose recipients"),
        (["--all", "--user", "alice", "--title", "x"], "not both"),
        (["--user", "alice", "--user", "nobody", "--title", "x"], "Unknown user: 'nobody'"),
        (["--group", "nope", "--title", "x"], "Unknown group: 'nope'"),
        (["--group", "empty", "--title", "x"], "No active user matches"),
        (["--user", "alice", "--title", ""], "title: A notification needs a non-empty title."),
        (["--user", "alice", "--title", "x", "--url", "javascript:alert(1)"], "url: Link scheme 'javascript'"),
        (["--user", "alice", "--title", "x", "--data", "{nope"], "--data is not valid JSON"),
    ],
)
def test_send_errors(make_user: Any, args: list[str], message: str) -> None:
    make_user("alice")
    Group.objects.create(name="empty")
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run("sse_notify_send", *args)
    assert not Notification.objects.exists()


def test_send_unknown_level_is_refused_by_the_parser(make_user: Any) -> None:
    make_user("alice")
    with pytest.raises(CommandError, match="invalid choice: 'fatal'"):
        run("sse_notify_send", "--user", "alice", "--title", "x", "--level", "fatal")


# -- sse_notify_prune --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1.5d", "30 days", "1y"])
def test_prune_rejects_bad_age(text: str) -> None:
    with pytest.raises(CommandError, match="--older-than"):
        run("sse_notify_prune", "--older-than", text)


def age(notifications: list[Notification], days: int) -> None:
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def test_prune_deletes_old_read_only_and_raises_pruned_seq(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    old = [*send_notification([alice, bob], "old 1"), *send_notification([alice, bob], "old 2")]
    age(old, 40)
    old_unread = send_notification(alice, "old unread")  # alice seq 3, stays unread
    age(old_unread, 40)
    recent = send_notification([alice, bob], "recent")  # alice seq 4, bob seq 3
    Notification.objects.filter(pk__in=[n.pk for n in old + recent]).mark_read()

    assert "Would delete 4 read notifications" in run("sse_notify_prune", "--older-than", "30d", "--dry-run")
    assert Notification.objects.count() == 7
    assert Inbox.objects.get(user=alice).pruned_seq == 0

    assert "Deleted 4 read notifications" in run("sse_notify_prune", "--older-than", "30d")
    assert sorted(Notification.objects.values_list("title", flat=True)) == ["old unread", "recent", "recent"]
    assert Inbox.objects.get(user=alice).pruned_seq == 2
    assert Inbox.objects.get(user=bob).pruned_seq == 2
    assert Inbox.objects.get(user=alice).unread == 1
    # Nothing left to prune: pruned_seq never goes down.
    assert "Deleted 0 read notifications" in run("sse_notify_prune", "--older-than", "30d")
    assert Inbox.objects.get(user=alice).pruned_seq == 2


def test_prune_include_unread_keeps_counts(make_user: Any) -> None:
    alice = make_user("alice")
    old = send_notification(alice, "a") + send_notification(alice, "b")
    age(old, 2)
    send_notification(alice, "new")
    out = run("sse_notify_prune", "--older-than", "1d", "--include-unread")
    assert "Deleted 2 notifications" in out
    inbox = Inbox.objects.get(user=alice)
    assert (inbox.unread, inbox.pruned_seq, inbox.last_seq) == (1, 2, 3)


def test_prune_in_batches(make_user: Any) -> None:
    users = [make_user(f"user{i}") for i in range(5)]
    for i in range(5):
        send_notification(users, f"n{i}")  # 25 rows, seqs 1..5 per user
    Notification.objects.all().mark_read()
    age(list(Notification.objects.all()), 10)
    with CaptureQueriesContext(connection) as queries:
        out = run("sse_notify_prune", "--older-than", "1d", "--batch-size", "10")
    assert "Deleted 25 read notifications" in out
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 10 + 10 + 5
    assert not Notification.objects.exists()
    assert set(Inbox.objects.values_list("pruned_seq", flat=True)) == {5}


def test_prune_keeps_the_newer_pruned_seq(make_user: Any) -> None:
    alice = make_user("alice")
    old = send_notification(alice, "a")
    Notification.objects.all().mark_read()
    age(old, 10)
    Inbox.objects.filter(user=alice).update(pruned_seq=7)  # e.g. an earlier, wider prune
    run("sse_notify_prune", "--older-than", "1d")
    assert Inbox.objects.get(user=alice).pruned_seq == 7


def test_prune_rejects_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="--batch-size"):
        run("sse_notify_prune", "--older-than", "1d", "--batch-size", "0")


@pytest.mark.django_db(transaction=True)
async def test_after_a_prune_an_old_cursor_gets_a_reset_event(fresh_hub: Any, make_user: Any) -> None:
    """What pruned_seq is for: a client resuming from before the prune must reload its list."""
    from asgiref.sync import sync_to_async

    from tests.support import open_stream

    alice = await sync_to_async(make_user)("alice")

    def prepare() -> None:
        old = send_notification(alice, "old 1") + send_notification(alice, "old 2")
        Notification.objects.filter(pk__in=[n.pk for n in old]).mark_read()
        age(old, 40)
        send_notification(alice, "new")  # seq 3
        run("sse_notify_prune", "--older-than", "30d")

    await sync_to_async(prepare)()
    stale = await open_stream(alice, cursor="1")  # saw seq 1, which is gone now
    await stale.read_until(lambda s: s.events("reset"))
    (reset,) = stale.events("reset")
    assert (reset.id, reset.json()["reason"], reset.json()["cursor"]) == ("3", "expired", 3)
    await stale.disconnect()

    fresh = await open_stream(alice, cursor="2")  # up to date with everything pruned
    await fresh.read_until(lambda s: s.notifications())
    assert [e.json()["title"] for e in fresh.notifications()] == ["new"]
    assert not fresh.events("reset")
    await fresh.disconnect()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_commands_from_a_shell_exit_status_and_messages(make_user: Any) -> None:
    """What cron sees: exit status 0 and a count, or 1 and the reason on stderr."""
    from tests.support import run_manage

    make_user("alice")
    ok = run_manage("sse_notify_send", "--user", "alice", "--title", "From cron", check=False)
    assert (ok.returncode, ok.stdout.strip()) == (0, "Notified 1 user."), ok.stderr
    assert Notification.objects.get().title == "From cron"
    bad = run_manage("sse_notify_send", "--user", "nobody", "--title", "x", check=False)
    assert bad.returncode == 1
    assert "CommandError: Unknown user: 'nobody'." in bad.stderr
    pruned = run_manage("sse_notify_prune", "--older-than", "30d", "--dry-run", check=False)
    assert (pruned.returncode, pruned.stdout.split(" (")[0]) == (0, "Would delete 0 read notifications older than 30d")
