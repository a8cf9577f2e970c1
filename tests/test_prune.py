"""Pruning lives on the manager (``Notification.objects.prune``); the command is a thin shell over it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from sse_notify.api import send_notification
from sse_notify.models import Inbox, Notification

pytestmark = pytest.mark.django_db


def backdate(days: int, **filters: Any) -> None:
    Notification.objects.filter(**filters).update(created_at=timezone.now() - timedelta(days=days))


def test_prune_on_a_queryset_deletes_only_its_old_rows(make_user: Any) -> None:
    alice = make_user("alice")
    for title in ("a", "b", "c"):
        send_notification(alice, title)
    send_notification(alice, "keep")
    backdate(40)
    Notification.objects.filter(title__in=["a", "b", "keep"]).mark_read()
    assert Notification.objects.prunable(timedelta(days=30)).count() == 3
    assert Notification.objects.exclude(title="keep").prune(timedelta(days=30)) == 2
    assert sorted(Notification.objects.values_list("title", flat=True)) == ["c", "keep"]
    inbox = Inbox.objects.get(user=alice)
    assert (inbox.pruned_seq, inbox.unread) == (2, 1)


def test_prune_with_unread_keeps_counts_and_reports_progress(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    Notification.objects.bulk_create([Notification(recipient=alice, title=f"a{i}") for i in range(25)])
    send_notification([alice, bob], "new")
    backdate(3, title__startswith="a")
    seen: list[int] = []
    assert Notification.objects.prune(timedelta(days=1), include_unread=True, batch_size=10, progress=seen.append) == 25
    assert seen == [10, 20, 25]
    assert [(i.user_id, i.unread, i.pruned_seq) for i in Inbox.objects.order_by("user_id")] == [
        (alice.pk, 1, 25),
        (bob.pk, 1, 0),
    ]


def test_a_batch_is_a_few_queries_however_many_rows(make_user: Any, django_assert_max_num_queries: Any) -> None:
    users = [make_user(f"u{i}") for i in range(3)]
    for user in users:
        Notification.objects.bulk_create([Notification(recipient=user, title=f"n{i}") for i in range(700)])
    backdate(10)
    # Per batch of 1,000: candidates, inbox locks, rows, pruned_seq, DELETE, recount (2) and the
    # savepoint pair of the test's transaction; then the empty read that ends it.
    with django_assert_max_num_queries(3 * 9 + 1):
        assert Notification.objects.prune(timedelta(days=1), include_unread=True) == 2100
    assert set(Inbox.objects.values_list("unread", "pruned_seq")) == {(0, 700)}


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Notification.objects.prune(timedelta(days=1), batch_size=0)
