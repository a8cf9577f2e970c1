"""Set-based sends: N rows with per-user seqs in a few statements, whatever N.

A send to everyone selects the users inside the database; the publish after
commit still carries every recipient's (pk, seq, unread after) from RETURNING.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from sse_notify.api import EVERYONE, send_notification
from sse_notify.models import Inbox, Notification
from sse_notify.protocol import BROADCAST_GROUP, Deliver
from tests.support import postgres_only, sqlite_only

User = get_user_model()


def make_users(n: int, prefix: str = "s") -> list[int]:
    User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(n)])
    return list(User.objects.filter(username__startswith=prefix).order_by("pk").values_list("pk", flat=True))


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


@pytest.mark.django_db
def test_send_to_everyone_is_a_constant_number_of_statements(django_assert_max_num_queries: Any) -> None:
    make_users(3000)
    send_notification(User.objects.filter(username="s1"), "first")  # an inbox exists already for one user
    # One preferences query, then (PostgreSQL) one statement that selects the users,
    # allocates the seqs and inserts the rows; SQLite: two. Plus the savepoint pair of the
    # test's transaction. On 0b730f8: 25 on PostgreSQL for these 3,000 users, growing with them.
    with django_assert_max_num_queries(5), CaptureQueriesContext(connection) as queries:
        sent = send_notification(EVERYONE, "to all")
    assert len(writes(queries)) <= 3
    assert not any("auth_user" in q and "INSERT" not in q for q in writes(queries)[1:]), "users came to Python"
    assert len(sent) == 3000
    assert Notification.objects.count() == 3001
    by_user = dict(Inbox.objects.values_list("user_id", "last_seq"))
    assert sorted(set(by_user.values())) == [1, 2]
    assert {n.recipient_id: n.seq for n in sent} == by_user
    assert set(Inbox.objects.values_list("unread", flat=True)) == {1, 2}


@pytest.mark.django_db
def test_send_to_a_list_of_users_is_one_statement_per_chunk(django_assert_max_num_queries: Any) -> None:
    users = make_users(3000)
    with django_assert_max_num_queries(5):
        sent = send_notification(User.objects.filter(pk__in=users[:10]), "few")
    everyone = list(User.objects.filter(pk__in=users))
    with django_assert_max_num_queries(5):
        sent = send_notification(everyone, "many")  # resolved in Python: one array parameter
    assert [(n.recipient_id, n.seq) for n in sent[:2]] == [(users[0], 2), (users[1], 2)]
    assert len(sent) == 3000 and sent[-1].seq == 1


@pytest.mark.django_db
def test_every_column_is_written_and_rows_read_back_equal(make_user: Any) -> None:
    alice, actor = make_user("alice"), make_user("actor")
    (sent,) = send_notification(
        alice, "t", body="b", level="warning", url="/x/", data={"k": [1, "é"]}, actor=actor, group_key="g"
    )
    stored = Notification.objects.get(pk=sent.pk)
    for field in Notification._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(sent, field.attname), field.name


@pytest.mark.django_db(transaction=True)
def test_the_publish_carries_pk_seq_and_unread_of_every_recipient() -> None:
    users = make_users(40)
    send_notification(User.objects.filter(pk__in=users[:5]), "earlier")
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(BROADCAST_GROUP, channel)
        sent = send_notification(EVERYONE, "to all", data={"x": 1})
        message = async_to_sync(layer.receive)(channel)
    finally:
        channel_layers.backends.clear()
    assert message["type"] == Deliver.TYPE
    rows = {n.recipient_id: n for n in Notification.objects.filter(title="to all")}
    expected = sorted([uid, rows[uid].pk, rows[uid].seq, 2 if uid in users[:5] else 1] for uid in users)
    assert sorted(message["items"]) == expected
    assert '"title":"to all"' in message["common"]
    assert sorted([n.recipient_id, n.pk, n.seq, n._unread_after] for n in sent) == expected  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_rolled_back_send_to_everyone_gives_every_seq_back() -> None:
    make_users(50)
    send_notification(EVERYONE, "kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        send_notification(EVERYONE, "rolled back")
        raise RuntimeError
    send_notification(EVERYONE, "next")
    assert set(Notification.objects.filter(title="next").values_list("seq", flat=True)) == {2}
    assert set(Inbox.objects.values_list("last_seq", "unread")) == {(2, 2)}


@pytest.mark.django_db
@sqlite_only  # the path for SQLite before 3.35
def test_databases_without_returning_take_the_bulk_create_path(monkeypatch: Any) -> None:
    """SQLite before 3.35 has no RETURNING: the same results through allocate-then-bulk_create."""
    users = make_users(30)
    send_notification(User.objects.filter(pk__in=users[:10]), "first")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    sent = send_notification(EVERYONE, "fallback")
    Notification.objects.bulk_create([Notification(recipient_id=users[0], title="one more")])
    assert [(n.recipient_id, n.seq, n._unread_after) for n in sent[:2]] == [(users[0], 2, 2), (users[1], 2, 2)]  # type: ignore[attr-defined]
    assert sent[-1].seq == 1
    assert Inbox.objects.get(user_id=users[0]).last_seq == 3
    assert {(u, s) for u, s in Inbox.objects.values_list("last_seq", "unread")} == {(3, 3), (2, 2), (1, 1)}


@pytest.mark.django_db
@postgres_only
def test_postgres_a_send_updates_the_inbox_rows_in_place() -> None:
    """Inbox pages keep room (fillfactor 50, migration 0005): a send's seq update is a HOT
    update, no new primary-key entry, about half the upsert's work at 100,000 users."""
    make_users(300)
    send_notification(EVERYONE, "creates the inbox rows")

    def updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'sse_notify_inbox'"
            )
            row = cursor.fetchone()
        return row or (0, 0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'sse_notify_inbox'")
        assert "fillfactor=50" in cursor.fetchone()[0]
    before = updates()
    send_notification(EVERYONE, "updates them")
    after = updates()
    assert after[0] - before[0] == 300
    assert after[1] - before[1] == 300, "not all in place"


@pytest.mark.django_db
def test_a_personal_send_encodes_each_rows_content_as_the_whole_encode_does(make_user: Any) -> None:
    """The publisher encodes what rows of a send share once and splices in each row's
    data and time: the text is exactly that of encoding each row's fields whole."""
    from django.utils import timezone

    from sse_notify.events import encode_common
    from sse_notify.publish import deliveries

    actor = make_user()
    now = timezone.now()
    rows = [
        Notification(
            recipient_id=1,
            pk=10 + i,
            seq=1,
            title=title,
            body="b\u2028é",
            url=url,
            actor=who,
            data=data,
            created_at=now,
            category=cat,
            group_key=group,
        )
        for i, (title, url, who, data, cat, group) in enumerate(
            [
                ("t", "", None, {"i": 1}, "default", ""),
                ("t", "", None, {"i": 2, "s": "\u2029x\x85"}, "default", ""),
                ("t", "/x/", actor, {"nested": [1, 2.5, None, True, "é"]}, "default", "g"),
                ("tü", "https://example.com/a b", actor, {}, "default", ""),
                ("t", "", None, {"i": 1}, "default", ""),
                ("t", "javascript:alert(1)", None, None, "default", ""),
            ]
        )
    ]
    whole = sorted(encode_common(n.common_fields()) for n in rows)
    assert sorted(d.common for d in deliveries(rows) for _ in d.rows) == whole
