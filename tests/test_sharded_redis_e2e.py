"""Scale-out as users run it: three Daphne processes joined by two Redis shards.

``channels_redis`` spreads groups and channels over the servers in ``hosts`` by
a hash of their names, so a user's group may live on one shard and a hub's
channel on the other. Three Daphne processes serve browser-like clients (they
reconnect with ``Last-Event-ID``); a fourth process sends, as a worker or cron
job would. While one shard is killed and later restarted empty, the senders
never fail and every client still ends with each of its notifications exactly
once, in order: the database poll covers whatever the layer could not carry.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.support import Browser, PrivateRedis, assert_complete, need, run_manage, session_cookie

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

USERS = 24
#: Short enough that the database covers a dead shard within the test's waits.
SERVER = {"POLL_INTERVAL": 0.5}
#: Layer operations give up after 0.5 s, so a stopped shard costs each send little.
CONSTANTS = {"sse_notify.publish.PUBLISH_TIMEOUT": 0.5}


def sharded_layers(urls: list[str]) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": 10} for url in urls],
                "prefix": f"sse_notify_test_{uuid.uuid4().hex[:8]}",
            },
        }
    }


async def send(layers: dict[str, Any], code: str) -> str:
    """Run ``code`` in a separate process; return its stderr (publish failures are logged there)."""
    prelude = (
        "from django.contrib.auth.models import User\n"
        "from sse_notify.api import send_notification\n"
        "from sse_notify.models import Notification\n"
        "users = list(User.objects.filter(username__startswith='s').order_by('pk'))\n"
    )
    proc = await asyncio.to_thread(run_manage, "shell", "-c", prelude + code, layers=layers, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


async def send_round(layers: dict[str, Any], tag: str) -> str:
    """From one process: a few-user send (user groups), a send to everyone (the broadcast
    group) and personal content to everyone (one batched message)."""
    return await send(
        layers,
        f"send_notification(users[:3], '{tag} few')\n"
        f"send_notification(users, '{tag} all')\n"
        f"Notification.objects.bulk_create([Notification(recipient=u, title='{tag} for ' + u.username) "
        "for u in users])",
    )


async def test_three_processes_two_shards_one_shard_restarted(daphne, django_user_model):
    import shutil

    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    shards = [PrivateRedis().start(), PrivateRedis().start()]
    browsers: dict[Any, list[Browser]] = {}
    try:
        layers = sharded_layers([s.url for s in shards])
        servers = [daphne(layers=layers, overrides=SERVER, constants=CONSTANTS) for _ in range(3)]

        def setup() -> list[tuple[Any, str]]:
            users = django_user_model.objects.bulk_create(
                [django_user_model(username=f"s{i:02d}") for i in range(USERS)]
            )
            return [(u, session_cookie(u)) for u in users]

        # Every user has a stream on one server; every third user has one on each server.
        for i, (user, cookie) in enumerate(await sync_to_async(setup)()):
            homes = servers if i % 3 == 0 else [servers[i % 3]]
            browsers[user] = [Browser(s.base, cookie, name=f"{user.username}@{s.port}").start() for s in homes]
        await asyncio.sleep(0.5)  # clients connected (a later connect replays from 0 anyway)

        # 1. Both shards up: every send arrives, through whichever shard holds each group.
        stderr = await send_round(layers, "up")
        assert "publish to channel layer failed" not in stderr, stderr
        await assert_complete(browsers)

        # 2. One shard killed: senders still commit; what that shard would carry comes
        #    from the database.
        shards[1].kill()
        await send_round(layers, "down")
        await assert_complete(browsers)

        # 3. The shard restarts empty on the same port: nothing is lost or repeated.
        shards[1].start()
        await send_round(layers, "back")
        await assert_complete(browsers)
        for server in servers:
            assert server.proc is not None and server.proc.poll() is None, server.output()[-2000:]
    finally:
        try:
            for bs in browsers.values():
                for b in bs:
                    await b.stop()
        finally:
            for shard in shards:
                shard.kill()
