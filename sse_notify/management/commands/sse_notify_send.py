"""``manage.py sse_notify_send``: send a notification from the shell or cron.

Examples::

    manage.py sse_notify_send --user alice --user bob --title "Deploy at 18:00"
    manage.py sse_notify_send --group staff --title "Stand-up" --level warning --url /standup/
    manage.py sse_notify_send --all --title "Maintenance tonight" --body "From 22:00 UTC."
    manage.py sse_notify_send --user alice --title "New comment" --category comments --group-key issue-42

Streams in other processes pick the notification up from the database within
``SSE_NOTIFY['POLL_INTERVAL']`` when this process's channel layer cannot reach
them (e.g. the in-memory layer).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sse_notify import api
from sse_notify.models import Level


class Command(BaseCommand):
    help = "Send a notification to users, groups or every active user."

    def add_arguments(self, parser: CommandParser) -> None:
        who = parser.add_argument_group("recipients (at least one)")
        who.add_argument("--user", action="append", default=[], metavar="USERNAME", help="A recipient; repeatable.")
        who.add_argument(
            "--group", action="append", default=[], metavar="NAME", help="Every active member of a group; repeatable."
        )
        who.add_argument("--all", action="store_true", dest="everyone", help="Every active user.")
        parser.add_argument("--title", required=True)
        parser.add_argument("--body", default="")
        parser.add_argument("--level", default=Level.INFO, choices=Level.values)
        parser.add_argument("--url", default="", help="Link: a relative path or an http(s)/mailto URL.")
        parser.add_argument("--data", default=None, metavar="JSON", help="Extra JSON payload for the client.")
        parser.add_argument(
            "--category", default=None, metavar="SLUG", help="One of SSE_NOTIFY['CATEGORIES'] (default: 'default')."
        )
        parser.add_argument(
            "--group-key",
            dest="group_key",
            default="",
            metavar="KEY",
            help="Group key: same category + key show as one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users, groups, everyone = options["user"], options["group"], options["everyone"]
        if everyone and (users or groups):
            raise CommandError("Use --all alone, or --user/--group, not both.")
        if not (everyone or users or groups):
            raise CommandError("Choose recipients with --user, --group or --all.")
        data = None
        if options["data"] is not None:
            try:
                data = json.loads(options["data"])
            except ValueError as exc:
                raise CommandError(f"--data is not valid JSON: {exc}") from exc
            except RecursionError:
                # Any depth that reaches the parser's limit is far past the API's own.
                raise CommandError("--data is nested too deeply.") from None
        recipients: api.Recipients = api.EVERYONE if everyone else [*self._users(users), *self._groups(groups)]
        try:
            sent = api.send_notification(
                recipients,
                options["title"],
                body=options["body"],
                level=options["level"],
                url=options["url"],
                data=data,
                category=options["category"],
                group_key=options["group_key"],
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(f"Invalid notification: {problems}") from exc
        if not sent:
            raise CommandError("No active user matches these recipients; nothing was sent.")
        self.stdout.write(self.style.SUCCESS(f"Notified {len(sent)} user{'s' if len(sent) != 1 else ''}."))

    def _users(self, names: list[str]) -> list[Any]:
        if not names:
            return []
        User = get_user_model()
        field = User.USERNAME_FIELD
        found = {getattr(u, field): u for u in User._default_manager.filter(**{f"{field}__in": names})}
        missing = [name for name in dict.fromkeys(names) if name not in found]
        if missing:
            raise CommandError(f"Unknown user{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}.")
        return list(found.values())

    def _groups(self, names: list[str]) -> list[Group]:
        if not names:
            return []
        found = {g.name: g for g in Group.objects.filter(name__in=names)}
        missing = [name for name in dict.fromkeys(names) if name not in found]
        if missing:
            raise CommandError(f"Unknown group{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}.")
        return list(found.values())
