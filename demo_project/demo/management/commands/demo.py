"""``python manage.py demo [--port 8000] [--debug] [--no-serve]``: set the demo up and serve it with Daphne."""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo_project.demo.views import send_command


class Command(BaseCommand):
    help = "Migrate, create the demo users if missing, print how to sign in, then serve the demo with Daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on (default 8000).")
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--no-serve", action="store_true", help="Only migrate and create the users.")
        parser.add_argument(
            "--debug",
            action="store_true",
            help="Serve with DEBUG=True (tracebacks in the browser); off by default, as on a real site.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        if not options["no_serve"]:
            check_port_free(host, port)  # before anything is printed: a second demo must not look ready
        call_command("migrate", interactive=False, verbosity=0)
        created = self.create_users()
        url = f"http://{browser_host(host)}:{port}/"
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
        self.stdout.write(f"\n  Send from a terminal:  {send_command()} --user alice --title Hello\n")
        if options["no_serve"]:
            return
        self.stdout.flush()
        argv = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "demo_project.asgi:application"]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "demo_project.settings"),
        }
        if options["debug"]:
            env["DEMO_DEBUG"] = "1"
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


def browser_host(host: str) -> str:
    """The host to print in the URL: the address Daphne binds, or loopback for a wildcard bind."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def check_port_free(host: str, port: int) -> None:
    """Fail with one line naming ``--port`` if something already listens on ``host:port``.

    Binds the way Twisted does (SO_REUSEADDR), so a port left in TIME_WAIT by a
    demo that just stopped counts as free, and only a live listener counts as taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {host} is already in use (is another demo running?). "
                    f"Stop it, or serve on another port: python manage.py demo --port {port + 1}"
                ) from None
            raise CommandError(f"Cannot serve on {host}:{port}: {exc.strerror}.") from None
