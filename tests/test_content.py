"""No content can stop a stream: what send_notification refuses, and what it delivers byte-exact.

Every text field (and every key and string in ``data``) must be encodable as
UTF-8 and free of NUL; ``data`` is bounded in depth. Anything else is a
``ValidationError`` at send (never ``DataError``, ``UnicodeEncodeError`` or
``RecursionError``), a one-line error from the command, a form error in the admin.
What is accepted reaches a real client over real Daphne exactly as sent.
"""

from __future__ import annotations

import json
import queue
import threading
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_notify.api import DATA_MAX_DEPTH, send_notification
from sse_notify.models import Inbox, Notification
from tests.sse_client import Event, SSEParser
from tests.support import session_cookie

LONE = "\ud800"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


BAD = [
    ({"title": f"a {LONE} b"}, "title", "lone surrogate (U+D800 at position 2)"),
    ({"title": "\udfff"}, "title", "lone surrogate"),
    ({"body": f"x{LONE}"}, "body", "cannot be encoded as UTF-8"),
    ({"url": f"/a/{LONE}"}, "url", "lone surrogate"),
    ({"data": LONE}, "data", "lone surrogate"),
    ({"data": {"k": [1, {"deeper": f"x{LONE}"}]}}, "data", "lone surrogate"),
    ({"data": {f"key{LONE}": 1}}, "data", "lone surrogate"),
    ({"data": {"k": {"\x00": 1}}}, "data", "NUL"),
    ({"data": json.loads('{"from": "\\udc80 a JSON escape"}')}, "data", "lone surrogate"),
    ({"data": nested(DATA_MAX_DEPTH + 1)}, "data", f"nested more than {DATA_MAX_DEPTH} levels"),
    ({"data": nested(100_000)}, "data", "nested more than"),  # RecursionError in json.dumps before
    ({"level": ["info"]}, "level", "Unknown level"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field", "message"), BAD, ids=[f"{i}-{field}" for i, (_, field, _) in enumerate(BAD)]
)
def test_text_that_cannot_be_utf8_is_a_validation_error(make_user: Any, kwargs: Any, field: str, message: str) -> None:
    alice = make_user()
    args = {"title": "ok", **kwargs}
    with pytest.raises(ValidationError) as info:
        send_notification(alice, args.pop("title"), **args)
    assert message in " ".join(info.value.message_dict[field])
    assert not Notification.objects.exists() and not Inbox.objects.exists()


@pytest.mark.django_db
def test_accepted_data_as_deep_as_the_limit(make_user: Any) -> None:
    (n,) = send_notification(make_user(), "deep", data=nested(DATA_MAX_DEPTH))
    n.refresh_from_db()
    assert n.data == nested(DATA_MAX_DEPTH)


# -- the command ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "\udcff"], "title: Title contains a lone surrogate"),  # undecodable argv byte
        (["--title", "t", "--data", '{"k": "\\ud800"}'], "data: Data contains a lone surrogate"),
        (["--title", "t", "--data", "[" * 100_000 + "]" * 100_000], "--data is nested too deeply."),
        (["--title", "t", "--data", "[" * 40 + "]" * 40], "nested more than 32 levels"),
    ],
    ids=["argv-byte", "json-escape", "deep-100000", "deep-40"],
)
def test_command_refuses_bad_text_with_a_command_error(make_user: Any, args: list[str], message: str) -> None:
    make_user("alice")
    with pytest.raises(CommandError) as info:
        call_command("sse_notify_send", "--user", "alice", *args, stdout=StringIO(), stderr=StringIO())
    assert message in str(info.value)
    assert not Notification.objects.exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_command_from_a_shell_prints_one_line_not_a_traceback(make_user: Any) -> None:
    from tests.support import run_manage

    make_user("alice")
    for args in (
        ["--title", "bad \udcff byte"],  # the shell passes byte 0xFF; Python decodes it to U+DCFF
        ["--title", "t", "--data", '"\\ud800"'],
        ["--title", "t", "--data", "[" * 30_000 + "]" * 30_000],  # one argument is at most 128 KiB
    ):
        done = run_manage("sse_notify_send", "--user", "alice", *args, check=False)
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("CommandError: ")
    assert not Notification.objects.exists()


# -- the admin add form --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"k": "\\ud800"}', "lone surrogate"),
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ("[" * 40 + "]" * 40, "nested more than"),
    ],
    ids=["json-escape", "deep-100000", "deep-40"],
)
def test_admin_add_form_refuses_bad_data(admin_client: Any, make_user: Any, data: str, message: str) -> None:
    alice = make_user("alice")
    add = reverse("admin:sse_notify_notification_add")
    form = {"recipient": alice.pk, "title": "t", "body": "", "level": "info", "url": "", "data": data}
    page = admin_client.post(add, form)
    assert page.status_code == 200
    assert message in str(page.context["adminform"].form.errors["data"])
    assert not Notification.objects.exists()


# -- anything accepted arrives byte-exact over real Daphne ---------------------------------------


class ThreadedStream:
    """One SSE stream read by a thread; events arrive on a queue (for sync hypothesis tests)."""

    def __init__(self, url: str, cookie: str) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.parser = SSEParser()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        self._request = self._client.build_request("GET", url, headers={"Cookie": f"sessionid={cookie}"})
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            response = self._client.send(self._request, stream=True)
            try:
                for text in response.iter_text():
                    for event in self.parser.feed(text):
                        self.events.put(event)
            finally:
                response.close()
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test

    def next(self, kind: str, timeout: float = 10.0) -> Event:
        while True:
            event = self.events.get(timeout=timeout)
            if event.event == kind:
                return event

    def close(self) -> None:
        self._client.close()


TRICKY = ["\ud800", "\udfff", "\u2028", "\u2029", "\x85", "\x00", "\r", "\n", "😀", "𝄞", "\ufeff", '"', "\\"]
text = st.text(st.one_of(st.characters(), st.sampled_from(TRICKY)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_any_text_is_refused_at_send_or_delivered_exactly(daphne: Any, make_user: Any) -> None:
    """Over the database path (the in-memory layer does not reach Daphne): what catch-up reads back."""
    alice = make_user("alice")
    server = daphne(overrides={"POLL_INTERVAL": 0.05})
    stream = ThreadedStream(server.url() + "?cursor=0", session_cookie(alice))
    stream.next("ready")
    outcome = {"sent": 0, "refused": 0}

    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        title=text,
        body=text,
        url=st.one_of(st.just(""), text),
        data=json_values,
        category=st.one_of(st.none(), st.just("default"), text),
        group_key=st.one_of(st.just(""), text),
    )
    def check(title: str, body: str, url: str, data: Any, category: str | None, group_key: str) -> None:
        try:
            (n,) = send_notification(
                alice, title, body=body, url=url, data=data, category=category, group_key=group_key
            )
        except ValidationError:
            outcome["refused"] += 1
            return
        outcome["sent"] += 1
        got = stream.next("notification").json()
        assert got["id"] == n.pk
        assert (got["title"], got["body"], got["url"], got["group"]) == (title, body, url, group_key)
        assert got["category"] == (category or "default")
        assert got["data"] == json.loads(json.dumps(data))

    try:
        check()
        # Both outcomes were exercised, and the stream still delivers after all of it.
        assert outcome["sent"] and outcome["refused"], outcome
        (last,) = send_notification(alice, "still alive")
        assert stream.next("notification").json()["id"] == last.pk
    finally:
        stream.close()
