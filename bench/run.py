"""Benchmark: sse_notify against the floor of Django + Daphne, side by side in one run.

    .venv/bin/python bench/run.py                    # N = 1,000 / 5,000 / 10,000, all targets
    .venv/bin/python bench/run.py --quick            # N = 1,000 only, M = 500
    .venv/bin/python bench/run.py --n 1000,5000 --targets floor,memory

Targets: ``floor`` (bench/floor.py, one process), ``memory`` (sse_notify, in-memory
layer, one process), ``redis`` (sse_notify, 2 Daphne processes + a sending
process, channels_redis core layer), ``redis-all`` (the same with the internal
constant publish.GROUP_SEND_THRESHOLD = 0: every process receives every send, no per-user groups).
See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
REDIS_URL = "redis://127.0.0.1:6379/0"
TICK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- processes ----------------------------------------------------------------------


class Server:
    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        for _attempt in range(3):
            if self._start(app, env, log):
                return
        raise RuntimeError(f"{app} did not start; see {log}")

    def _start(self, app: str, env: dict[str, str], log: Path) -> bool:
        self.port = free_port()
        endpoint = f"tcp:port={self.port}:interface=127.0.0.1:backlog=4096"
        offset = log.stat().st_size if log.exists() else 0
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "daphne", "-e", endpoint, "-v", "0", app],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Listening, but is it ours? (Another program may have taken the free port.)
            time.sleep(0.3)
            with log.open("rb") as f:
                f.seek(offset)
                failed = b"Listen failure" in f.read()
            if self.proc.poll() is None and not failed:
                return True
            break
        self.stop()
        return False

    def stats(self) -> dict[str, float]:
        pid = self.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return {
            "rss_kib": int(fields["VmRSS"].split()[0]),
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "cpu_s": (int(stat[11]) + int(stat[12])) / TICK,
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class Sender:
    """bench/sender.py: a separate process that sends (for the Redis targets)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [PY, "bench/sender.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("sender died; see its log")
        result = json.loads(line)
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    async def acall(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.call, cmd)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- the load client ------------------------------------------------------------------


@dataclass
class Phase:
    expected: int
    t_pub: float | None = None
    got: int = 0
    dups: int = 0
    latencies: list[float] = field(default_factory=list)  # send -> parsed (s)
    arrivals: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Client:
    def __init__(self) -> None:
        self.phase: Phase | None = None
        self.ready = 0
        self.resets = 0
        self.unexpected_close = 0
        self.bad_status: dict[str, int] = {}
        self.stray = 0


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "client", "closing", "headers_done", "ready", "request", "seen", "transport")

    def __init__(self, client: Client, request: bytes, ready: asyncio.Future[bool]) -> None:
        self.client, self.request, self.ready = client, request, ready
        self.buf = b""
        self.headers_done = False
        self.seen: set[bytes] = set()
        self.closing = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.headers_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[9:12].decode()
            if status != "200":
                self.client.bad_status[status] = self.client.bad_status.get(status, 0) + 1
                if not self.ready.done():
                    self.ready.set_result(False)
                self.closing = True
                self.transport.close()  # type: ignore[union-attr]
                return
            self.headers_done = True
            buf = buf[end + 4 :]
        now = time.time()
        while (end := buf.find(b"\n\n")) >= 0:
            self.event(buf[:end], now)
            buf = buf[end + 2 :]
        self.buf = buf

    def event(self, block: bytes, now: float) -> None:
        if block.startswith(b":"):
            return
        client = self.client
        if b"event: notification" in block:
            event_id = block[4 : block.index(b"\n")]
            phase = client.phase
            if phase is None:
                client.stray += 1
                return
            if event_id in self.seen:
                phase.dups += 1
                return
            self.seen.add(event_id)
            data = json.loads(block[block.index(b"data: ") + 6 :])
            phase.latencies.append(now - data["data"]["t"])
            phase.arrivals.append(now)
            phase.got += 1
            if phase.got >= phase.expected:
                phase.done.set()
        elif b"event: ready" in block:
            client.ready += 1
            if not self.ready.done():
                self.ready.set_result(True)
        elif b"event: reset" in block:
            client.resets += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.client.unexpected_close += 1
        if not self.ready.done():
            self.ready.set_result(False)


async def open_streams(
    client: Client, targets: list[tuple[int, str, bytes]], concurrency: int
) -> tuple[list[Conn], float, int]:
    """Open every stream, at most ``concurrency`` connecting at once; a stream counts once it sent ``ready``."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    conns: list[Conn] = []
    failed = 0

    async def one(port: int, host: str, request: bytes) -> None:
        nonlocal failed
        async with slots:
            ready: asyncio.Future[bool] = loop.create_future()
            try:
                _, conn = await loop.create_connection(lambda: Conn(client, request, ready), host, port)
            except OSError:
                failed += 1
                return
            conns.append(conn)
            try:
                ok = await asyncio.wait_for(ready, 60)
            except TimeoutError:
                ok = False
            if not ok:
                failed += 1

    start = time.monotonic()
    await asyncio.gather(*(one(port, "127.0.0.1", req) for port, _, req in targets))
    return conns, time.monotonic() - start, failed


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


# -- one target at one N -----------------------------------------------------------------


class Target:
    name = ""

    def __init__(self, run_dir: Path, users: list[tuple[int, str]]) -> None:
        self.run_dir, self.users = run_dir, users
        self.servers: list[Server] = []

    def start(self) -> None: ...

    def request(self, index: int) -> tuple[int, bytes]: ...

    #: Where the first server takes benchmark commands (setup, sends) as JSON.
    command_path = "/command/"

    async def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=120) as http:
            r = await http.post(f"http://127.0.0.1:{self.servers[0].port}{self.command_path}", json=cmd)
            return r.json()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def get(path: str, port: int, cookie: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.0", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    if cookie:
        lines.append(f"Cookie: sessionid={cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Floor(Target):
    name = "floor"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.servers = [Server("bench.floor:application", env, self.run_dir / "floor.log")]

    def request(self, index: int) -> tuple[int, bytes]:
        port = self.servers[0].port
        return port, get(f"/stream/?u={self.users[index][0]}", port)


class FloorMiddleware(Floor):
    name = "floor-mw"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_FLOOR_MIDDLEWARE": "1"}
        self.servers = [Server("bench.floor:application", env, self.run_dir / "floor-mw.log")]


class SseNotify(Target):
    name = "memory"
    processes = 1
    command_path = "/bench/command/"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "bench.settings", **BENCH_ENV}

    def start(self) -> None:
        self.cursors: dict[str, int] = {}
        self.servers = [
            Server("bench.asgi:application", self.env(), self.run_dir / f"{self.name}{i}.log")
            for i in range(self.processes)
        ]

    async def prepare(self, n: int) -> None:
        """Each client reconnects from its current cursor: the replay query runs (and finds nothing)."""
        result = await SETUP_SENDER.acall({"op": "cursors", "ids": [uid for uid, _ in self.users[:n]]})
        self.cursors = result["cursors"]

    def request(self, index: int) -> tuple[int, bytes]:
        uid, cookie = self.users[index]
        port = self.servers[index % len(self.servers)].port
        return port, get(f"/notifications/stream/?cursor={self.cursors.get(str(uid), 0)}", port, cookie)


class MemorySqlite(SseNotify):
    """``memory`` on SQLite (the README's default setup): its own database file, users and sessions."""

    name = "memory-sqlite"

    def env(self) -> dict[str, str]:
        return {**super().env(), "BENCH_DB": str(self.run_dir / "bench.sqlite3")}

    def start(self) -> None:
        env = self.env()
        if not Path(env["BENCH_DB"]).exists():
            subprocess.run([PY, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        self.setup_sender = Sender(env, self.run_dir / "sqlite-setup-sender.log")
        self.users = [(u, k) for u, k in self.setup_sender.call({"op": "setup", "n": len(self.users)})["users"]]
        super().start()

    async def prepare(self, n: int) -> None:
        result = await self.setup_sender.acall({"op": "cursors", "ids": [uid for uid, _ in self.users[:n]]})
        self.cursors = result["cursors"]

    def stop(self) -> None:
        super().stop()
        self.setup_sender.stop()


class Redis(SseNotify):
    name = "redis"
    processes = 2
    overrides: dict[str, Any] = {}
    #: sse_notify internal constants by dotted path, set in every process (bench/apps.py).
    constants: dict[str, Any] = {}

    def env(self) -> dict[str, str]:
        self.prefix = f"sse_notify_bench_{uuid.uuid4().hex[:8]}"
        layers = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    # The configuration docs/deployment.md recommends (checks W003-W006 clean).
                    "hosts": [
                        {
                            "address": REDIS_URL,
                            "socket_timeout": 10,
                            "socket_connect_timeout": 5,
                            "max_connections": 1000,
                        }
                    ],
                    "prefix": self.prefix,
                    "capacity": 10_000,
                },
            }
        }
        env = super().env()
        env["BENCH_LAYERS"] = json.dumps(layers)
        env["BENCH_SSE_NOTIFY"] = json.dumps({**json.loads(env.get("BENCH_SSE_NOTIFY") or "{}"), **self.overrides})
        env["BENCH_CONSTANTS"] = json.dumps(self.constants)
        return env

    def start(self) -> None:
        env = self.env()
        self.cursors = {}
        self.servers = [
            Server("bench.asgi:application", env, self.run_dir / f"{self.name}{i}.log") for i in range(self.processes)
        ]
        self.sender = Sender(env, self.run_dir / f"{self.name}-sender.log")

    async def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.sender.acall(cmd)

    def stop(self) -> None:
        super().stop()
        self.sender.stop()
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()


class RedisAll(Redis):
    name = "redis-all"
    constants = {"sse_notify.publish.GROUP_SEND_THRESHOLD": 0}


TARGETS = {
    "floor": Floor,
    "floor-mw": FloorMiddleware,
    "memory": SseNotify,
    "memory-sqlite": MemorySqlite,
    "redis": Redis,
    "redis-all": RedisAll,
}
BENCH_ENV: dict[str, str] = {}
PROFILE_DIR = ""
SETUP_SENDER: Sender


def cpu_s(servers: list[Any]) -> float:
    return sum(s.stats()["cpu_s"] for s in servers)


def cpu_now(servers: list[Any]) -> tuple[float, float]:
    """CPU seconds so far of the servers and of this client."""
    return cpu_s(servers), time.process_time()


async def wait_phase(
    phase: Phase,
    timeout: float,
    sent: dict[str, Any],
    servers: list[Any] | None = None,
    cpu0: tuple[float, float] = (0, 0),
) -> dict[str, Any]:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(phase.done.wait(), timeout)
    cpu1 = cpu_s(servers) if servers else 0.0
    client1 = time.process_time()
    await asyncio.sleep(0.3)  # late duplicates show up here
    lat = [x * 1000 for x in phase.latencies]
    out = {
        "expected": phase.expected,
        "delivered": phase.got,
        "dups": phase.dups,
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "max": max(lat) if lat else float("nan"),
        "send_ms": (sent["t_end"] - sent["t0"]) * 1000,
    }
    if sent.get("t_pub") and phase.arrivals:
        out["p99_commit"] = pct([(a - sent["t_pub"]) * 1000 for a in phase.arrivals], 99)
    if phase.arrivals:
        out["span_s"] = max(phase.arrivals) - sent["t0"]
    if servers:
        # CPU of the target's server processes from the send call to the last event
        # (the send itself included when it runs in a server), and of this client.
        out["server_cpu_ms"] = (cpu1 - cpu0[0]) * 1000
        out["client_cpu_ms"] = (client1 - cpu0[1]) * 1000
    return out


async def measure(target: Target, n: int, m: int, concurrency: int, timeout: float) -> dict[str, Any]:
    client = Client()
    target.start()
    if isinstance(target, SseNotify):
        await target.prepare(n)
    result: dict[str, Any] = {"target": target.name, "n": n}
    conns: list[Conn] = []
    spies = []
    if PROFILE_DIR:
        spy = str(Path(PY).with_name("py-spy"))
        for i, server in enumerate(target.servers):
            out = Path(PROFILE_DIR) / f"{target.name}-{n}-{i}.txt"
            spies.append(
                subprocess.Popen(
                    [spy, "record", "-p", str(server.proc.pid), "-f", "raw", "-r", "200", "--gil", "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    try:
        # Warm up (imports, hub start, first DB connections), then the baseline.
        warm_reqs = [target.request(i) for i in range(len(target.servers))]
        warm, _, _ = await open_streams(client, [(p, "", r) for p, r in warm_reqs], 1)
        # One notification end to end: first publish, layer connections, sender imports.
        client.phase = Phase(expected=1)
        await target.command({"op": "burst", "uid": target.users[0][0], "m": 1})
        await wait_phase(client.phase, 10, {"t0": 0, "t_end": 0})
        client.phase = None
        for c in warm:
            c.closing = True
            c.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(1.0)
        before = [s.stats() for s in target.servers]
        client.ready = 0
        reqs = [target.request(i) for i in range(n)]
        conns, elapsed, failed = await open_streams(client, [(p, "", r) for p, r in reqs], concurrency)
        result["connect_rate"] = (n - failed) / elapsed
        mid = [s.stats() for s in target.servers]
        result["connect_cpu_ms"] = (
            sum(m["cpu_s"] - b["cpu_s"] for m, b in zip(mid, before, strict=False)) * 1000 / max(1, n - failed)
        )
        result["connect_failed"] = failed
        result["bad_status"] = dict(client.bad_status)
        await asyncio.sleep(1.0)
        after = [s.stats() for s in target.servers]
        open_n = max(1, n - failed)
        result["rss_kib"] = sum(a["rss_kib"] - b["rss_kib"] for a, b in zip(after, before, strict=False)) / open_n
        result["threads"] = sum(a["threads"] - b["threads"] for a, b in zip(after, before, strict=False)) / open_n
        result["fds"] = sum(a["fds"] - b["fds"] for a, b in zip(after, before, strict=False)) / open_n
        result["rss_total_mib"] = sum(a["rss_kib"] for a in after) / 1024
        # Idle CPU with N streams open (heartbeats, the hub's database poll).
        cpu0 = [s.stats()["cpu_s"] for s in target.servers]
        await asyncio.sleep(5.0)
        cpu1 = [s.stats()["cpu_s"] for s in target.servers]
        result["idle_cpu"] = sum(b - a for a, b in zip(cpu0, cpu1, strict=False)) / 5.0 * 100
        ids = [uid for uid, _ in target.users[:n]]
        # Fan-out: one personal notification to each of the N users.
        client.phase = Phase(expected=n - failed)
        cpu0 = cpu_now(target.servers)
        sent = await target.command({"op": "fanout", "ids": ids})
        result["fanout"] = await wait_phase(client.phase, timeout, sent, target.servers, cpu0)
        # Burst: M notifications to one stream.
        client.phase = Phase(expected=m)
        cpu0 = cpu_now(target.servers)
        sent = await target.command({"op": "burst", "uid": ids[0], "m": m})
        burst = await wait_phase(client.phase, timeout, sent, target.servers, cpu0)
        burst["events_s"] = burst["delivered"] / burst["span_s"] if burst.get("span_s") else 0.0
        result["burst"] = burst
        # Broadcast: the same notification to everyone.
        client.phase = Phase(expected=n - failed)
        cpu0 = cpu_now(target.servers)
        sent = await target.command({"op": "broadcast", "ids": ids})
        result["broadcast"] = await wait_phase(client.phase, timeout, sent, target.servers, cpu0)
        client.phase = None
        result["unexpected_close"] = client.unexpected_close
        result["resets"] = client.resets
        alive = [s.proc.poll() is None for s in target.servers]
        result["servers_alive"] = all(alive)
    finally:
        for c in conns:
            c.closing = True
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0.5)
        for spy_proc in spies:
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(30)
        target.stop()
    return result


# -- report ------------------------------------------------------------------------------


def fmt(x: Any, digits: int = 0) -> str:
    if isinstance(x, float):
        return "–" if x != x else f"{x:,.{digits}f}"
    return str(x)


def ratio(value: float, floor: float) -> str:
    if not floor or value != value or floor != floor:
        return ""
    return f" ({value / floor:.2f}x)"


def report(results: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    lines = [
        f"# sse_notify benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
        "client and servers on the same machine (and shared with other work: compare ratios within this run).",
        f"Command: `python bench/run.py {' '.join(sys.argv[1:])}`; burst M = {args.m}; wall time {wall:.0f} s.",
        "Ratios in parentheses are to the floor at the same N. Latency = send call -> event parsed by the client "
        "(send time inside the notification); `p99 commit` starts at the commit instead (sse_notify pays a database "
        "write of N rows first; the floor writes nothing).",
        "",
        "| N | target | connect/s | RSS KiB/stream | threads/stream | fds/stream | idle CPU % | fan-out p50 / p99 / max ms | "
        "fan-out p99 commit ms | fan-out delivered | burst events/s | burst delivered | broadcast p99 ms | broadcast delivered |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    floors = {r["n"]: r for r in results if r["target"] == "floor" and "error" not in r}
    problems: list[str] = []
    for r in results:
        n = r["n"]
        if "error" in r:
            lines.append(f"| {n:,} | {r['target']} | **failed: {r['error']}** |" + " |" * 12)
            continue
        f = floors.get(n, {})
        fo, bu, bc = r["fanout"], r["burst"], r["broadcast"]

        def delivered(p: dict[str, Any]) -> str:
            text = f"{p['delivered']:,}/{p['expected']:,}" + (f", {p['dups']} dup" if p["dups"] else "")
            return f"**{text}**" if p["delivered"] != p["expected"] or p["dups"] else text

        for label, p in (("fan-out", fo), ("burst", bu), ("broadcast", bc)):
            if p["delivered"] != p["expected"] or p["dups"]:
                problems.append(
                    f"N={n:,} {r['target']} {label}: {p['delivered']:,}/{p['expected']:,} delivered, {p['dups']} duplicates"
                )
        if r.get("connect_failed"):
            problems.append(
                f"N={n:,} {r['target']}: {r['connect_failed']} streams failed to open {r.get('bad_status')}"
            )
        fl = f.get("fanout", {}).get("p99", float("nan"))
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{n:,}",
                    r["target"],
                    fmt(r["connect_rate"]) + ratio(r["connect_rate"], f.get("connect_rate", 0)),
                    fmt(r["rss_kib"], 1) + ratio(r["rss_kib"], f.get("rss_kib", 0)),
                    fmt(r["threads"], 2),
                    fmt(r["fds"], 2),
                    fmt(r["idle_cpu"], 1),
                    f"{fmt(fo['p50'])} / {fmt(fo['p99'])}{ratio(fo['p99'], fl)} / {fmt(fo['max'])}",
                    fmt(fo.get("p99_commit", float("nan"))),
                    delivered(fo),
                    fmt(bu["events_s"]),
                    delivered(bu),
                    fmt(bc["p99"]) + ratio(bc["p99"], fl),
                    delivered(bc),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "CPU from the send call to the last event parsed (server processes, sends included where they run in one; "
        "and this client, which shares the machine's cores):",
        "",
        "| N | target | fan-out server / client CPU ms | burst server / client CPU ms | broadcast server / client CPU ms |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            continue
        cells = [
            f"{fmt(r[k].get('server_cpu_ms', float('nan')))} / {fmt(r[k].get('client_cpu_ms', float('nan')))}"
            for k in ("fanout", "burst", "broadcast")
        ]
        lines.append(f"| {r['n']:,} | {r['target']} | " + " | ".join(cells) + " |")
    lines.append("")
    if problems:
        lines.append("**LOST OR DUPLICATED EVENTS / FAILED STREAMS IN THIS RUN:**")
        lines.extend(f"- **{p}**" for p in problems)
    else:
        lines.append("Every fan-out, burst and broadcast: delivered = expected, no duplicates, every stream opened.")
    lines.append("")
    lines.append("Raw figures (JSON): see the `.json` file next to this one.")
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------


def prepare_database(args: argparse.Namespace, run_dir: Path, n_max: int) -> list[tuple[int, str]]:
    global SETUP_SENDER
    BENCH_ENV["BENCH_PG_NAME"] = args.pg_name
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "bench.settings", **BENCH_ENV}
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as pg:
        exists = pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.pg_name,)).fetchone()
        if exists and args.fresh_db:
            pg.execute(f'DROP DATABASE "{args.pg_name}" WITH (FORCE)')
            exists = None
        if not exists:
            pg.execute(f'CREATE DATABASE "{args.pg_name}"')
    subprocess.run([PY, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    SETUP_SENDER = Sender(env, run_dir / "setup-sender.log")
    users = SETUP_SENDER.call({"op": "setup", "n": n_max})["users"]
    return [(u, k) for u, k in users]


async def main_async(args: argparse.Namespace) -> None:
    raise_nofile()
    run_dir = Path(args.logs)
    run_dir.mkdir(parents=True, exist_ok=True)
    ns = [int(x) for x in args.n.split(",")]
    started = time.monotonic()
    users = await asyncio.to_thread(prepare_database, args, run_dir, max(ns))
    results: list[dict[str, Any]] = []
    for n in ns:
        for name in args.targets.split(","):
            target = TARGETS[name](run_dir, users)
            print(f"[bench] N={n:,} {name} ...", file=sys.stderr, flush=True)
            t = time.monotonic()
            try:
                r = await measure(target, n, args.m, args.concurrency, args.timeout)
            except Exception as exc:  # keep going: the report shows the failure
                r = {"target": name, "n": n, "error": f"{type(exc).__name__}: {exc}"}
            print(f"[bench]   {time.monotonic() - t:.0f} s: {json.dumps(r)}", file=sys.stderr, flush=True)
            results.append(r)
    SETUP_SENDER.stop()
    text = report(results, args, time.monotonic() - started)
    print(text)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"[bench] wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,5000,10000", help="stream counts, comma-separated")
    parser.add_argument(
        "--targets", default="floor,memory,redis", help="floor,floor-mw,memory,memory-sqlite,redis,redis-all"
    )
    parser.add_argument("--m", type=int, default=2000, help="burst size (events to one stream)")
    parser.add_argument("--quick", action="store_true", help="N=1000 and M=500 only (a smoke run)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="streams connecting at once (bounded by PostgreSQL's max_connections: each "
        "connecting request holds one for its session and auth lookups)",
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for each delivery phase")
    parser.add_argument("--pg-name", default="sse_notify_bench", help="PostgreSQL database for users and notifications")
    parser.add_argument("--fresh-db", action="store_true", help="drop and recreate the bench database first")
    parser.add_argument("--out", help="markdown output (default bench/results/<date>.md)")
    parser.add_argument("--logs", default="/tmp/sse_notify_bench", help="server logs directory")
    parser.add_argument("--profile", metavar="DIR", help="record each server with py-spy (collapsed stacks) into DIR")
    args = parser.parse_args()
    global PROFILE_DIR
    PROFILE_DIR = args.profile or ""
    if args.quick:
        args.n, args.m = "1000", 500
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
