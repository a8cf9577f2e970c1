"""Isolation, as a property: whatever is sent to whom and whoever reads what, each user's
live stream, replay, JSON list, unread count and badge show exactly that user's notifications.

Hypothesis draws users' group memberships and a sequence of actions (sends to users,
groups, everyone; marking one or all read); a model of who should have what is checked
against every surface. The streams are live while the actions run (in-process ASGI).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import Group
from django.template import Context, Template
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_notify.api import EVERYONE, send_notification
from sse_notify.models import Inbox, Notification
from tests.support import AsgiStream, http_scope, override_constants, session_cookie, sse_settings

pytestmark = pytest.mark.django_db(transaction=True)

N_USERS = 4
N_GROUPS = 2

recipient = st.one_of(
    st.tuples(st.just("user"), st.integers(0, N_USERS - 1)),
    st.tuples(st.just("group"), st.integers(0, N_GROUPS - 1)),
)
action = st.one_of(
    st.tuples(st.just("send"), st.lists(recipient, min_size=1, max_size=3)),
    st.tuples(st.just("everyone")),
    st.tuples(st.just("read_one"), st.integers(0, N_USERS - 1), st.integers(0, 20)),
    st.tuples(st.just("read_all"), st.integers(0, N_USERS - 1)),
)
memberships = st.lists(st.sets(st.integers(0, N_USERS - 1)), min_size=N_GROUPS, max_size=N_GROUPS)

_counter = itertools.count()


class Model:
    """Who should have what: ``titles[u]`` in seq order, ``read[u]`` the titles read."""

    def __init__(self) -> None:
        self.titles: dict[int, list[str]] = {u: [] for u in range(N_USERS)}
        self.read: dict[int, set[str]] = {u: set() for u in range(N_USERS)}

    def unread(self, u: int) -> int:
        return len(self.titles[u]) - len(self.read[u])


async def run_example(users: list[Any], groups: list[Any], members: list[set[int]], actions: list[Any]) -> None:
    @sync_to_async
    def reset() -> list[str]:
        Notification.objects.all().delete()
        Inbox.objects.all().delete()
        for group, who in zip(groups, members, strict=True):
            group.user_set.set([users[u] for u in who])
        return [session_cookie(u) for u in users]

    cookies = await reset()
    model = Model()
    streams = [await AsgiStream(http_scope(cookie=c, query=b"cursor=0")).start() for c in cookies]
    for s in streams:
        await s.read_until(lambda st_: bool(st_.events("ready")))

    for step in actions:
        kind = step[0]
        title = f"t{next(_counter)}"
        if kind == "send":
            targets, who = [], set()
            for what, i in step[1]:
                if what == "user":
                    targets.append(users[i])
                    who.add(i)
                else:
                    targets.append(groups[i])
                    who |= members[i]
            await sync_to_async(send_notification)(targets, title)
            for u in sorted(who):
                model.titles[u].append(title)
        elif kind == "everyone":
            await sync_to_async(send_notification)(EVERYONE, title)
            for u in range(N_USERS):
                model.titles[u].append(title)
        elif kind == "read_one":
            u, index = step[1], step[2]
            if model.titles[u]:
                target = model.titles[u][index % len(model.titles[u])]
                await sync_to_async(
                    lambda u=u, target=target: Notification.objects.filter(recipient=users[u], title=target).mark_read()
                )()
                model.read[u].add(target)
        else:
            u = step[1]
            await sync_to_async(lambda u=u: Notification.objects.filter(recipient=users[u]).mark_read())()
            model.read[u] |= set(model.titles[u])

    for u, s in enumerate(streams):
        # Live: exactly my notifications, in order; read events only about mine.
        await s.read_until(lambda st_, u=u: len(st_.notifications()) >= len(model.titles[u]))
        while not await s.quiet_for(0.1):  # read events may still be on their way
            await s.chunk()
        live = s.notifications()
        assert [e.json()["title"] for e in live] == model.titles[u], f"user {u} live"
        mine = {e.json()["id"] for e in live}
        for event in s.events("read"):
            ids = event.json()["ids"]
            assert ids is None or set(ids) <= mine, f"user {u} was told about someone else's read state"
        last = [e for e in s.events() if e.event in ("notification", "read", "ready")][-1]
        assert last.json()["unread"] == model.unread(u), f"user {u} live unread"
        await s.disconnect()
        # Replay from the start: the same, and nothing else.
        replay = await AsgiStream(http_scope(cookie=cookies[u], query=b"cursor=0")).start()
        await replay.read_until(
            lambda st_, u=u: bool(st_.events("ready")) and len(st_.notifications()) >= len(model.titles[u])
        )
        assert [e.json()["title"] for e in replay.notifications()] == model.titles[u], f"user {u} replay"
        assert replay.events("ready")[0].json()["unread"] == model.unread(u)
        await replay.disconnect()

    await sync_to_async(check_http_surfaces)(users, model)


def check_http_surfaces(users: list[Any], model: Model) -> None:
    for u, user in enumerate(users):
        client = Client()
        client.force_login(user)
        results, page = [], 1
        while True:
            data = client.get("/notifications/api/notifications/", {"page": page}).json()
            results += data["results"]
            if page >= data["pages"]:
                break
            page += 1
        assert [r["title"] for r in reversed(results)] == model.titles[u], f"user {u} list"
        assert {r["title"] for r in results if r["read"]} == model.read[u], f"user {u} read flags"
        assert data["unread"] == model.unread(u)
        assert client.get("/notifications/api/unread/").json()["unread"] == model.unread(u), f"user {u} unread"
        request = RequestFactory().get("/")
        request.user = user
        badge = Template("{% load sse_notify %}{% sse_notify_badge %}{% sse_notify_list 100 %}").render(
            Context({"request": request, "user": user})
        )
        count = re.search(r'data-count="(\d+)"', badge)
        assert count and int(count.group(1)) == model.unread(u), f"user {u} badge"
        others = {t for v in range(N_USERS) if v != u for t in model.titles[v]} - set(model.titles[u])
        shown = set(re.findall(r"\bt\d+\b", badge))
        assert not (shown & others), f"user {u} badge list shows someone else's: {shown & others}"


@pytest.fixture
def population(make_user: Any) -> tuple[list[Any], list[Any]]:
    users = [make_user(f"iso{i}") for i in range(N_USERS)]
    groups = [Group.objects.create(name=f"iso-group-{i}") for i in range(N_GROUPS)]
    return users, groups


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(members=memberships, actions=st.lists(action, min_size=1, max_size=8))
def test_every_surface_shows_exactly_my_notifications(population, members, actions):
    users, groups = population
    with sse_settings(POLL_INTERVAL=0.2), override_constants({"sse_notify.publish.GROUP_SEND_THRESHOLD": 2}):
        # GROUP_SEND_THRESHOLD=2: sends to 3+ users cross the layer as one broadcast,
        # smaller ones per user; both fan-out paths are exercised.
        async_to_sync(in_fresh_hub)(users, groups, [set(m) for m in members], actions)


async def in_fresh_hub(*args: Any) -> None:
    """Each example runs on its own event loop: a hub and an in-memory layer of its own."""
    from channels.layers import channel_layers

    from sse_notify.hub import reset_hub

    channel_layers.backends.clear()
    try:
        await run_example(*args)
    finally:
        await reset_hub()
        channel_layers.backends.clear()
