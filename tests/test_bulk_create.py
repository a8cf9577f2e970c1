"""``Notification.objects.bulk_create``: personal content written set-based, whatever N.

New rows (no pk, no seq) take one statement per chunk on PostgreSQL (seq
allocation and INSERT together) and two on SQLite; the objects come back with
``pk``, ``seq`` and ``_unread_after`` set, exactly as the rows were stored.
Rows with their own seq, expressions and the conflict options take Django's path.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.db import DataError, connection, connections, transaction
from django.db.models import Value
from django.db.models.functions import Now
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sse_notify import models, protocol
from sse_notify.models import Inbox, Notification, recount_unread
from sse_notify.preferences import set_preference
from sse_notify.protocol import BROADCAST_GROUP, DeliverMany
from sse_notify.publish import created_sends, deliver_messages
from sse_notify.signals import notification_sent
from tests.support import ON_POSTGRES, postgres_only, sqlite_only

User = get_user_model()

CATEGORIES = {"comments": {"label": "Comments", "desktop": False, "email": "daily"}}


def make_users(n: int, prefix: str = "b") -> list[int]:
    User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(n)])
    return list(User.objects.filter(username__startswith=prefix).order_by("pk").values_list("pk", flat=True))


def statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def assert_gap_free(users: list[int]) -> None:
    """Every user's seqs are 1..last_seq, and the inbox count is the recount."""
    for uid, last, unread in Inbox.objects.filter(user_id__in=users).values_list("user_id", "last_seq", "unread"):
        stored = sorted(Notification.objects.filter(recipient_id=uid).values_list("seq", flat=True))
        assert stored == list(range(1, last + 1)), uid
        assert unread == Notification.objects.filter(models.COUNTED, recipient_id=uid).count(), uid
    counts = dict(Inbox.objects.filter(user_id__in=users).values_list("user_id", "unread"))
    assert recount_unread(users, "default") == counts


@pytest.mark.django_db
def test_a_burst_and_a_fan_out_are_a_constant_number_of_statements(django_assert_max_num_queries: Any) -> None:
    users = make_users(1000)
    t0 = timezone.now()
    burst = [Notification(recipient_id=users[0], title="burst", data={"i": i}) for i in range(2000)]
    # One preferences query; PostgreSQL: one statement allocates the seqs and inserts;
    # SQLite: two (allocate, insert). On 3ebd509: 22 on PostgreSQL with this batch_size
    # (one INSERT per batch) and 37 on SQLite (its 999-variable limit), growing with N.
    with django_assert_max_num_queries(3), CaptureQueriesContext(connection) as queries:
        Notification.objects.bulk_create(burst, batch_size=100)
    assert len(statements(queries)) == (2 if ON_POSTGRES else 3)
    fan_out = [Notification(recipient_id=uid, title="fan-out", data={"u": uid}) for uid in reversed(users)]
    with CaptureQueriesContext(connection) as queries:
        Notification.objects.bulk_create(fan_out)
    # 1,000 users: still one preferences query (the ids travel as one JSON parameter).
    assert len(statements(queries)) == (2 if ON_POSTGRES else 3)
    assert [n.seq for n in burst] == list(range(1, 2001))
    assert [n.data for n in burst] == [{"i": i} for i in range(2000)]
    assert {n.seq for n in fan_out[:-1]} == {1} and fan_out[-1].seq == 2001  # users[0] had the burst
    assert Inbox.objects.get(user_id=users[0]).last_seq == 2001
    assert all(n.created_at >= t0 for n in burst)
    assert_gap_free(users)


@pytest.mark.django_db
def test_objects_come_back_as_stored_with_consecutive_seqs_in_the_given_order(make_user: Any) -> None:
    alice, bob, carol, actor = make_user("alice"), make_user("bob"), make_user("carol"), make_user("actor")
    Notification.objects.bulk_create([Notification(recipient=bob, title="earlier")])
    now = timezone.now()
    objs = [
        Notification(recipient=alice, title="a1", data={"k": [1, "é", None], "f": 0.1}, url="/a/"),
        Notification(recipient=bob, title="b2", body="body", level="warning", actor=actor, data="just text"),
        Notification(recipient=alice, title="a2", data=None, read_at=now, group_key="g"),  # read: not counted
        Notification(recipient=carol, title="c1", data=7, created_at=now - timedelta(days=3, microseconds=1)),
        Notification(recipient=alice, title="a3", data=[], in_app=False),  # preferences decide in_app at send time
        Notification(recipient=bob, title="b3", data={"nested": {"deep": True}}, emailed_at=now),
    ]
    made = Notification.objects.bulk_create(objs)
    assert made == objs
    assert [(n.recipient_id, n.seq) for n in made] == [
        (alice.pk, 1), (bob.pk, 2), (alice.pk, 2), (carol.pk, 1), (alice.pk, 3), (bob.pk, 3),
    ]  # fmt: skip
    assert [n._unread_after for n in made] == [1, 2, 1, 1, 2, 3]  # type: ignore[attr-defined]
    assert all(not n._state.adding and n._state.db == "default" for n in made)
    assert [n.pk for n in made] == sorted(n.pk for n in made)  # inserted in the given order
    for n in made:
        stored = Notification.objects.get(pk=n.pk)
        for field in Notification._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(n, field.attname), (n.title, field.name)
    assert Notification.objects.get(pk=made[1].pk).data == "just text"
    assert Notification.objects.get(pk=made[2].pk).data is None
    assert Notification.objects.filter(data__isnull=True).count() == 2  # "earlier" and a2: SQL NULL
    assert dict(Inbox.objects.values_list("user_id", "unread")) == {alice.pk: 2, bob.pk: 3, carol.pk: 1}
    assert_gap_free([alice.pk, bob.pk, carol.pk])


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_preferences_apply_per_row_and_in_app_off_rows_are_not_counted(make_user: Any) -> None:
    quiet, loud = make_user("quiet"), make_user("loud")
    set_preference(quiet, "comments", in_app=False)
    set_preference(loud, "comments", desktop=True)
    objs = [
        Notification(recipient=who, title=f"{who.username} {i}", category="comments", data={"i": i})
        for i in range(3)
        for who in (quiet, loud)
    ]
    Notification.objects.bulk_create(objs)
    assert {(n.recipient_id, n.in_app, n.desktop) for n in objs} == {(quiet.pk, False, False), (loud.pk, True, True)}
    assert [n._unread_after for n in objs if n.recipient_id == quiet.pk] == [0, 0, 0]  # type: ignore[attr-defined]
    assert [n._unread_after for n in objs if n.recipient_id == loud.pk] == [1, 2, 3]  # type: ignore[attr-defined]
    assert dict(Inbox.objects.values_list("user_id", "unread")) == {quiet.pk: 0, loud.pk: 3}
    stored = set(Notification.objects.values_list("recipient_id", "in_app", "desktop"))
    assert stored == {(quiet.pk, False, False), (loud.pk, True, True)}


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CATEGORIES": CATEGORIES})
def test_preferences_of_many_recipients_are_one_query(django_assert_max_num_queries: Any) -> None:
    users = make_users(2000)
    set_preference(users[1950], "comments", in_app=False)
    set_preference(users[5], "comments", desktop=True)
    objs = [Notification(recipient_id=uid, title="t", category="comments", data={"u": uid}) for uid in users]
    with django_assert_max_num_queries(3):  # preferences, then one statement (SQLite: two)
        Notification.objects.bulk_create(objs)
    odd = {n.recipient_id: (n.in_app, n.desktop) for n in objs if (n.in_app, n.desktop) != (True, False)}
    assert odd == {users[1950]: (False, False), users[5]: (True, True)}
    assert Inbox.objects.get(user_id=users[1950]).unread == 0
    assert Inbox.objects.filter(unread=1).count() == 1999


@pytest.mark.django_db
def test_rows_over_the_chunk_size_keep_whole_users_together(monkeypatch: Any) -> None:
    monkeypatch.setattr(models, "SEND_CHUNK", 7)
    users = make_users(10)
    rng = random.Random(11)
    recipients = [rng.choice(users) for _ in range(60)]
    objs = [Notification(recipient_id=uid, title=f"n{i}", data={"i": i}) for i, uid in enumerate(recipients)]
    with CaptureQueriesContext(connection) as queries:
        Notification.objects.bulk_create(objs)
    inserts = [q for q in statements(queries) if 'INSERT INTO "sse_notify_notification"' in q]
    assert 2 <= len(inserts) < 60
    for uid in set(recipients):
        mine = [n for n in objs if n.recipient_id == uid]
        assert [n.seq for n in mine] == list(range(1, len(mine) + 1))  # the given order, across chunks
    assert_gap_free(users)


@pytest.mark.django_db
def test_rows_django_must_compile_take_its_path_with_the_same_results(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    Notification.objects.bulk_create([Notification(recipient=alice, title="first")])
    with_expressions = [
        Notification(recipient=alice, title="now", created_at=Now()),
        Notification(recipient=bob, title=Value("value")),
    ]
    Notification.objects.bulk_create(with_expressions)
    assert [(n.recipient_id, n.seq, n._unread_after) for n in with_expressions] == [(alice.pk, 2, 2), (bob.pk, 1, 1)]  # type: ignore[attr-defined]
    assert Notification.objects.get(recipient=bob).title == "value"
    # Rows that bring their own seq (a copy, a fixture) are counted under the lock.
    Notification.objects.bulk_create([Notification(recipient=bob, seq=5, title="copied")])
    assert Inbox.objects.get(user=bob).unread == 2
    # ignore_conflicts: Django's path (after the same allocation).
    more = Notification.objects.bulk_create([Notification(recipient=alice, title="more")], ignore_conflicts=True)
    assert more[0].seq == 3
    with pytest.raises(ValueError, match="Batch size"):
        Notification.objects.bulk_create([Notification(recipient=alice, title="x")], batch_size=0)
    assert Inbox.objects.get(user=alice).last_seq == 3


@pytest.mark.django_db
def test_an_unsaved_related_object_is_refused_as_django_does(make_user: Any) -> None:
    alice = make_user("alice")
    with pytest.raises(ValueError, match="unsaved related object 'actor'"):
        Notification.objects.bulk_create([Notification(recipient=alice, title="x", actor=User(username="new"))])
    saved_later = User(username="later")
    n = Notification(recipient=alice, title="y", actor=saved_later)
    saved_later.save()  # saved after the assignment: its pk is picked up
    Notification.objects.bulk_create([n])
    assert Notification.objects.get(pk=n.pk).actor_id == saved_later.pk


@pytest.mark.django_db
@postgres_only
def test_a_too_long_title_is_refused_not_cut(make_user: Any) -> None:
    alice = make_user("alice")
    with pytest.raises(DataError), transaction.atomic():
        Notification.objects.bulk_create(
            [Notification(recipient=alice, title="t" * 201), Notification(recipient=alice, title="fine")]
        )
    with pytest.raises(DataError), transaction.atomic():  # one shared title for all rows
        Notification.objects.bulk_create(
            [Notification(recipient=alice, title="t" * 201, data={"i": i}) for i in range(2)]
        )
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_text_that_no_database_keeps_whole_is_refused_or_kept_exactly(make_user: Any) -> None:
    """A lone surrogate fails the call (nothing written), as a single row does; a NUL is
    kept exactly on SQLite (json_extract would end the text there) and refused by
    PostgreSQL. Rows differ, so the text travels in the JSON document. (Outside attack:
    SQLite stored the surrogate as bytes that are not UTF-8, and that user's stream,
    list and admin pages failed on reading the row; a NUL cut the title short.)"""
    alice, bob = make_user("alice"), make_user("bob")
    refused = (UnicodeEncodeError, DataError)
    # A lone surrogate, and a pair of them (PostgreSQL's jsonb made the pair one character:
    # the row held other text than the caller's object; outside attack of 2026-12-02).
    for text in ("a\ud800b", "x\ud83d\ude00"):
        with pytest.raises(UnicodeEncodeError), transaction.atomic():
            Notification.objects.bulk_create(
                [Notification(recipient=alice, title="t", body=text), Notification(recipient=bob, title="t", body="y")]
            )
        assert not Notification.objects.exists()
    with pytest.raises(refused), transaction.atomic():
        Notification.objects.bulk_create(
            [Notification(recipient=alice, title="a\ud800b"), Notification(recipient=bob, title="other", body="x")]
        )
    assert not Notification.objects.exists()
    rows = [Notification(recipient=alice, title="a\x00b", body="b\x00c"), Notification(recipient=bob, title="other")]
    if ON_POSTGRES:
        with pytest.raises(refused), transaction.atomic():
            Notification.objects.bulk_create(rows)
        assert not Notification.objects.exists()
    else:
        Notification.objects.bulk_create(rows)
        stored = Notification.objects.get(recipient=alice)
        assert (stored.title, stored.body) == ("a\x00b", "b\x00c")
    # What is left is readable, and sends go on with gap-free seqs.
    Notification.objects.bulk_create([Notification(recipient=alice, title="Zo\u00eb \U0001f600", data={"i": 1})])
    assert Notification.objects.filter(recipient=alice).order_by("-seq")[0].title == "Zo\u00eb \U0001f600"
    assert_gap_free([alice.pk] if ON_POSTGRES else [alice.pk, bob.pk])  # bob got nothing on PostgreSQL


@pytest.mark.django_db
def test_a_preset_seq_ahead_of_the_counter_moves_it(make_user: Any) -> None:
    """A copied row with a seq past the user's counter: later sends continue after it
    (they ran into it: an IntegrityError on every send to that user, and to anyone sent
    together with them)."""
    from sse_notify.api import send_notification

    alice, carol = make_user("alice"), make_user("carol")
    Notification.objects.bulk_create([Notification(recipient=alice, title="one")])
    Notification.objects.bulk_create([Notification(recipient=alice, seq=4, title="copied")])
    Notification.objects.bulk_create([Notification(recipient=carol, seq=2, title="first ever")])  # no inbox yet
    for i in range(3):
        send_notification([alice, carol], f"after {i}")
    assert list(Notification.objects.filter(recipient=alice).order_by("seq").values_list("seq", flat=True)) == [
        1,
        4,
        5,
        6,
        7,
    ]
    assert list(Notification.objects.filter(recipient=carol).order_by("seq").values_list("seq", flat=True)) == [
        2,
        3,
        4,
        5,
    ]
    assert dict(Inbox.objects.values_list("user_id", "last_seq")) == {alice.pk: 7, carol.pk: 5}
    assert dict(Inbox.objects.values_list("user_id", "unread")) == {alice.pk: 5, carol.pk: 4}
    # A preset seq behind the counter leaves it where it is.
    Notification.objects.bulk_create([Notification(recipient=alice, seq=2, title="older copy")])
    assert Inbox.objects.get(user=alice).last_seq == 7


@pytest.mark.django_db
def test_a_rolled_back_bulk_create_gives_its_seqs_back(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    Notification.objects.bulk_create([Notification(recipient=alice, title="kept")])
    with pytest.raises(RuntimeError), transaction.atomic():
        Notification.objects.bulk_create(
            [Notification(recipient=u, title="gone", data={"i": i}) for i in range(5) for u in (alice, bob)]
        )
        raise RuntimeError
    (n,) = Notification.objects.bulk_create([Notification(recipient=bob, title="next")])
    assert n.seq == 1
    assert set(Inbox.objects.values_list("user_id", "last_seq", "unread")) == {(alice.pk, 1, 1), (bob.pk, 1, 1)}


@pytest.mark.django_db(transaction=True)
def test_the_publish_and_the_signal_get_every_row_after_commit(make_user: Any) -> None:
    users = [make_user(f"p{i}") for i in range(20)]
    got: list[Any] = []

    def receiver(sender: Any, notifications: Any, **kwargs: Any) -> None:
        got.extend(notifications)

    notification_sent.connect(receiver)
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(BROADCAST_GROUP, channel)
        with transaction.atomic():
            made = Notification.objects.bulk_create(
                [Notification(recipient=u, title="personal", data={"to": u.pk}) for u in users]
                + [Notification(recipient=users[0], title="second", data={"n": 2})]
            )
            assert got == []  # nothing before the commit
        message = async_to_sync(layer.receive)(channel)
    finally:
        notification_sent.disconnect(receiver)
        channel_layers.backends.clear()
    assert got == made and all(n.pk and n.seq for n in got)
    assert created_sends(made) == [(BROADCAST_GROUP, message)]  # 21 recipients: once to the broadcast group
    decoded = protocol.decode(message)
    assert isinstance(decoded, DeliverMany)
    assert len(decoded.parts) == len(deliver_messages(made)) == 21  # distinct content: one part per row
    items = sorted(list(item) for part in decoded.parts for item in part.rows)
    rows = Notification.objects.values_list("recipient_id", "pk", "seq")
    unread = {n.pk: n._unread_after for n in made}  # type: ignore[attr-defined]
    assert items == sorted([uid, pk, seq, unread[pk]] for uid, pk, seq in rows)
    assert sorted(unread[pk] for uid, pk, _ in rows if uid == users[0].pk) == [1, 2]


@pytest.mark.django_db
@sqlite_only  # SQLite before 3.35
def test_old_sqlite_without_returning_still_takes_the_allocate_then_insert_path(
    monkeypatch: Any, make_user: Any
) -> None:
    alice = make_user("alice")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    made = Notification.objects.bulk_create(
        [Notification(recipient=alice, title=f"n{i}", data={"i": i}) for i in range(3)]
    )
    assert [n.seq for n in made] == [1, 2, 3]
    assert Inbox.objects.get(user=alice).unread == 3


@pytest.mark.django_db(transaction=True)
@postgres_only
def test_postgres_concurrent_bulk_creates_to_overlapping_users_stay_gap_free() -> None:
    """Threads write bursts and fan-outs to overlapping users in random orders at once (and
    sends of one content after them in the same transaction):
    every user's seqs come out unique and gap-free, the counts exact, and no deadlock
    (the locks are taken in user-id order within and across chunks)."""
    users = make_users(30, prefix="c")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def sender(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait(10)
            for round_ in range(5):
                recipients = [rng.choice(users) for _ in range(rng.randint(1, 80))]
                with transaction.atomic():
                    Notification.objects.bulk_create(
                        [
                            Notification(recipient_id=uid, title=f"{k}.{round_}", data={"i": i}, in_app=i % 3 > 0)
                            for i, uid in enumerate(recipients)
                        ]
                    )
                    if round_ % 2:  # the set-based send of one content, in the same transaction
                        Notification.objects.send(sorted(set(recipients[::2])), {"title": f"{k}.{round_} all"})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "SEND_CHUNK", 25)  # several chunks a send: locks across chunks too
        threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert_gap_free(users)
