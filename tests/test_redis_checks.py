"""System checks for channels_redis / redis-py 8 traps (sse_notify.W003-W006).

Each warning is also reproduced against the real Redis where it can be: the
configuration the check flags really fails, and the one its hint gives works.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from sse_notify.checks import check_redis_layer
from tests.support import redis_layers

CORE = "channels_redis.core.RedisChannelLayer"
PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
URL = "redis://127.0.0.1:6379/0"
GOOD_HOST = {"address": URL, "socket_timeout": 10, "socket_connect_timeout": 5, "max_connections": 1000}


def ids(backend: str = CORE, hosts: Any = None, sse: dict[str, Any] | None = None, **config: Any) -> list[str]:
    layers = {"default": {"BACKEND": backend, "CONFIG": {"hosts": hosts if hosts is not None else [URL], **config}}}
    with override_settings(CHANNEL_LAYERS=layers, SSE_NOTIFY=sse or {}):
        return sorted(m.id for m in check_redis_layer())


def test_default_redis_config_is_flagged_with_each_trap():
    assert ids() == ["sse_notify.W003", "sse_notify.W004", "sse_notify.W006"]


def test_recommended_config_is_clean():
    assert ids(hosts=[GOOD_HOST], capacity=10_000) == []


def test_socket_timeout_too_close_to_the_blocking_read_is_flagged():
    assert "sse_notify.W003" in ids(hosts=[{**GOOD_HOST, "socket_timeout": 5.5}], capacity=10_000)
    assert "sse_notify.W003" in ids(hosts=[URL + "?socket_timeout=3&max_connections=500"], capacity=10_000)
    # No timeout at all never cuts the read (but never detects a dead server either).
    assert ids(hosts=[{**GOOD_HOST, "socket_timeout": None}], capacity=10_000) == []
    assert ids(hosts=[URL + "?socket_timeout=10&max_connections=500"], capacity=10_000) == []


def test_pubsub_layer_has_no_blocking_read_nor_capacity():
    # It polls with short reads and keeps no per-channel queue: only the pool limit applies.
    assert ids(PUBSUB) == ["sse_notify.W004"]
    assert ids(PUBSUB, hosts=[GOOD_HOST]) == []


def test_short_group_expiry_is_flagged_against_the_refresh_period():
    # Hubs re-join every 600 polls: 600 x 2 s = 20 min by default.
    assert "sse_notify.W005" in ids(hosts=[GOOD_HOST], capacity=10_000, group_expiry=1800)
    assert "sse_notify.W005" not in ids(hosts=[GOOD_HOST], capacity=10_000, group_expiry=3600)
    assert "sse_notify.W005" not in ids(
        hosts=[GOOD_HOST], capacity=10_000, group_expiry=60, sse={"POLL_INTERVAL": 0.02}
    )


def test_capacity_pattern_for_hub_channels_counts():
    assert "sse_notify.W006" not in ids(hosts=[GOOD_HOST], channel_capacity={"sse_notify.hub.*": 5000})


def test_other_layers_are_not_checked():
    assert ids("channels.layers.InMemoryChannelLayer") == []


def test_checks_are_registered():
    layers = {"default": {"BACKEND": CORE, "CONFIG": {"hosts": [URL]}}}
    with override_settings(CHANNEL_LAYERS=layers), pytest.raises(Exception, match=r"sse_notify\.W003"):
        call_command("check", "--fail-level", "WARNING")


# -- the traps themselves, on the real Redis ---------------------------------------


@pytest.mark.redis
async def test_w003_trap_is_real_and_the_hint_fixes_it(redis_url):
    """A 1 s socket_timeout stands in for redis-py 8's 5 s default (same failure, shorter)."""
    import redis.exceptions
    from channels_redis.core import RedisChannelLayer

    prefix = f"sse_notify_test_{uuid.uuid4().hex[:8]}"
    broken = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 1}], prefix=prefix)
    broken.brpop_timeout = 2  # the layer's blocking read, shortened the same way
    channel = await broken.new_channel()
    with pytest.raises(redis.exceptions.TimeoutError, match="Timeout reading"):
        await broken.receive(channel)
    await broken.flush()

    fixed = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 3}], prefix=prefix)
    fixed.brpop_timeout = 2
    channel = await fixed.new_channel()

    async def later() -> None:
        await asyncio.sleep(2.5)  # past one idle blocking read
        await fixed.send(channel, {"type": "x"})

    sender = asyncio.ensure_future(later())
    assert await fixed.receive(channel) == {"type": "x"}
    await sender
    await fixed.flush()


@pytest.mark.redis
async def test_w004_trap_is_real_and_the_hint_fixes_it(redis_url):
    import redis.exceptions
    from channels_redis.core import RedisChannelLayer

    for hosts, failures in (([redis_url], True), ([{"address": redis_url, "max_connections": 1000}], False)):
        layer = RedisChannelLayer(**redis_layers(redis_url)["default"]["CONFIG"] | {"hosts": hosts})
        channel = await layer.new_channel()
        results = await asyncio.gather(*(layer.group_add(f"g{i}", channel) for i in range(200)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if failures:
            assert errors and all(isinstance(e, redis.exceptions.MaxConnectionsError) for e in errors)
        else:
            assert errors == []
        await layer.flush()
