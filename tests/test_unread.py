"""The unread count never drifts: one source (``Inbox.unread``), kept exact by every path.

Sends, mark read/unread, ``QuerySet.update()``, ``save()``, ``bulk_update()`` and
deletes all lock the users' inbox rows first and set the count in the same
transaction. Also here: batched deletes, "mark all read" as ``ids: null``, the
JSON endpoints' answer while the database is down, and CORS preflights.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import F
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from sse_notify import db
from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification
from sse_notify.protocol import ReadChange, user_group
from tests.support import free_port, postgres_only

User = get_user_model()


def drift(user: Any) -> tuple[int, int]:
    """(Inbox.unread, COUNT of unread rows): equal when nothing drifted."""
    return Inbox.objects.get(user=user).unread, Notification.objects.for_user(user).unread_count()


# -- every path keeps the count --------------------------------------------------------------


@pytest.mark.django_db
def test_queryset_update_save_and_bulk_update_keep_the_count(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for i in range(4):
        send_notification([alice, bob], f"n{i}")
    Notification.objects.filter(recipient=alice, seq__lte=2).update(read_at=timezone.now())
    assert drift(alice) == (2, 2) and drift(bob) == (4, 4)

    n = Notification.objects.get(recipient=alice, seq=3)
    n.read_at = timezone.now()
    n.save()
    assert drift(alice) == (1, 1)

    stale = Notification.objects.get(recipient=alice, seq=4)  # loaded unread...
    Notification.objects.filter(pk=stale.pk).mark_read()  # ...read elsewhere...
    stale.title = "edited"
    stale.save()  # ...and saved back unread: the count follows the row, whatever it says
    assert drift(alice) == (1, 1)

    rows = list(Notification.objects.filter(recipient=bob))
    for row in rows[:3]:
        row.read_at = timezone.now()
    Notification.objects.bulk_update(rows, ["read_at"])
    assert drift(bob) == (1, 1)

    Notification.objects.filter(recipient=bob).update(read_at=None)
    assert drift(bob) == (4, 4)
    Notification.objects.filter(recipient=bob).update(title=F("title"))  # no count field: plain update
    assert drift(bob) == (4, 4)


@pytest.mark.django_db
def test_a_row_created_read_is_not_counted(make_user: Any) -> None:
    alice = make_user("alice")
    Notification.objects.bulk_create([Notification(recipient=alice, title="seen", read_at=timezone.now())])
    Notification(recipient=alice, title="new").save()
    assert drift(alice) == (1, 1)


@pytest.mark.django_db
def test_deleting_2000_unread_rows_is_a_few_queries(make_user: Any, django_assert_max_num_queries: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for _ in range(2):
        Notification.objects.bulk_create([Notification(recipient=alice, title=f"a{i}") for i in range(1000)])
    send_notification(bob, "bob keeps this")
    assert drift(alice) == (2000, 2000)
    # Lock the inboxes, one DELETE, recount (on 0b730f8: 4,023 queries, one recount per row).
    with django_assert_max_num_queries(8):
        deleted, _ = Notification.objects.filter(recipient__in=[alice, bob], title__startswith="a").delete()
    assert deleted == 2000
    assert drift(alice) == (0, 0) and drift(bob) == (1, 1)


@pytest.mark.django_db
def test_deleting_one_row_keeps_the_count(make_user: Any) -> None:
    alice = make_user("alice")
    a, b = (send_notification(alice, t)[0] for t in "ab")
    Notification.objects.filter(pk=a.pk).mark_read()
    fresh_b = Notification.objects.get(pk=b.pk)
    fresh_b.delete()
    assert drift(alice) == (0, 0)


# -- "mark all read" says null -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_mark_all_read_event_carries_null_not_every_id(client: Client, make_user: Any) -> None:
    alice = make_user("alice")
    for i in range(50):
        send_notification(alice, f"n{i}")
    client.force_login(alice)
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(user_group(alice.pk), channel)
        response = client.post(reverse("sse_notify:mark_all_read"))
        message = async_to_sync(layer.receive)(channel)
    finally:
        channel_layers.backends.clear()
    assert response.json() == {"marked": 50, "unread": 0}
    assert message == {"type": ReadChange.TYPE, "read": True, "users": [[alice.pk, 0, None]]}


# -- one source, under concurrency ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@postgres_only  # row locks
def test_postgres_concurrent_sends_and_read_changes_never_drift(make_user: Any) -> None:
    """Senders, readers and deleters at once on a few users; afterwards the counts are exact.

    On 0b730f8 mark_read recounted without the inbox lock, from a snapshot older than
    a send that committed while it waited: Inbox.unread ended below the rows.
    """
    users = [make_user(f"c{i}") for i in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    senders_done = threading.Barrier(4)  # three senders and this thread

    def worker(job: Any, rounds: int | None) -> None:
        try:
            rng = random.Random()
            done = 0
            while not stop.is_set() and (rounds is None or done < rounds):
                job(rng)
                done += 1
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            connections.close_all()
            if rounds is not None:
                senders_done.wait(60)

    def send(rng: random.Random) -> None:
        send_notification(rng.sample(users, rng.randint(1, 3)), "hello")

    def read(rng: random.Random) -> None:
        mine = Notification.objects.filter(recipient=rng.choice(users))
        rng.choice([mine.mark_read, mine.mark_all_read, mine.filter(seq__gt=rng.randint(0, 30)).mark_read])()

    def unread(rng: random.Random) -> None:
        mine = Notification.objects.filter(recipient=rng.choice(users), seq__lte=rng.randint(0, 30))
        rng.choice([mine.mark_unread, lambda: mine.update(read_at=None)])()

    def delete(rng: random.Random) -> None:
        Notification.objects.filter(recipient=rng.choice(users), seq__lte=rng.randint(0, 10)).delete()

    jobs = [(send, 80), (send, 80), (send, 80), (read, None), (read, None), (unread, None), (delete, None)]
    threads = [threading.Thread(target=worker, args=job) for job in jobs]
    for t in threads:
        t.start()
    senders_done.wait(120)  # the senders have finished; the others ran against them all along
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Inbox.objects.filter(user__in=users).count() == 3
    for user in users:
        assert drift(user)[0] == drift(user)[1], user


# -- JSON endpoints while the database is down ---------------------------------------------------


@contextmanager
def database_down(tmp_path: Path) -> Iterator[None]:
    """Point the default connection at nothing (a closed port / a missing directory), then back."""
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    if conn.vendor == "postgresql":
        conn.settings_dict["PORT"] = str(free_port())
    else:
        conn.settings_dict["NAME"] = str(tmp_path / "missing" / "db.sqlite3")
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_json_endpoints_answer_503_with_retry_after_while_the_database_is_down(
    client: Client, make_user: Any, tmp_path: Path, caplog: Any, monkeypatch: Any
) -> None:
    alice = make_user("alice")
    send_notification(alice, "hello")
    client.force_login(alice)
    monkeypatch.setattr(db, "_last_error_log", 0.0)  # this test's outage starts a fresh interval
    calls = [("get", "sse_notify:list"), ("get", "sse_notify:unread_count"), ("post", "sse_notify:mark_all_read")]
    with caplog.at_level(logging.WARNING), database_down(tmp_path):
        for _ in range(3):
            for method, name in calls:
                response = getattr(client, method)(reverse(name))
                assert response.status_code == 503, (name, response.content[:200])
                assert response["Content-Type"] == "application/json"
                assert response.json()["error"] == "unavailable"
                assert int(response["Retry-After"]) >= 1
    outage = [r for r in caplog.records if r.name == "sse_notify" and "failed" in r.getMessage()]
    assert len(outage) == 1, [r.getMessage() for r in caplog.records]
    # Django's request logger still notes each 5xx in one line, as for the stream; never a traceback.
    assert not [r for r in caplog.records if r.exc_info], "a traceback per request"
    assert client.get(reverse("sse_notify:unread_count")).json()["unread"] == 1  # back when the database is


# -- CORS preflight ------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"CORS_ALLOWED_ORIGINS": [ORIGIN]})
@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("sse_notify:stream", [], "GET"),
        ("sse_notify:list", [], "GET"),
        ("sse_notify:unread_count", [], "GET"),
        ("sse_notify:mark_read", [1], "POST"),
        ("sse_notify:mark_all_read", [], "POST"),
        ("sse_notify:mark_unread", [1], "POST"),
        ("sse_notify:mark_group_read", [1], "POST"),
        ("sse_notify:preferences_api", [], "POST"),
    ],
)
def test_preflight_lets_an_allowed_origin_send_the_cursor_and_csrf_headers(
    client: Client, name: str, args: list[Any], method: str
) -> None:
    url = reverse(name, args=args)
    asked = {"HTTP_ORIGIN": ORIGIN, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": method}
    ok = client.options(url, HTTP_ACCESS_CONTROL_REQUEST_HEADERS="last-event-id, x-csrftoken", **asked)
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    assert ok["Access-Control-Allow-Credentials"] == "true"
    assert method in ok["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in ok["Access-Control-Allow-Headers"].split(",")}
    assert {"last-event-id", "x-csrftoken"} <= allowed
    assert "Origin" in ok["Vary"]

    other = client.options(url, **{**asked, "HTTP_ORIGIN": "https://evil.example.com"})
    assert other.status_code == 204
    assert "Access-Control-Allow-Origin" not in other and "Access-Control-Allow-Headers" not in other
