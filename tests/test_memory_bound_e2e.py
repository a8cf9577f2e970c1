"""What one user can pin in one Daphne process is bounded (issue 9, item 1).

One account whose backlog is about 4 MiB opens connections with an old cursor at a
steady rate and never reads them. Each connect replays at most ``REPLAY_BYTES``;
an ended stream keeps its place in ``MAX_STREAMS_PER_USER`` while its connection
still holds unsent bytes (``sse_notify.asgi.StreamRoute`` lets the hub see it);
connects beyond the cap get the cap's answer (200, a comment and a long
``retry:``). Daphne's RSS levels off instead of growing with the connect rate.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from sse_notify.models import Notification
from tests.support import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CAP = 10
CONNECTS = 40
RATE = 4.0  # connects per second
#: The documented bound: CAP connections x REPLAY_BYTES (256 KiB) each, plus room
#: for Daphne's own per-connection state and allocator noise.
RSS_BOUND = 24 * 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def never_reading_connect(port: int, cookie: str) -> tuple[socket.socket, bytes]:
    """Send the request, read the head and the first bytes, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /notifications/stream/?cursor=0 HTTP/1.1\r\nHost: x\r\nCookie: sessionid={cookie}\r\n\r\n".encode()
    )
    sock.settimeout(10)
    first = b""
    while b"\r\n\r\n" not in first or b"\n\n" not in first.split(b"\r\n\r\n", 1)[1]:
        try:
            chunk = sock.recv(256)
        except TimeoutError:
            break  # an answer that is not an event stream (it is reported by the caller)
        if not chunk:
            break
        first += chunk
        sock.settimeout(2)
    return sock, first


async def test_never_reading_clients_of_one_user_cannot_grow_daphne(daphne, make_user):
    server = daphne(overrides={"MAX_STREAMS_PER_USER": CAP, "POLL_INTERVAL": 0.5})
    alice = await sync_to_async(make_user)()

    @sync_to_async
    def backlog() -> None:
        Notification.objects.bulk_create(
            [Notification(recipient=alice, title=f"n{i}", body="x" * 4000) for i in range(1000)]
        )

    await backlog()
    cookie = await sync_to_async(session_cookie)(alice)
    assert server.proc is not None
    pid = server.proc.pid

    # Warm up (imports, caches, the hub) with a client that reads and leaves.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET /notifications/stream/ HTTP/1.0\r\nHost: x\r\nCookie: sessionid={cookie}\r\n\r\n".encode())
    await reader.readuntil(b"event: ready")
    writer.close()
    await asyncio.sleep(1.0)
    before = rss(pid)

    sockets: list[socket.socket] = []
    answers: list[bytes] = []
    samples: list[int] = []
    try:
        for _ in range(CONNECTS):
            sock, first = await asyncio.to_thread(never_reading_connect, server.port, cookie)
            sockets.append(sock)
            answers.append(first)
            samples.append(rss(pid))
            await asyncio.sleep(1 / RATE)
        await asyncio.sleep(2.0)
        after = rss(pid)
    finally:
        for sock in sockets:
            sock.close()

    growth = after - before
    heads = [a.split(b"\r\n", 1)[0] for a in answers]
    print(
        f"Daphne RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB (+{growth / 2**20:.1f} MiB);",
        f"{sum(b'event: ready' in a for a in answers)} streams, heads {sorted(set(heads))}",
    )
    assert all(b" 200 " in h for h in heads), heads
    streams = [a for a in answers if b"event: ready" in a]
    refused = [a for a in answers if b": too_many_streams" in a]
    assert len(streams) == CAP, f"{len(streams)} of {CONNECTS} connects streamed"
    assert len(refused) == CONNECTS - CAP
    assert all(b"retry: " in a for a in refused)
    assert growth < RSS_BOUND, f"RSS grew {growth / 2**20:.1f} MiB for one user's never-read connections"
    # A plateau: the second half of the connects (all refused) added next to nothing.
    half = samples[CONNECTS // 2]
    assert after - half < 8 * 1024 * 1024, [s // 2**20 for s in samples]
