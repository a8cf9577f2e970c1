"""The layer protocol: every message survives its wire form, is split per user and
routed only to users with a stream here; stream items are typed."""

from __future__ import annotations

import json

import msgpack
import pytest

from sse_notify import protocol
from sse_notify.events import notification_frame, read_frame
from sse_notify.protocol import (
    BROADCAST_GROUP,
    Deliver,
    DeliverMany,
    End,
    Notify,
    PreferencesChanged,
    Push,
    ReadChange,
    SignOut,
    user_group,
)

MESSAGES = [
    Deliver('"title":"a"', ((1, 10, 5, 2), (2, 11, 7, 0))),
    DeliverMany((Deliver('"title":"a"', ((1, 10, 5, 2),)), Deliver('"title":"b"', ((2, 11, 7, 1),)))),
    ReadChange(True, ((1, 0, (10, 12)), (2, 3, None))),
    SignOut(((1, "abc"), (2, None))),
    PreferencesChanged(((1, ({"category": "x", "in_app": True},)),)),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_the_wire(message):
    """channels_redis carries msgpack: encode → msgpack → decode gives the same message."""
    wire = msgpack.unpackb(msgpack.packb(message.encode()))
    assert wire["type"] == message.TYPE
    assert protocol.decode(wire) == message
    assert json.loads(json.dumps(message.encode())) == message.encode()


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_only_keeps_one_users_part(message):
    assert message.only(1).recipients() == {1}
    assert message.only(3).recipients() == set()


def test_items_go_to_local_users_only_and_are_typed():
    d = MESSAGES[0]
    assert list(d.items({2})) == [(2, Notify(7, notification_frame('"title":"a"', 11, 7, 0)))]
    assert list(MESSAGES[2].items({1})) == [(1, Push(read_frame([10, 12], True, 0)))]
    assert list(MESSAGES[3].items({1, 2, 3})) == [(1, End("abc")), (2, End(None))]
    assert list(d.items(set())) == []


def test_unknown_type_is_ignored_not_an_error():
    assert protocol.decode({"type": "sse_notify.from_the_future", "x": 1}) is None


def test_content_that_cannot_be_encoded_is_skipped_not_the_rest_of_the_message(caplog):
    """One layer message for two sends; one carries a lone surrogate: the other is delivered."""
    message = DeliverMany((Deliver('"title":"\ud800"', ((1, 10, 5, 0),)), Deliver('"title":"ok"', ((2, 11, 6, 0),))))
    assert list(message.items({1, 2})) == [(2, Notify(6, notification_frame('"title":"ok"', 11, 6, 0)))]
    assert "cannot be encoded" in caplog.text


def test_group_names():
    assert user_group(42) == "sse_notify.user.42"
    assert BROADCAST_GROUP == "sse_notify.broadcast"


def test_a_send_to_many_is_packed_and_the_hub_routes_it_without_building_its_parts():
    """The wire form of a personal send is two strings (cheap to copy and pack), and
    routing it straight from the wire gives what the decoded message gives."""
    parts = tuple(Deliver(f'"title":"t{i}","body":"é"', ((i, 100 + i, 5, 1),)) for i in range(1, 40))
    burst = Deliver('"title":"burst"', ((3, 200, 6, 2), (3, 201, 7, 3)))
    message = DeliverMany((*parts, burst))
    wire = message.encode()
    assert all(isinstance(v, str) for v in wire.values())
    assert protocol.decode(wire) == message
    here = {3, 7, 12, 99}
    notes = protocol.packed_notes(wire, here)
    assert notes == message.notes(here)
    assert [n.seq for n in notes[3]] == [5, 6, 7], "one user's notifications together, in order"
    assert set(notes) == {3, 7, 12}
    flat = {(uid, n.seq, n.frame) for uid, mine in notes.items() for n in mine}
    assert flat == {(uid, item.seq, item.frame) for uid, item in message.items(here)}  # type: ignore[union-attr]


def test_a_hand_built_common_with_a_line_feed_still_travels():
    message = DeliverMany((Deliver('"title":"a\nb"', ((1, 10, 5, 0),)), Deliver('"title":"c"', ((2, 11, 6, 0),))))
    wire = msgpack.unpackb(msgpack.packb(message.encode()))
    assert protocol.decode(wire) == message
    assert protocol.packed_notes(wire, {1, 2}) == message.notes({1, 2})


def test_packed_content_that_cannot_be_encoded_is_skipped_not_the_rest(caplog):
    message = DeliverMany((Deliver('"title":"\ud800"', ((1, 10, 5, 0),)), Deliver('"title":"ok"', ((2, 11, 6, 0),))))
    assert protocol.packed_notes(message.encode(), {1, 2}) == {
        2: [Notify(6, notification_frame('"title":"ok"', 11, 6, 0))]
    }
    assert "cannot be encoded" in caplog.text
