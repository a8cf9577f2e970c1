"""Time sends to many users on PostgreSQL: ``python bench/sends.py [--users 10000 100000] [--repeat 5]``.

Creates its own database (``sse_notify_sends_<pid>``, dropped at the end), N
active users, and times ``send_notification(EVERYONE, ...)`` and a send to a
list of N users, each to commit (an ``on_commit`` callback registered before
the send runs first after the commit) and to return (the publish to the
in-memory layer and the ``notification_sent`` signal included). Query counts
are asserted in tests/test_sends.py, not here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ["BENCH_DB"] = "postgres"
os.environ["BENCH_PG_NAME"] = PG_NAME = f"sse_notify_sends_{os.getpid()}"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as pg:
        pg.execute(sql)


def backend_cpu() -> float:
    """CPU seconds this connection's PostgreSQL backend has used (from /proc: same machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_send(recipients: Any, title: str) -> tuple[float, float, float]:
    """Seconds to commit and to return for one send, and CPU seconds to commit (database + Python).

    On a loaded machine the wall-clock figures include waiting for a core; the CPU
    figure is what the send costs, and what it takes on an idle machine.
    """
    from django.db import transaction

    from sse_notify.api import send_notification

    committed: list[float] = []
    db_before = backend_cpu()
    cpu_start, start = time.process_time(), time.perf_counter()
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        transaction.on_commit(lambda: committed.append(time.process_time()))
        sent = send_notification(recipients, title)
    done = time.perf_counter()
    assert committed and len(sent) > 0
    cpu = committed[1] - cpu_start + backend_cpu() - db_before
    return committed[0] - start, done - start, cpu


def make_users(n: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sse_notify_notification, sse_notify_inbox, auth_user CASCADE")
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined) SELECT '', false, 'u' || g, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) AS g",
            [n],
        )
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    admin(f'CREATE DATABASE "{PG_NAME}"')
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from sse_notify.api import EVERYONE

        call_command("migrate", verbosity=0)
        print(
            f"{'users':>8} {'recipients':<10} {'commit median':>14} {'commit min':>11} {'return median':>14}"
            f" {'CPU to commit (db+py) median':>29}"
        )
        for n in args.users:
            make_users(n)
            everyone = list(get_user_model().objects.all())
            for label, recipients in (("EVERYONE", EVERYONE), ("list", everyone)):
                timed_send(recipients, "warm-up")  # first send also creates the inbox rows
                runs = [timed_send(recipients, f"{label} {i}") for i in range(args.repeat)]
                commits = [c for c, _, _ in runs]
                returns = [r for _, r, _ in runs]
                cpus = [c for _, _, c in runs]
                print(
                    f"{n:>8} {label:<10} {statistics.median(commits):>13.3f}s {min(commits):>10.3f}s"
                    f" {statistics.median(returns):>13.3f}s {statistics.median(cpus):>28.3f}s",
                    flush=True,
                )
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    finally:
        from django.db import connections

        connections.close_all()
        admin(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
