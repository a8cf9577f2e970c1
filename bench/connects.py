"""Micro-benchmark of stream connects through ``sse_notify.asgi.StreamRoute``, in-process.

No sockets, no Daphne: N signed-in users open a stream each (at most ``--concurrency``
at once) straight through the ASGI application, and the script reports the CPU time
of this process per connect (the database threads' included; PostgreSQL's own
backend is not) and the wall time. What Daphne and Twisted cost per connect is the
same for the floor and is measured by ``bench/run.py``.

  python bench/connects.py --db sqlite --n 2000
  python bench/connects.py --db postgres --n 2000 --profile /tmp/connects.prof   # cProfile
  python bench/connects.py --db postgres --layer redis

Users and sessions are written by ``bench/actions.setup`` (PostgreSQL database
``--pg-name``, created and migrated if missing; SQLite in a temporary file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def configure(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    if args.db == "sqlite":
        os.environ["BENCH_DB"] = str(Path(tempfile.mkdtemp(prefix="connects_")) / "db.sqlite3")
    else:
        os.environ["BENCH_DB"] = "postgres"
        os.environ["BENCH_PG_NAME"] = args.pg_name
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.pg_name], capture_output=True)
    if args.layer == "redis":
        os.environ["BENCH_LAYERS"] = json.dumps(
            {
                "default": {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": f"connects_{os.getpid()}"},
                }
            }
        )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


async def main(args: argparse.Namespace) -> None:
    from asgiref.sync import sync_to_async

    from bench import actions
    from sse_notify.asgi import StreamRoute
    from sse_notify.hub import get_hub

    users = (await sync_to_async(actions.setup)(args.n + 1))["users"]

    async def django_app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"handed to Django: {scope['path']}")

    route = StreamRoute(django_app)
    tasks: list[asyncio.Task[None]] = []
    leave: list[asyncio.Event] = []

    async def connect(uid: int, key: str) -> None:
        ready = asyncio.Event()
        gone = asyncio.Event()
        leave.append(gone)
        headers = [(b"host", b"127.0.0.1"), (b"cookie", f"sessionid={key}".encode())]
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/notifications/stream/",
            "root_path": "",
            "query_string": b"cursor=0",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
        }

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            elif b"event: ready" in message.get("body", b""):
                ready.set()

        tasks.append(asyncio.ensure_future(route(scope, receive, send)))
        await ready.wait()

    # Warm up: imports, the hub, the database threads' connections.
    await connect(*users[-1])
    slots = asyncio.Semaphore(args.concurrency)

    async def one(uid: int, key: str) -> None:
        async with slots:
            await connect(uid, key)

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(uid, key) for uid, key in users[: args.n]))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        f"{args.db}/{args.layer} N={args.n}: {args.n / wall:,.0f} connects/s, "
        f"{cpu * 1000 / args.n:.3f} ms CPU per connect ({get_hub().count} streams open)"
    )
    for gone in leave:
        gone.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await get_hub().aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--layer", choices=["memory", "redis"], default="memory")
    parser.add_argument("--pg-name", default="sse_notify_connects")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the connects into FILE")
    args = parser.parse_args()
    configure(args)
    asyncio.run(main(args))
