"""Resource discipline against a real Daphne: connections, threads, files, memory."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from sse_notify.api import send_notification
from tests.support import postgres_only, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: Seconds to let Daphne's reaper of ended connections run twice (it runs every second).
DAPHNE_REAPER_TICKS = 2.5


async def open_raw_stream(port: int, cookie: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare-socket SSE client: returns once the stream's ready event arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    seen = b""
    while b"event: ready" not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, seen
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
    return reader, writer


def proc_stats(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "threads": int(fields["Threads"].strip()),
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def backend_connections(pid_filter: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


@postgres_only  # counts connections in pg_stat_activity
async def test_500_open_streams_hold_a_handful_of_database_connections(daphne, make_user):
    server = daphne(overrides={"MAX_STREAMS_PER_USER": 1000, "DB_THREADS": 4})
    users = [await sync_to_async(make_user)() for _ in range(5)]
    cookies = [await sync_to_async(session_cookie)(u) for u in users]
    streams = []
    for start in range(0, 500, 50):
        streams += await asyncio.gather(
            *(open_raw_stream(server.port, cookies[i % 5]) for i in range(start, start + 50))
        )
    held = await sync_to_async(backend_connections)("")
    # The pool's DB_THREADS connections, plus at most a couple being closed right now.
    assert held <= 6, f"{held} PostgreSQL connections for 500 open streams"
    # And the streams are alive: one send reaches all 100 streams of the first user.
    await sync_to_async(send_notification)(users[0], "still here")
    for reader, _ in streams[::5]:
        data = b""
        while b"still here" not in data:
            data += await asyncio.wait_for(reader.read(4096), 10)
    for _, writer in streams:
        writer.close()


async def test_1000_connect_disconnect_cycles_leave_the_process_as_it_was(daphne, user):
    server = daphne(overrides={"MAX_STREAMS_PER_USER": 100})
    cookie = await sync_to_async(session_cookie)(user)

    async def cycle() -> None:
        _, writer = await open_raw_stream(server.port, cookie)
        writer.close()
        await writer.wait_closed()

    async def cycles(n: int) -> None:
        for _ in range(n // 20):
            await asyncio.gather(*(cycle() for _ in range(20)))

    async def settled(baseline: dict[str, int]) -> dict[str, int]:
        # Wait for Daphne to run the cancelled generators' finally blocks and to end
        # the requests' threads (a loaded machine can take a while; no timing is asserted).
        for _ in range(300):
            stats = proc_stats(server.proc.pid)
            if stats["fds"] <= baseline["fds"] and stats["threads"] <= baseline["threads"]:
                break
            await asyncio.sleep(0.1)
        # Daphne keeps every ended connection (its protocol, request, headers, timers and
        # the application's task: about 3 KiB) until its reaper, which runs once a second
        # (Server.application_checker). Measured before that, RSS counts up to a second's
        # worth of connects: with fast connects up to 2-3 MiB that are freed a moment later.
        await asyncio.sleep(DAPHNE_REAPER_TICKS)
        return proc_stats(server.proc.pid)

    # Warm up: the hub, the DB pool threads, Django's caches, the allocator's arenas (their
    # peak is a reaper second's worth of ended connections, so at least a few seconds of cycles).
    await cycles(2000)
    before = await settled(proc_stats(server.proc.pid))
    readings = [before]
    for _ in range(3):
        await cycles(1000)
        readings.append(await settled(before))
    after = readings[-1]
    assert after["fds"] <= before["fds"], (before, after)
    assert after["threads"] <= before["threads"], (before, after)
    # A leak grows with every cycle, in every window; steady state stops growing. The
    # allocator can still step up once by 1-2 MiB on a loaded machine (a faster window
    # than the warm-up), so a leak is growth in each of the last two windows: at
    # 2 KiB a cycle or more, both cross the bound.
    growth = [b["rss_kib"] - a["rss_kib"] for a, b in itertools.pairwise(readings)]
    print("rss growth per 1000 cycles (KiB):", growth)
    assert min(growth[1:]) < 2048, readings
    # The stream still works after the churn (nothing left subscribed in a broken state).
    reader, writer = await open_raw_stream(server.port, cookie)
    await sync_to_async(send_notification)(user, "after churn")
    data = b""
    while b"after churn" not in data:
        data += await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
