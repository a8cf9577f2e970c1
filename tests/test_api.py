"""The sending API: validation, recipients, atomicity, after-commit publish on a real layer."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings

from sse_notify.api import EVERYONE, asend_notification, check_url, resolve_recipients, send_notification
from sse_notify.models import Inbox, Notification
from sse_notify.protocol import BROADCAST_GROUP, Deliver, user_group
from tests.support import join, override_constants, receive_or_none

User = get_user_model()


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"title": ""}, "title", "non-empty title"),
        ({"title": "   "}, "title", "non-empty title"),
        ({"title": None}, "title", "non-empty title"),
        ({"title": "x" * 201}, "title", "201 characters long; the limit is 200"),
        ({"level": "fatal"}, "level", "Unknown level 'fatal'; choose one of 'info', 'success', 'warning', 'error'"),
        ({"data": {"when": object()}}, "data", "JSON-serialisable"),
        ({"data": {"blob": "x" * 9000}}, "data", "over the 8192-byte limit"),
        ({"data": {"ratio": float("nan")}}, "data", "not JSON compliant"),  # the database would refuse it
        ({"data": [float("inf")]}, "data", "not JSON compliant"),
        ({"body": "b" * 10_001}, "body", "10001 characters long; the limit is 10000"),
        ({"body": 5}, "body", "must be a string, not int"),
        ({"url": "javascript:alert(1)"}, "url", "scheme 'javascript' is not allowed"),
        ({"url": "JaVaScRiPt:alert(1)"}, "url", "scheme 'javascript' is not allowed"),
        ({"url": "data:text/html,<script>alert(1)</script>"}, "url", "scheme 'data' is not allowed"),
        ({"url": "vbscript:msgbox(1)"}, "url", "scheme 'vbscript' is not allowed"),
        ({"url": "//evil.example/path"}, "url", "Protocol-relative links"),
        ({"url": " javascript:alert(1)"}, "url", "spaces, control characters"),
        ({"url": "java\tscript:alert(1)"}, "url", "spaces, control characters"),
        ({"url": "/\\evil.example"}, "url", "backslashes"),
        ({"url": 7}, "url", "must be a string"),
    ],
)
@pytest.mark.django_db
def test_validation_errors_name_the_problem_and_write_nothing(
    user: Any, kwargs: dict[str, Any], field: str, message: str
) -> None:
    args = {"title": "ok", **kwargs}
    title = args.pop("title")
    with pytest.raises(ValidationError) as info:
        send_notification(user, title, **args)
    assert message in " ".join(info.value.message_dict[field])
    assert not Notification.objects.exists()
    assert not Inbox.objects.exists()


@pytest.mark.django_db
def test_several_errors_are_reported_together(user: Any) -> None:
    with pytest.raises(ValidationError) as info:
        send_notification(user, "", level="nope", url="javascript:x")
    assert set(info.value.message_dict) == {"title", "level", "url"}


@pytest.mark.django_db
@override_settings(SSE_NOTIFY={"BODY_MAX_LENGTH": 5, "DATA_MAX_BYTES": 10, "URL_SCHEMES": ["https"]})
def test_limits_follow_settings(user: Any) -> None:
    for kwargs, field in [({"body": "123456"}, "body"), ({"data": "x" * 20}, "data"), ({"url": "http://a.b/"}, "url")]:
        with pytest.raises(ValidationError) as info:
            send_notification(user, "t", **kwargs)
        assert field in info.value.message_dict
    assert send_notification(user, "t", body="12345", url="https://a.b/")[0].url == "https://a.b/"


@pytest.mark.parametrize(
    "url",
    ["", "/orders/7/", "orders/7/?tab=1#x", "https://example.com/a", "HTTP://EXAMPLE.COM", "mailto:a@example.com"],
)
def test_allowed_links(url: str) -> None:
    assert check_url(url) is None


@pytest.mark.django_db
def test_data_accepts_django_json_types(user: Any) -> None:
    data = {"when": datetime.date(2026, 1, 2), "amount": decimal.Decimal("1.50"), "ref": uuid.UUID(int=1)}
    (n,) = send_notification(user, "typed", data=data)
    n.refresh_from_db()
    assert n.data == {"when": "2026-01-02", "amount": "1.50", "ref": str(uuid.UUID(int=1))}


@pytest.mark.django_db
def test_unsaved_user_group_or_actor_is_refused(user: Any) -> None:
    with pytest.raises(ValueError, match="is not saved; save it before notifying it"):
        send_notification([user, User(username="ghost")], "x")
    with pytest.raises(ValueError, match=r"Group .* is not saved"):
        send_notification(Group(name="ghosts"), "x")
    with pytest.raises(ValueError, match=r"Actor .* is not saved"):
        send_notification(user, "x", actor=User(username="ghost"))
    assert not Notification.objects.exists()


@pytest.mark.parametrize("bad", ["alice", b"alice", 42, None, [object()], [42]])
@pytest.mark.django_db
def test_unusable_recipients_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        send_notification(bad, "x")


# -- recipients --------------------------------------------------------------------------------


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    team = Group.objects.create(name="team")
    users = {name: make_user(name) for name in ("alice", "bob", "carol", "dave")}
    users["gone"] = make_user("gone", is_active=False)
    users["alice"].groups.add(team)
    users["bob"].groups.add(team)
    users["gone"].groups.add(team)
    return {**users, "team": team}


def names(notifications: list[Notification]) -> list[str]:
    return sorted(
        User.objects.filter(pk__in=[n.recipient_id for n in notifications]).values_list("username", flat=True)
    )


@pytest.mark.django_db
def test_recipient_shapes(people: dict[str, Any]) -> None:
    p = people
    assert names(send_notification(p["alice"], "one user")) == ["alice"]
    assert names(send_notification([p["alice"], p["carol"]], "a list")) == ["alice", "carol"]
    assert names(send_notification((u for u in [p["dave"]]), "a generator")) == ["dave"]
    assert names(send_notification(User.objects.filter(username__in=["bob", "dave"]), "a queryset")) == ["bob", "dave"]
    assert names(send_notification(p["team"], "a group")) == ["alice", "bob"]  # inactive members skipped
    assert names(send_notification(EVERYONE, "everyone")) == ["alice", "bob", "carol", "dave"]
    assert names(send_notification([p["team"], p["carol"]], "mixed")) == ["alice", "bob", "carol"]
    # An explicitly named user is notified even if inactive: the caller asked for them.
    assert names(send_notification(p["gone"], "explicit")) == ["gone"]
    assert send_notification([], "nobody") == []
    assert send_notification(Group.objects.create(name="empty"), "nobody") == []


@pytest.mark.django_db
def test_duplicates_give_one_row_per_user(people: dict[str, Any]) -> None:
    p = people
    sent = send_notification([p["alice"], p["alice"], p["team"], p["bob"]], "once each")
    assert names(sent) == ["alice", "bob"]
    assert Notification.objects.count() == 2
    assert {(n.recipient_id, n.seq) for n in sent} == {(p["alice"].pk, 1), (p["bob"].pk, 1)}
    assert resolve_recipients([p["alice"], p["team"], p["alice"]]) == sorted([p["alice"].pk, p["bob"].pk])


@pytest.mark.django_db
def test_rows_carry_the_content(people: dict[str, Any], make_user: Any) -> None:
    boss = make_user("boss")
    sent = send_notification(
        [people["alice"], people["bob"]], "Deploy", body="b", level="warning", url="/d/", data={"n": 1}, actor=boss
    )
    assert len({n.pk for n in sent}) == 2
    for n in Notification.objects.all():
        assert (n.title, n.body, n.level, n.url, n.data, n.actor_id, n.read_at) == (
            "Deploy", "b", "warning", "/d/", {"n": 1}, boss.pk, None,
        )  # fmt: skip
    assert Notification.objects.values("created_at").distinct().count() == 1


# -- atomicity ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_all_or_nothing_when_the_database_refuses(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    stale_bob = User.objects.get(pk=bob.pk)
    bob.delete()  # e.g. deleted by another request after we loaded it
    with pytest.raises(IntegrityError):
        send_notification([alice, stale_bob], "half")
    assert not Notification.objects.exists()
    assert not Inbox.objects.filter(last_seq__gt=0).exists()  # alice's counter rolled back too
    (n,) = send_notification(alice, "next")
    assert n.seq == 1


# -- after-commit publish, observed on a real in-memory channel layer ---------------------------


@pytest.fixture
def layer() -> Any:
    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_publish_happens_after_commit_on_the_users_group(layer: Any, user: Any) -> None:
    channel = async_to_sync(join)(layer, user_group(user.pk))
    with transaction.atomic():
        (n,) = send_notification(user, "hello", url="/x/")
        assert async_to_sync(receive_or_none)(layer, channel, 0.05) is None  # not before commit
    message = async_to_sync(receive_or_none)(layer, channel, 2)
    assert message is not None
    assert message["type"] == Deliver.TYPE
    assert message["items"] == [[user.pk, n.pk, 1, 1]]
    assert '"title":"hello"' in message["common"] and '"url":"/x/"' in message["common"]


@pytest.mark.django_db(transaction=True)
def test_rollback_publishes_nothing(layer: Any, user: Any) -> None:
    channel = async_to_sync(join)(layer, user_group(user.pk))
    with pytest.raises(RuntimeError), transaction.atomic():
        send_notification(user, "never")
        raise RuntimeError("the view failed after sending")
    assert not Notification.objects.exists()
    assert async_to_sync(receive_or_none)(layer, channel) is None
    (n,) = send_notification(user, "real")
    assert n.seq == 1  # the rolled-back seq was given back
    assert async_to_sync(receive_or_none)(layer, channel, 2)["items"] == [[user.pk, n.pk, 1, 1]]


@pytest.mark.django_db(transaction=True)
def test_large_sends_go_once_to_the_broadcast_group(layer: Any, make_user: Any) -> None:
    users = [make_user() for _ in range(3)]
    broadcast = async_to_sync(join)(layer, BROADCAST_GROUP)
    personal = async_to_sync(join)(layer, user_group(users[0].pk))
    with override_constants({"sse_notify.publish.GROUP_SEND_THRESHOLD": 2}):
        sent = send_notification(users, "to many")
    message = async_to_sync(receive_or_none)(layer, broadcast, 2)
    assert sorted(item[0] for item in message["items"]) == sorted(u.pk for u in users)
    assert {item[1] for item in message["items"]} == {n.pk for n in sent}
    assert async_to_sync(receive_or_none)(layer, personal) is None


@pytest.mark.django_db(transaction=True)
async def test_asend_notification_publishes_after_commit(layer: Any, make_user: Any) -> None:
    alice = await sync_to_async(make_user)("alice")
    channel = await join(layer, user_group(alice.pk))
    (n,) = await asend_notification(alice, "async hello", level="success")
    assert await Notification.objects.filter(pk=n.pk, level="success").aexists()
    message = await receive_or_none(layer, channel, 2)
    assert message["items"] == [[alice.pk, n.pk, 1, 1]]
    with pytest.raises(ValidationError):
        await asend_notification(alice, "")


@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS={})
def test_no_channel_layer_keeps_the_row_and_warns(user: Any, caplog: Any) -> None:
    channel_layers.backends.clear()
    try:
        (n,) = send_notification(user, "kept")
    finally:
        channel_layers.backends.clear()
    assert Notification.objects.filter(pk=n.pk).exists()
    assert "channel layer" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_dead_redis_keeps_the_rows_and_warns_once_per_interval(user: Any, caplog: Any, monkeypatch: Any) -> None:
    """A sender in a loop during a Redis outage logged every send (outside attack: 130 lines)."""
    from sse_notify import publish
    from tests.support import free_port, redis_layers

    monkeypatch.setattr(publish, "_quiet_until", 0.0)
    monkeypatch.setattr(publish, "_unlogged", 0)
    with override_settings(CHANNEL_LAYERS=redis_layers(f"redis://127.0.0.1:{free_port()}/0")):  # nothing listens
        channel_layers.backends.clear()
        try:
            for i in range(5):
                send_notification(user, f"kept {i}")
            warned = [r.getMessage() for r in caplog.records if "publish to channel layer failed" in r.getMessage()]
            assert len(warned) == 1 and "more failed" not in warned[0]
            monkeypatch.setattr(publish, "_quiet_until", 0.0)  # the interval is over
            send_notification(user, "kept 5")
        finally:
            channel_layers.backends.clear()
    warned = [r.getMessage() for r in caplog.records if "publish to channel layer failed" in r.getMessage()]
    assert len(warned) == 2
    assert "(4 more failed publish(es) since the last warning)" in warned[1]
    assert Notification.objects.filter(recipient=user).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_layer_that_never_answers_is_named_in_the_warning(user: Any, caplog: Any, monkeypatch: Any) -> None:
    """A timeout's own text is empty: the warning said "(TimeoutError: )" (outside attack)."""
    import asyncio

    from sse_notify import publish

    class Silent:
        async def group_send(self, group: str, message: Any) -> None:
            await asyncio.Event().wait()

    monkeypatch.setattr(publish, "_quiet_until", 0.0)
    monkeypatch.setattr(publish, "get_layer", Silent)
    with override_constants({"sse_notify.publish.PUBLISH_TIMEOUT": 0.1}):
        send_notification(user, "kept")
    assert "(TimeoutError: no answer within 0.1 s)" in caplog.text
    assert Notification.objects.filter(recipient=user, title="kept").exists()


# -- scale ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_everyone_is_a_few_queries_per_chunk_not_per_user(django_assert_max_num_queries: Any) -> None:
    User.objects.bulk_create([User(username=f"bulk{i}") for i in range(2000)])
    # One SELECT of the users, then per 900-user chunk a few inbox statements and one
    # preference lookup, then batched INSERTs (500 rows each on PostgreSQL; ~66 on SQLite,
    # whose 999-parameter limit Django honours, for the 15 columns a row has since
    # categories): 25-55 statements in all. A per-user save() loop would be over 4000.
    with django_assert_max_num_queries(60):
        sent = send_notification(EVERYONE, "to all")
    assert len(sent) == 2000
    assert Notification.objects.count() == 2000
    assert set(Inbox.objects.values_list("last_seq", "unread").distinct()) == {(1, 1)}
