"""The delivery path after the commit, in one process, in CPU time (no server, no client, no database).

    .venv/bin/python bench/delivery.py --n 1000 5000 --rounds 7

For a personal fan-out to N users (one distinct notification each, as ``bench/run.py``'s
fan-out): the publisher's encoding (``publish.created_sends``), the in-memory layer's
copy of the message (``copy.deepcopy``), the hub's ``dispatch`` and N live streams
(``StreamLife._next``, with a connection probe that makes the real ioctl) each turning
their item into the chunk they would write. Daphne's writes and the client's parsing
are not in it: the floor pays those too. Process CPU time, so another load on the
machine moves it little (wall time is printed too). Median and spread of ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import fcntl
import os
import socket
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("BENCH_DB", "sqlite")

import django

django.setup()

from django.utils import timezone  # noqa: E402

from sse_notify import publish  # noqa: E402
from sse_notify.hub import QUEUE_SIZE, Hub, Subscription  # noqa: E402
from sse_notify.models import Notification  # noqa: E402
from sse_notify.stream import State, StreamLife  # noqa: E402

_SOCKET, _PEER = socket.socketpair()


class Probe:
    """A connection probe with the real syscall (on a socket that holds nothing)."""

    def pending(self) -> int:
        raw = fcntl.ioctl(_SOCKET.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        return int(struct.unpack("i", raw)[0])

    def holds_bytes(self) -> bool:
        return False

    def closed(self) -> bool:
        return False


async def measure(n: int, rounds: int) -> list[tuple[float, ...]]:
    loop = asyncio.get_running_loop()
    hub = Hub()
    done = asyncio.Event()
    written = [0]
    lives = []
    for uid in range(1, n + 1):
        sub = Subscription(hub, uid, None, QUEUE_SIZE)
        hub.users[uid] = {sub}
        hub.count += 1
        life = StreamLife(uid, probe=Probe(), request_thread=False)  # type: ignore[arg-type]
        life.sub, life.state, life._deadline = sub, State.LIVE, loop.time() + 1e6
        life._quiet_since = loop.time()
        lives.append(life)

    async def live(life: StreamLife) -> None:
        while True:
            await life._next()
            written[0] += 1
            if written[0] == n:
                done.set()

    tasks = [asyncio.ensure_future(live(life)) for life in lives]
    await asyncio.sleep(0.2)
    out = []
    for r in range(rounds):
        t0 = time.time()
        rows = [
            Notification(
                recipient_id=uid,
                title="bench fan-out",
                data={"t": t0, "u": uid},
                pk=r * n + uid,
                seq=r + 1,
                created_at=timezone.now(),
            )
            for uid in range(1, n + 1)
        ]
        for row in rows:
            row._unread_after = r + 1  # type: ignore[attr-defined]
        for life in lives:
            life.cursor = life.sub.cursor = r  # type: ignore[union-attr]
        written[0] = 0
        done.clear()
        c0, w0 = time.process_time(), time.perf_counter()
        ((_group, message),) = publish.created_sends(rows)
        c1 = time.process_time()
        message = copy.deepcopy(message)  # what the in-memory layer does with every message
        c2 = time.process_time()
        hub.dispatch(message)
        c3 = time.process_time()
        await done.wait()
        c4, w4 = time.process_time(), time.perf_counter()
        out.append((c1 - c0, c2 - c1, c3 - c2, c4 - c3, c4 - c0, w4 - w0))
    for task in tasks:
        task.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print("| N | encode ms | layer copy ms | dispatch ms | streams ms | total CPU ms (min–max) | wall ms |")
    print("|---|---|---|---|---|---|---|")
    for n in args.n:
        res: list[Any] = sorted(asyncio.run(measure(n, args.rounds)), key=lambda x: x[4])
        med = res[len(res) // 2]
        cells = [f"{x * 1000:.1f}" for x in med[:4]]
        total = f"{med[4] * 1000:.0f} ({res[0][4] * 1000:.0f}–{res[-1][4] * 1000:.0f})"
        print(f"| {n:,} | " + " | ".join(cells) + f" | {total} | {med[5] * 1000:.0f} |")


if __name__ == "__main__":
    main()
