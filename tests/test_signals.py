"""Signals: ``notify`` creates notifications, ``notification_sent`` fires after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from sse_notify.api import send_notification
from sse_notify.models import Notification
from sse_notify.signals import notification_sent, notify


@pytest.fixture
def heard() -> Iterator[list[list[Notification]]]:
    calls: list[list[Notification]] = []

    def receiver(sender: Any, notifications: list[Notification], **kwargs: Any) -> None:
        calls.append(list(notifications))

    notification_sent.connect(receiver, dispatch_uid="tests.heard")
    yield calls
    notification_sent.disconnect(dispatch_uid="tests.heard")


@pytest.mark.django_db
def test_notify_creates_notifications(make_user: Any) -> None:
    alice, bob, boss = make_user("alice"), make_user("bob"), make_user("boss")
    responses = notify.send(
        sender=Notification,
        recipient=[alice, bob],
        title="Order shipped",
        url="/orders/7/",
        level="success",
        actor=boss,
    )
    ((_receiver, created),) = responses
    assert sorted(n.recipient_id for n in created) == [alice.pk, bob.pk]
    rows = Notification.objects.all()
    assert {(n.title, n.url, n.level, n.actor_id) for n in rows} == {
        ("Order shipped", "/orders/7/", "success", boss.pk)
    }
    assert rows.count() == 2


@pytest.mark.django_db
def test_notify_validation_errors_reach_the_sender(user: Any) -> None:
    with pytest.raises(ValidationError) as info:
        notify.send(sender=None, recipient=user, title="ok", url="javascript:alert(1)")
    assert "url" in info.value.message_dict
    with pytest.raises(TypeError):
        notify.send(sender=None, recipient=user, title="ok", verb="django-notifications-hq style")
    assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_notification_sent_fires_after_commit(user: Any, heard: list[list[Notification]]) -> None:
    with transaction.atomic():
        sent = send_notification(user, "one")
        notify.send(sender=None, recipient=user, title="two")
        assert heard == []  # nothing before commit
    assert [[n.title for n in call] for call in heard] == [["one"], ["two"]]
    assert heard[0][0].pk == sent[0].pk and heard[0][0].seq == 1


@pytest.mark.django_db(transaction=True)
def test_notification_sent_not_fired_on_rollback(user: Any, heard: list[list[Notification]]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        send_notification(user, "never")
        raise RuntimeError
    assert heard == []
    send_notification(user, "real")
    assert [n.title for n in heard[0]] == ["real"]


@pytest.mark.django_db(transaction=True)
def test_notification_sent_for_every_creation_path(user: Any, heard: list[list[Notification]]) -> None:
    send_notification(user, "api")
    Notification.objects.bulk_create([Notification(recipient=user, title="bulk")])
    Notification(recipient=user, title="save").save()
    assert [call[0].title for call in heard] == ["api", "bulk", "save"]


@pytest.mark.django_db(transaction=True)
def test_failing_receiver_is_logged_and_harms_nothing(
    user: Any, heard: list[list[Notification]], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ConnectionError("SMTP server unreachable")

    # Receivers run in connection order: `heard` before the broken one, `later` after it.
    later: list[int] = []
    notification_sent.connect(broken, dispatch_uid="tests.broken")
    notification_sent.connect(lambda sender, notifications, **kw: later.append(len(notifications)), weak=False,
                              dispatch_uid="tests.later")  # fmt: skip
    try:
        with caplog.at_level(logging.ERROR, logger="sse_notify"):
            (n,) = send_notification(user, "still sent")
    finally:
        notification_sent.disconnect(dispatch_uid="tests.broken")
        notification_sent.disconnect(dispatch_uid="tests.later")
    assert Notification.objects.filter(pk=n.pk).exists()
    assert len(heard) == 1 and later == [1]
    assert "notification_sent receiver" in caplog.text and "SMTP server unreachable" in caplog.text
