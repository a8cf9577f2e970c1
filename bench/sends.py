"""Time sends to many users: ``python bench/sends.py [--users 10000 100000] [--repeat 5] [--db sqlite]``.

Creates its own database (PostgreSQL ``sse_notify_sends_<pid>``, dropped at the
end; or a temporary SQLite file with ``--db sqlite``), N active users, and times,
each to commit (an ``on_commit`` callback registered before the send runs first
after the commit) and to return (the publish to the in-memory layer and the
``notification_sent`` signal included):

- ``EVERYONE``: ``send_notification(EVERYONE, ...)``, one content to every user;
- ``list``: the same to a list of the N users;
- ``bulk_create``: one *personal* notification to each user (distinct ``data``)
  through ``Notification.objects.bulk_create``, the model instances built inside
  the timing (as the fan-out of ``bench/run.py`` and issue 11's harness do);
- ``burst``: ``--burst`` (2,000) personal notifications to one user through
  ``bulk_create``, the instances built inside the timing (``bench/run.py``'s burst).

Query counts are asserted in tests/test_sends.py, not here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
PG_NAME = f"sse_notify_sends_{os.getpid()}"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as pg:
        pg.execute(sql)


def backend_cpu() -> float:
    """CPU seconds this connection's PostgreSQL backend has used (from /proc: same machine); 0 on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0  # SQLite runs in this process: time.process_time() has it
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(send: Callable[[str], Any], title: str) -> tuple[float, float, float]:
    """Seconds to commit and to return for one send, and CPU seconds to commit (database + Python).

    On a loaded machine the wall-clock figures include waiting for a core; the CPU
    figure is what the send costs, and what it takes on an idle machine.
    """
    from django.db import transaction

    committed: list[float] = []
    db_before = backend_cpu()
    cpu_start, start = time.process_time(), time.perf_counter()
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        transaction.on_commit(lambda: committed.append(time.process_time()))
        sent = send(title)
    done = time.perf_counter()
    assert committed and len(sent) > 0
    cpu = committed[1] - cpu_start + backend_cpu() - db_before
    return committed[0] - start, done - start, cpu


def make_users(n: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from sse_notify.models import Inbox, Notification

    if connection.vendor != "postgresql":
        Notification.objects.all()._raw_delete("default")
        Inbox.objects.all().delete()
        User = get_user_model()
        User.objects.all().delete()
        User.objects.bulk_create((User(username=f"u{i}", password="") for i in range(n)), batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sse_notify_notification, sse_notify_inbox, auth_user CASCADE")
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined) SELECT '', false, 'u' || g, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) AS g",
            [n],
        )
        cursor.execute("ANALYZE")


def senders(users: list[Any], burst: int) -> dict[str, Callable[[str], Any]]:
    from sse_notify.api import EVERYONE, send_notification
    from sse_notify.models import Notification

    ids = [u.pk for u in users]
    return {
        "EVERYONE": lambda title: send_notification(EVERYONE, title),
        "list": lambda title: send_notification(users, title),
        "bulk_create": lambda title: Notification.objects.bulk_create(
            [Notification(recipient_id=uid, title=title, data={"t": time.time(), "u": uid}) for uid in ids]
        ),
        f"burst {burst}": lambda title: Notification.objects.bulk_create(
            [Notification(recipient_id=ids[0], title=title, data={"t": time.time(), "i": i}) for i in range(burst)]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--burst", type=int, default=2000, help="notifications to one user (0: no burst)")
    parser.add_argument("--only", nargs="+", help="run only these kinds (EVERYONE, list, bulk_create, burst)")
    args = parser.parse_args()
    if args.db == "postgres":
        os.environ["BENCH_DB"] = "postgres"
        os.environ["BENCH_PG_NAME"] = PG_NAME
        admin(f'CREATE DATABASE "{PG_NAME}"')
    else:
        os.environ["BENCH_DB"] = str(Path(tempfile.mkdtemp(prefix="sse_notify_sends_")) / "db.sqlite3")
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(
            f"{'users':>8} {'send':<12} {'commit median':>14} {'commit min':>11} {'return median':>14}"
            f" {'CPU to commit (db+py) median':>29}"
        )
        for n in args.users:
            make_users(n)
            everyone = list(get_user_model().objects.order_by("pk"))
            for label, send in senders(everyone, args.burst).items():
                if (args.only and label.split()[0] not in args.only) or label == "burst 0":
                    continue
                timed(send, "warm-up")  # the first send also creates the inbox rows
                runs = [timed(send, f"{label} {i}") for i in range(args.repeat)]
                commits = [c for c, _, _ in runs]
                returns = [r for _, r, _ in runs]
                cpus = [c for _, _, c in runs]
                print(
                    f"{n:>8} {label:<12} {statistics.median(commits):>13.3f}s {min(commits):>10.3f}s"
                    f" {statistics.median(returns):>13.3f}s {statistics.median(cpus):>28.3f}s",
                    flush=True,
                )
        print(f"{args.db}; load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    finally:
        from django.db import connections

        connections.close_all()
        if args.db == "postgres":
            admin(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
