"""A sending process for the browser tests: one JSON command a line in, ``ok`` a line out.

Django starts once instead of once per send, which keeps the suite fast; it is
still another process, so with the in-memory layer its notifications reach
Daphne the way a worker's or cron job's do: through the database poll.

Command: ``{"user": "alice", "title": "...", "body": ..., "level": ..., "url": ...,
"actor": "bob", "raw": false}``. ``raw`` writes the row with ``bulk_create``
directly, skipping ``send_notification``'s validation (a careless script).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from sse_notify.api import send_notification
    from sse_notify.models import Notification

    users = get_user_model().objects
    for line in sys.stdin:
        try:
            command = json.loads(line)
            recipient = users.get(username=command.pop("user"))
            if command.get("actor"):
                command["actor"] = users.get(username=command["actor"])
            if command.pop("raw", False):
                Notification.objects.bulk_create([Notification(recipient=recipient, **command)])
            else:
                send_notification(recipient, command.pop("title"), **command)
        except Exception as exc:
            print(f"error {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        else:
            print("ok", flush=True)


if __name__ == "__main__":
    main()
