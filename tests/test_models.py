"""The queue: seq allocation, read state, unread counts, and the out-of-order commit case."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification
from tests.support import ON_POSTGRES, postgres_only


def seqs(user: Any) -> list[int]:
    return list(Notification.objects.filter(recipient=user).order_by("seq").values_list("seq", flat=True))


# -- seq allocation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_seq_is_per_user_and_gap_free(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    send_notification(alice, "a1")
    send_notification([alice, bob], "both")
    send_notification(alice, "a3")
    assert seqs(alice) == [1, 2, 3]
    assert seqs(bob) == [1]
    assert Inbox.objects.get(user=alice).last_seq == 3


@pytest.mark.django_db
def test_bulk_create_with_a_user_twice_gives_consecutive_seqs(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    made = Notification.objects.bulk_create(
        [Notification(recipient=alice, title="1"), Notification(recipient=bob, title="2"),
         Notification(recipient=alice, title="3")]
    )  # fmt: skip
    assert [(n.recipient_id, n.seq) for n in made] == [(alice.pk, 1), (bob.pk, 1), (alice.pk, 2)]
    assert Inbox.objects.get(user=alice).unread == 2


@pytest.mark.django_db
def test_save_of_a_new_row_allocates_seq(make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "first")
    n = Notification(recipient=alice, title="via save()")
    n.save()
    assert n.pk is not None and n.seq == 2
    n.title = "edited"
    n.save()  # an update keeps its seq
    n.refresh_from_db()
    assert (n.title, n.seq) == ("edited", 2)
    assert Inbox.objects.get(user=alice).last_seq == 2


@pytest.mark.django_db
def test_rolled_back_send_gives_its_seq_back(make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        send_notification(alice, "rolled back")
        raise RuntimeError
    send_notification(alice, "next")
    assert seqs(alice) == [1, 2]


@pytest.mark.django_db
def test_after_is_the_replay_query(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for i in range(4):
        send_notification([alice, bob], f"n{i}")
    replay = Notification.objects.for_user(alice).after(2)
    assert [(n.seq, n.title) for n in replay] == [(3, "n2"), (4, "n3")]


# -- read state --------------------------------------------------------------------------------


def statements(queries: CaptureQueriesContext, verb: str, table: str) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'{verb} "{table}"')]


@pytest.mark.django_db
def test_mark_read_is_one_update_and_keeps_the_count(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for i in range(5):
        send_notification([alice, bob], f"n{i}")
    mine = Notification.objects.for_user(alice)
    first_two = mine.filter(seq__lte=2)
    with CaptureQueriesContext(connection) as queries:
        assert first_two.mark_read() == 2
    assert len(statements(queries, "UPDATE", "sse_notify_notification")) == 1
    assert mine.unread_count() == 3
    assert Inbox.objects.get(user=alice).unread == 3

    # "mark all read": the same call on the user's whole set, again one UPDATE
    with CaptureQueriesContext(connection) as queries:
        assert mine.mark_read() == 3
    assert len(statements(queries, "UPDATE", "sse_notify_notification")) == 1
    assert mine.unread_count() == 0
    assert Inbox.objects.get(user=alice).unread == 0
    assert mine.mark_read() == 0  # already read: nothing changes, read_at is kept
    assert Inbox.objects.get(user=bob).unread == 5  # bob untouched


@pytest.mark.django_db
def test_mark_unread(make_user: Any) -> None:
    alice = make_user("alice")
    send_notification(alice, "a")
    send_notification(alice, "b")
    mine = Notification.objects.for_user(alice)
    mine.mark_read()
    assert mine.filter(seq=1).mark_unread() == 1
    assert [n.is_read for n in mine.order_by("seq")] == [False, True]
    assert Inbox.objects.get(user=alice).unread == 1


@pytest.mark.django_db
def test_deleting_an_unread_notification_lowers_the_count(make_user: Any) -> None:
    alice = make_user("alice")
    a, b, c = (send_notification(alice, t)[0] for t in "abc")
    Notification.objects.filter(pk=c.pk).mark_read()
    assert Inbox.objects.get(user=alice).unread == 2
    a.delete()
    assert Inbox.objects.get(user=alice).unread == 1
    c.delete()  # a read one: the count does not move
    assert Inbox.objects.get(user=alice).unread == 1
    Notification.objects.filter(pk=b.pk).delete()
    assert Inbox.objects.get(user=alice).unread == 0
    assert Notification.objects.for_user(alice).unread_count() == 0


@pytest.mark.django_db
def test_for_user_of_anonymous_is_empty(user: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    send_notification(user, "x")
    assert not Notification.objects.for_user(AnonymousUser()).exists()
    assert Notification.objects.for_user(user).count() == 1


# -- the out-of-order commit case --------------------------------------------------------------
#
# With an auto-increment id as the cursor, transaction A can insert id 10, transaction B
# insert id 11 and commit first; a client that saw 11 resumes "after 11" and never sees 10.
# Here each send takes the recipient's Inbox row lock before it gets its seq and keeps it
# until commit, so a second send to the same user waits: commit order is seq order.


class Sender(threading.Thread):
    """Sends in its own connection and transaction, then holds it open until released."""

    def __init__(self, user: Any, title: str, commits: list[str], hold: bool = True) -> None:
        super().__init__(daemon=True)
        self.user, self.title, self.commits = user, title, commits
        self.sent = threading.Event()  # the row is written (uncommitted)
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.backend_pid: int | None = None
        self.seq: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if ON_POSTGRES:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.backend_pid = cursor.fetchone()[0]
            with transaction.atomic():
                (n,) = send_notification(self.user, self.title)
                self.seq = n.seq
                self.sent.set()
                assert self.release.wait(30), "never released"
            self.commits.append(self.title)
        except BaseException as exc:
            self.error = exc
            self.sent.set()
        finally:
            connections.close_all()

    def finish(self) -> None:
        self.release.set()
        self.join(30)
        assert not self.is_alive()
        if self.error:
            raise self.error


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll for a state another thread will reach (bounded; not a timing assertion)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def waiting_on_lock(pid: int | None) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row and row[0] == "Lock")


@pytest.fixture
def senders() -> Iterator[list[threading.Thread]]:
    started: list[threading.Thread] = []
    yield started
    for t in started:
        if isinstance(t, Sender):
            t.release.set()
        t.join(30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only
def test_postgres_second_send_waits_for_the_first_to_commit(user: Any, senders: list[threading.Thread]) -> None:
    commits: list[str] = []
    first, second = Sender(user, "first", commits), Sender(user, "second", commits)
    senders += [first, second]
    first.start()
    assert first.sent.wait(20) and first.error is None
    second.start()
    # The second transaction waits on the first one's Inbox row lock: it has no seq yet,
    # so it cannot take a seq (or an id) and commit ahead of the first.
    wait_for(lambda: waiting_on_lock(second.backend_pid), "the second send to wait on a lock")
    assert second.seq is None and not second.sent.is_set()
    assert seqs(user) == []  # a reader sees neither yet

    first.finish()  # commit the first: the second now gets the lock and its seq
    assert second.sent.wait(20) and second.error is None
    client_cursor = max(seqs(user))  # the client has received the first one
    assert client_cursor == 1
    second.finish()

    assert commits == ["first", "second"]
    assert (first.seq, second.seq) == (1, 2)
    replay = Notification.objects.for_user(user).after(client_cursor)
    assert [(n.seq, n.title) for n in replay] == [(2, "second")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only
def test_postgres_first_started_commits_last_and_replay_skips_nothing(
    make_user: Any, senders: list[threading.Thread]
) -> None:
    """Transaction A starts first and takes the lowest id, B commits in between, A commits last."""
    alice, bob = make_user("alice"), make_user("bob")
    wrote_first_part, go_on = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def transaction_a() -> None:
        try:
            with transaction.atomic():
                send_notification(bob, "A to bob")
                wrote_first_part.set()
                assert go_on.wait(30)
                (n,) = send_notification(alice, "A to alice")
                result["seq"] = n.seq
        except BaseException as exc:
            result["error"] = exc
            wrote_first_part.set()
        finally:
            connections.close_all()

    a = threading.Thread(target=transaction_a, daemon=True)
    senders.append(a)
    a.start()
    assert wrote_first_part.wait(20) and "error" not in result

    (b,) = send_notification(alice, "B to alice")  # B starts after A and commits first
    client_cursor = b.seq  # the client receives B live
    assert client_cursor == 1

    go_on.set()
    a.join(30)
    assert "error" not in result, result.get("error")
    assert result["seq"] == 2  # the later commit has the later seq, whatever the start order
    ids = dict(Notification.objects.values_list("title", "pk"))
    assert ids["A to bob"] < ids["B to alice"]
    replay = Notification.objects.for_user(alice).after(client_cursor)
    assert [(n.seq, n.title) for n in replay] == [(2, "A to alice")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_become_visible_in_seq_order(user: Any, senders: list[threading.Thread]) -> None:
    """Threads send to one user at once (PostgreSQL: row lock; SQLite: its single writer).

    Every snapshot a reader takes meanwhile is a gap-free prefix 1..k: notifications
    become visible in seq order, so a client's cursor can never pass an unseen one.
    """
    commits: list[str] = []
    threads = [Sender(user, f"n{i}", commits, hold=False) for i in range(8)]
    senders += threads
    snapshots: list[list[int]] = []
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        snapshots.append(seqs(user))
    for t in threads:
        t.finish()
    snapshots.append(seqs(user))
    assert snapshots[-1] == list(range(1, 9))
    assert sorted(t.seq or 0 for t in threads) == list(range(1, 9))
    for snapshot in snapshots:
        assert snapshot == list(range(1, len(snapshot) + 1)), f"a reader saw a hole: {snapshot}"
