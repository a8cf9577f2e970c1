"""Soak: thousands of streams with churn and steady sending for minutes; is anything lost,
duplicated or leaked?

    .venv/bin/python bench/soak.py                      # 2,000 streams, 10 minutes
    .venv/bin/python bench/soak.py --minutes 2          # a short run
    .venv/bin/python bench/soak.py --layer memory --db /tmp/soak.sqlite3

One Daphne process serves ``bench.asgi`` (PostgreSQL database ``sse_notify_soak``,
dropped and re-created; channels_redis core layer on 127.0.0.1:6379 with a unique prefix,
or the in-memory layer). This process opens ``--streams`` streams over raw sockets, each
living a random 30-180 s (``--churn-min``/``--churn-max``), then reconnecting with ``Last-Event-ID`` = the last id it saw (as a
browser does), and sends ``--rate`` notifications a second from a thread (mostly to one
user, every 50th to 50 users). At the end every stream resumes once more and drains.

Reported: Daphne's RSS and open files after warm-up and at the end (streams still open),
delivered/expected (every stream must end with every seq of its user), duplicates within a
connection and across reconnects, and latency percentiles (send to receipt, for streams
that were open when the notification was sent). See bench/SOAK.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_NAME = "sse_notify_soak"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stats(pid: int) -> dict[str, int]:
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return {"rss": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


# -- setup ---------------------------------------------------------------------------------


def configure(args: argparse.Namespace) -> dict[str, str]:
    env = {"DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)}
    if args.db == "postgres":
        import psycopg

        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{PG_NAME}"')
        env.update(BENCH_DB="postgres", BENCH_PG_NAME=PG_NAME)
    else:
        Path(args.db).unlink(missing_ok=True)
        env["BENCH_DB"] = args.db
    if args.layer == "redis":
        prefix = f"sse_notify_soak_{uuid.uuid4().hex[:8]}"
        layers = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}],
                    "prefix": prefix,
                    "capacity": 10_000,
                },
            }
        }
        env["BENCH_LAYERS"] = json.dumps(layers)
    env["BENCH_SSE_NOTIFY"] = json.dumps({"MAX_STREAMS_PER_USER": 50})
    os.environ.update(env)
    return {**os.environ}


def make_users(count: int) -> list[tuple[int, str]]:
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    User = get_user_model()
    User.objects.bulk_create([User(username=f"soak{i}") for i in range(count)])
    users = list(User.objects.filter(username__startswith="soak").order_by("pk"))
    store = SessionStore()
    sessions, pairs = [], []
    expire = timezone.now() + datetime.timedelta(days=1)
    for user in users:
        key = uuid.uuid4().hex
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        pairs.append((user.pk, key))
    Session.objects.bulk_create(sessions)
    return pairs


def start_daphne(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    endpoint = f"tcp:port={port}:interface=127.0.0.1:backlog=4096"
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-e", endpoint, "bench.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"daphne did not start; see {log}")


# -- clients --------------------------------------------------------------------------------


@dataclass
class Slot:
    user_id: int
    cookie: str
    last_id: str | None = None
    seen: set[int] = field(default_factory=set)
    dup_in_conn: int = 0
    dup_across: int = 0
    connects: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    timeline: list[tuple[float, float]] = field(default_factory=list)
    resets: int = 0
    open: bool = False


async def one_connection(slot: Slot, port: int, lifetime: float, stop: asyncio.Event) -> None:
    path = "/notifications/stream/" + ("" if slot.last_id else "?cursor=0")
    extra = f"Last-Event-ID: {slot.last_id}\r\n" if slot.last_id else ""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.time()
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: sessionid={slot.cookie}\r\n{extra}\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if b" 200 " not in head.split(b"\r\n")[0]:
            slot.failures += 1
            await asyncio.sleep(1)
            return
        slot.connects += 1
        slot.open = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lifetime
        buffer = b""
        this_conn: set[int] = set()
        while not stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), min(remaining, 1.0))
            except TimeoutError:
                continue
            if not chunk:
                return
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            now = time.time()
            for raw in events:
                if b"event: reset" in raw:
                    slot.resets += 1
                if b"event: notification" not in raw:
                    continue
                lines = dict(line.split(b": ", 1) for line in raw.split(b"\n") if b": " in line)
                seq = int(lines[b"id"])
                if seq in this_conn:
                    slot.dup_in_conn += 1
                this_conn.add(seq)
                if seq in slot.seen:
                    slot.dup_across += 1
                else:
                    slot.seen.add(seq)
                    sent = json.loads(lines[b"data"])["data"]["t"]
                    if sent >= opened:
                        slot.latencies.append(now - sent)
                        slot.timeline.append((sent, now - sent))
                slot.last_id = str(seq)
    finally:
        slot.open = False
        writer.close()


async def run_slot(slot: Slot, port: int, stop: asyncio.Event, churn: tuple[float, float]) -> None:
    while not stop.is_set():
        try:
            await one_connection(slot, port, random.uniform(*churn), stop)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            slot.failures += 1
        await asyncio.sleep(random.uniform(0.0, 1.0))


# -- sender -------------------------------------------------------------------------------------


def sender(user_ids: list[int], rate: float, stop: threading.Event, counter: list[int]) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from sse_notify.api import send_notification

    User = get_user_model()
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        if i % 50 == 49:
            targets = list(User.objects.filter(pk__in=random.sample(user_ids, 50)))
        else:
            targets = [User(pk=random.choice(user_ids))]
        send_notification(targets, f"soak {i}", data={"t": time.time()})
        counter[0] += len(targets)
        i += 1
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()


# -- main ---------------------------------------------------------------------------------------


async def soak(args: argparse.Namespace, port: int, daphne_pid: int, pairs: list[tuple[int, str]]) -> dict[str, Any]:
    slots = [Slot(uid, cookie) for uid, cookie in (pairs[i % len(pairs)] for i in range(args.streams))]
    stop = asyncio.Event()
    samples: list[dict[str, Any]] = []
    started = time.monotonic()

    def sample(label: str) -> dict[str, Any]:
        s = {
            "label": label,
            "t": round(time.monotonic() - started, 1),
            **proc_stats(daphne_pid),
            "open": sum(1 for x in slots if x.open),
        }
        samples.append(s)
        print(f"  [{s['t']:>6}s] {label:<9} rss={s['rss'] / 2**20:.1f} MiB fds={s['fds']} open={s['open']}", flush=True)
        return s

    start = sample("start")
    tasks = []
    for i, slot in enumerate(slots):  # connect in waves
        tasks.append(asyncio.ensure_future(run_slot(slot, port, stop, (args.churn_min, args.churn_max))))
        if i % 200 == 199:
            await asyncio.sleep(0.5)
    while sum(1 for s in slots if s.connects) < len(slots):  # noqa: ASYNC110 - a bench, polling is fine
        await asyncio.sleep(0.5)
    sample("connected")
    sending = threading.Event()
    counter = [0]
    thread = threading.Thread(target=sender, args=([u for u, _ in pairs], args.rate, sending, counter), daemon=True)
    thread.start()
    total = args.minutes * 60
    warm_at = min(args.warmup, total / 4)
    await asyncio.sleep(warm_at)
    warm = sample("warm")
    while time.monotonic() - started < total:
        await asyncio.sleep(min(30, max(0.1, total - (time.monotonic() - started))))
        sample("running")
    end = sample("end")
    sending.set()
    thread.join()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    # Every stream resumes once more and drains: it must then hold every seq of its user.
    from asgiref.sync import sync_to_async

    from sse_notify.models import Inbox

    last = dict(await sync_to_async(lambda: list(Inbox.objects.values_list("user_id", "last_seq")))())
    final = asyncio.Event()

    async def drain(slot: Slot) -> None:
        want = last.get(slot.user_id, 0)
        deadline = time.monotonic() + 60
        while len(slot.seen) < want and time.monotonic() < deadline:
            try:
                await one_connection(slot, port, 10, final)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                await asyncio.sleep(0.2)

    sem = asyncio.Semaphore(500)

    async def limited(slot: Slot) -> None:
        async with sem:
            await drain(slot)

    await asyncio.gather(*(limited(s) for s in slots))
    expected = sum(last.get(s.user_id, 0) for s in slots)
    delivered = sum(len({q for q in s.seen if q <= last.get(s.user_id, 0)}) for s in slots)
    latencies = sorted(x for s in slots for x in s.latencies)
    # p99 per 10 s of the run (by send time): shows whether slow deliveries cluster.
    t0 = min((t for s in slots for t, _ in s.timeline), default=0.0)
    buckets: dict[int, list[float]] = {}
    for s in slots:
        for t, lat in s.timeline:
            buckets.setdefault(int((t - t0) // 10) * 10, []).append(lat)
    p99_by_10s = {
        k: round(sorted(v)[min(len(v) - 1, int(0.99 * len(v)))] * 1000, 1) for k, v in sorted(buckets.items())
    }

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    return {
        "streams": args.streams,
        "users": len(pairs),
        "minutes": args.minutes,
        "layer": args.layer,
        "db": args.db,
        "rate_per_s": args.rate,
        "notifications_sent": counter[0],
        "expected": expected,
        "delivered": delivered,
        "delivered_ratio": round(delivered / expected, 6) if expected else None,
        "dup_within_connection": sum(s.dup_in_conn for s in slots),
        "dup_across_reconnects": sum(s.dup_across for s in slots),
        "resets": sum(s.resets for s in slots),
        "connects": sum(s.connects for s in slots),
        "failed_connects": sum(s.failures for s in slots),
        "latency_ms": {
            "count": len(latencies),
            "p50": pct(0.50),
            "p99": pct(0.99),
            "max": pct(1.0),
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "latency_p99_ms_by_10s_of_sending": p99_by_10s,
        "daphne": {
            "start": start,
            "warm": warm,
            "end": end,
            "rss_end_vs_warm": round(end["rss"] / warm["rss"] - 1, 4),
            "fds_end_minus_warm": end["fds"] - warm["fds"],
        },
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="sends per second")
    parser.add_argument("--churn-min", type=float, default=30.0, help="shortest stream life (s)")
    parser.add_argument("--churn-max", type=float, default=180.0, help="longest stream life (s)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds after all streams connect")
    parser.add_argument("--layer", choices=["redis", "memory"], default="redis")
    parser.add_argument("--db", default="postgres", help="'postgres' or a SQLite file path")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()

    # A plain SIGTERM would skip the ``finally`` that stops Daphne.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = configure(args)
    print(f"soak: {args.streams} streams over {args.users} users, {args.minutes} min, layer={args.layer}, db={args.db}")
    pairs = make_users(args.users)
    port = free_port()
    log = Path(f"/tmp/sse_notify_soak_{os.getpid()}.log")
    daphne = start_daphne(env, port, log)
    try:
        report = asyncio.run(soak(args, port, daphne.pid, pairs))
    finally:
        daphne.terminate()
        daphne.wait(15)
    report["daphne_log_tracebacks"] = log.read_text(errors="replace").count("Traceback")
    report["daphne_log"] = str(log)
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
