"""``python manage.py demo [--port 8000] [--no-serve]``: set the demo up and serve it with Daphne."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, create the demo users if missing, print how to sign in, then serve the demo with Daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on (default 8000).")
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--no-serve", action="store_true", help="Only migrate and create the users.")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        created = self.create_users()
        url = f"http://{'localhost' if options['host'] in ('127.0.0.1', '::1') else options['host']}:{options['port']}/"
        style = self.style
        self.stdout.write(
            style.SUCCESS("sse_notify demo is ready.") + (f" Created users: {', '.join(created)}." if created else "")
        )
        self.stdout.write(f"\n  Open      {url}")
        self.stdout.write(f"  Admin     {url}admin/sse_notify/notification/  (send notifications from here)")
        self.stdout.write(f"  Inbox     {url}notifications/")
        self.stdout.write("\n  Logins (password for all: " + style.MIGRATE_HEADING(settings.DEMO_PASSWORD) + ")")
        for spec in settings.DEMO_USERS:
            role = "superuser" if spec.get("is_superuser") else "user"
            self.stdout.write(f"    {spec['username']:<8} {role}")
        self.stdout.write("\n  Send from a terminal:  python manage.py sse_notify_send --user alice --title Hello\n")
        if options["no_serve"]:
            return
        self.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            options["host"],
            "-p",
            str(options["port"]),
            "demo_project.asgi:application",
        ]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "demo_project.settings"),
        }
        root = str(settings.BASE_DIR)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        os.chdir(root)
        os.execve(sys.executable, argv, env)

    def create_users(self) -> list[str]:
        User = get_user_model()
        created = []
        for spec in settings.DEMO_USERS:
            fields = dict(spec)
            username = fields.pop("username")
            superuser = bool(fields.pop("is_superuser", False))
            if User.objects.filter(username=username).exists():
                continue
            if superuser:
                User.objects.create_superuser(username=username, password=settings.DEMO_PASSWORD, **fields)
            else:
                User.objects.create_user(username=username, password=settings.DEMO_PASSWORD, **fields)
            created.append(username)
        return created
