"""What a send cannot avoid, timed beside the send: ``python bench/limits.py [--users 10000 100000] [--db sqlite]``.

Issue 11's figures that are not met (sends to 10,000 / 100,000 users on
PostgreSQL, the 2,000-event burst) are bound by writing the rows. This shows
how much, in one run, each figure the median of ``--repeat`` and timed to the
commit:

For N users (the database as ``bench/sends.py`` makes it):

- ``send EVERYONE``: ``send_notification(EVERYONE, ...)``, as ``bench/sends.py``;
- ``rows alone``: one ``INSERT ... SELECT`` of the same N rows with their seqs
  given (no seq allocation, no inbox, nothing returned) into the notification
  table with all its indexes: what keeping these rows costs any design;
- ``rows, primary key only``: the same rows into a copy of the table that has
  only its primary key: the share of the indexes;
- ``seqs alone``: the inbox statement that allocates one seq per user.

For a burst of ``--burst`` personal notifications to one user (``bench/run.py``'s burst):

- ``build instances``: ``Notification(...)`` x M, the caller's code in the burst;
- ``Django's bulk_create``: Django's own ``QuerySet.bulk_create`` of those
  instances with their seqs set by hand (no allocation, no publish);
- ``sse_notify bulk_create``: ``Notification.objects.bulk_create`` (seqs
  allocated under the inbox lock), to the commit and to the return (the publish
  encodes every row after the commit).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench import sends

BARE = "bench_limits_bare"


def commit_time(work: Callable[[], Any]) -> float:
    """Seconds for ``work`` in a transaction, the commit included."""
    from django.db import transaction

    start = time.perf_counter()
    with transaction.atomic():
        work()
    return time.perf_counter() - start


def raw_rows(table: str, first_seq: int) -> Callable[[], None]:
    """One INSERT ... SELECT of a row per user, every column as a send to everyone writes it."""
    from django.db import connection

    from sse_notify.models import Notification

    qn = connection.ops.quote_name
    template = Notification(title="limits", recipient_id=0, seq=first_seq)
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key and f.attname != "recipient_id"]
    values = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields]
    columns = ", ".join([qn("recipient_id"), *(qn(f.column) for f in fields)])
    select = ", ".join(["id", *("%s" for _ in fields)])
    sql = f"INSERT INTO {qn(table)} ({columns}) SELECT {select} FROM auth_user WHERE is_active"

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, values)

    return run


def inbox_seqs() -> None:
    """The seq allocation of a send to everyone, alone (as ``models._send_sql`` writes it)."""
    from django.db import connection

    from sse_notify.models import Inbox

    inbox = connection.ops.quote_name(Inbox._meta.db_table)
    excluded = "EXCLUDED" if connection.vendor == "postgresql" else "excluded"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {inbox} (user_id, last_seq, unread, pruned_seq) SELECT id, 1, 1, 0 FROM auth_user "
            f"WHERE is_active ORDER BY id ON CONFLICT (user_id) DO UPDATE SET last_seq = {inbox}.last_seq + 1, "
            f"unread = {inbox}.unread + {excluded}.unread RETURNING user_id, last_seq, unread"
        )
        cursor.fetchall()


def make_bare_table() -> None:
    """A copy of the notification table with its primary key and no other index or constraint."""
    from django.db import connection

    from sse_notify.models import Notification

    qn = connection.ops.quote_name
    table = qn(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {qn(BARE)}")
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TABLE {qn(BARE)} (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY)")
            cursor.execute(f"ALTER TABLE {qn(BARE)} ADD PRIMARY KEY (id)")
        else:  # SQLite: an INTEGER PRIMARY KEY is the rowid, as in the real table
            fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
            cols = ", ".join(f"{qn(f.column)}" for f in fields)
            cursor.execute(f"CREATE TABLE {qn(BARE)} (id integer PRIMARY KEY AUTOINCREMENT, {cols})")


def report(n: int | str, label: str, times: list[float], base: float | None) -> float:
    median = statistics.median(times)
    share = f"{median / base:>7.2f}x" if base else f"{'':>8}"
    print(f"{n:>11} {label:<34} {median:>9.3f}s {min(times):>9.3f}s {share}", flush=True)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    if args.db == "postgres":
        os.environ["BENCH_DB"] = "postgres"
        os.environ["BENCH_PG_NAME"] = sends.PG_NAME
        sends.admin(f'CREATE DATABASE "{sends.PG_NAME}"')
    else:
        os.environ["BENCH_DB"] = str(Path(tempfile.mkdtemp(prefix="sse_notify_limits_")) / "db.sqlite3")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.db.models import QuerySet

        from sse_notify.api import EVERYONE, send_notification
        from sse_notify.models import Notification

        call_command("migrate", verbosity=0)
        make_bare_table()
        print(f"{'users':>11} {'what':<34} {'median':>10} {'best':>10} {'x first':>8}")
        seq = 10**9  # seqs given by hand, far above any the sends allocate
        for n in args.users:
            sends.make_users(n)
            send_notification(EVERYONE, "warm-up: creates the inbox rows")
            results: dict[str, list[float]] = {k: [] for k in ("send", "rows", "bare", "seqs")}
            for _ in range(args.repeat):  # interleaved, so a slow moment hits every kind alike
                results["send"].append(sends.timed(lambda title: send_notification(EVERYONE, title), "limits")[0])
                seq += 1
                results["rows"].append(commit_time(raw_rows(Notification._meta.db_table, seq)))
                results["bare"].append(commit_time(raw_rows(BARE, seq)))
                results["seqs"].append(commit_time(inbox_seqs))
            base = report(n, "send EVERYONE", results["send"], None)
            report(n, "rows alone (all indexes)", results["rows"], base)
            report(n, "rows, primary key only", results["bare"], base)
            report(n, "seqs alone (inbox)", results["seqs"], base)
        if args.burst:
            from django.contrib.auth import get_user_model

            uid = get_user_model().objects.order_by("pk").values_list("pk", flat=True)[0]
            m = args.burst
            times: dict[str, list[float]] = {k: [] for k in ("build", "django", "ours", "ours_return")}

            def build() -> list[Notification]:
                t0 = time.time()
                return [Notification(recipient_id=uid, title="burst", data={"t": t0, "i": i}) for i in range(m)]

            django_path = QuerySet.bulk_create  # Django's own, not NotificationQuerySet's
            for _ in range(args.repeat):
                start = time.perf_counter()
                objs = build()
                times["build"].append(time.perf_counter() - start)
                for i, obj in enumerate(objs):
                    seq += 1
                    obj.seq = seq + i
                seq += m
                times["django"].append(commit_time(lambda objs=objs: django_path(Notification.objects.all(), objs)))
                objs = build()
                committed, returned, _ = sends.timed(
                    lambda title, objs=objs: Notification.objects.bulk_create(objs), ""
                )
                times["ours"].append(committed)
                times["ours_return"].append(returned)
            label = f"burst {m}"
            base = report(label, "sse_notify bulk_create, return", times["ours_return"], None)
            report(label, "sse_notify bulk_create, commit", times["ours"], base)
            report(label, "Django's bulk_create (seqs given)", times["django"], base)
            report(label, "build the instances", times["build"], base)
        print(
            f"{connection.vendor}; load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
            f" on {os.cpu_count()} cores"
        )
    finally:
        from django.db import connections

        connections.close_all()
        if args.db == "postgres":
            sends.admin(f'DROP DATABASE IF EXISTS "{sends.PG_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
