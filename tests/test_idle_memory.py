"""A live stream does not keep what it already sent (issue 9, item 2).

Ten streams of one user read a second burst of 900 notifications of ~4 KB each (3.7 MB
per stream, 37 MB in all, through catch-up pages and hub items); once idle, the
memory Python holds for them is back near what ten idle streams hold. Measured
with tracemalloc, in-process (the same ``StreamLife`` the server runs).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from sse_notify.models import Notification
from sse_notify.stream import StreamLife
from tests.sse_client import parse
from tests.support import override_constants, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 10
BURST = 900


async def read_until(body: Any, count: int, within: float = 60.0) -> None:
    seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while seen < count:
        chunk = await asyncio.wait_for(body.__anext__(), max(0.1, deadline - loop.time()))
        seen += sum(1 for e in parse(chunk) if e.event == "notification") if chunk else 0


async def test_idle_streams_hold_nothing_of_a_burst(fresh_hub, user, settings):
    settings.SSE_NOTIFY = {"POLL_INTERVAL": 0.2, "HEARTBEAT": 15.0}
    key = await sync_to_async(session_cookie)(user)
    bodies = []
    with override_constants({"sse_notify.stream.MAX_STREAM_BYTES": None}):  # two bursts pass 4 MiB
        for _ in range(STREAMS):
            life = StreamLife(user.pk, session_key=key, raw_cursor=None)
            body = life.body()
            await asyncio.wait_for(body.__anext__(), 5)  # ready
            bodies.append(body)

    @sync_to_async
    def burst(count: int) -> None:
        with transaction.atomic():
            Notification.objects.bulk_create(
                [Notification(recipient=user, title=f"b{i}", body="x" * 4000) for i in range(count)]
            )

    # Warm up what the process keeps whatever the streams do (database threads and
    # their connections, compiled queries): about 5 MiB, the same for 1 or 10 streams.
    await burst(BURST)
    await asyncio.gather(*(read_until(b, BURST) for b in bodies))
    await asyncio.sleep(0.5)
    gc.collect()
    tracemalloc.start()
    try:
        idle = tracemalloc.get_traced_memory()[0]
        await burst(BURST)
        await asyncio.gather(*(read_until(b, BURST) for b in bodies))
        await asyncio.sleep(0.5)  # idle: a poll or two, nothing to send
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        for body in bodies:
            await body.aclose()
    held = after - idle
    print(f"{STREAMS} streams: burst peak +{(peak - idle) / 2**20:.1f} MiB, idle after +{held / 2**20:.2f} MiB")
    assert peak - idle > 4 * 2**20, "the burst did not go through these streams"
    assert held < 2 * 2**20, f"idle streams still hold {held / 2**20:.1f} MiB of what they sent"
