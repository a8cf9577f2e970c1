"""The demo's pages: sign-in with the demo users, two pages, a form to send yourself a notification.

People copy demos, so the demo holds itself to what a real site would: only
staff may send to everyone or link outside the site from the home page's form,
and the stream-count view the browser tests read needs DEBUG and a signed-in user.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from sse_notify.api import EVERYONE, send_notification
from sse_notify.categories import get_categories
from sse_notify.hub import get_hub

LEVELS = ["info", "success", "warning", "error"]
MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


class DemoLoginView(LoginView):
    template_name = "demo/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        names = [u["username"] for u in settings.DEMO_USERS]
        users = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
        context["demo_users"] = [users[n] for n in names if n in users]
        context["demo_password"] = settings.DEMO_PASSWORD
        return context


def send_command() -> str:
    """The terminal command that sends from this checkout, runnable without an activated venv."""
    return f"{shell_path(sys.executable)} {shell_path(str(MANAGE_PY))} sse_notify_send"


def shell_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter to read), quoted for a shell."""
    relative = os.path.relpath(path)
    return shlex.quote(path if relative.startswith("..") else relative)


def site_relative(url: str) -> bool:
    """A link to a page of this site (``/projects/``), not to another host or scheme."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


@login_required
def home(request: HttpRequest) -> HttpResponse:
    categories = [(slug, str(c.label)) for slug, c in get_categories().items()]
    return render(
        request, "demo/home.html", {"levels": LEVELS, "categories": categories, "send_command": send_command()}
    )


@login_required
def projects(request: HttpRequest) -> HttpResponse:
    rows = [
        ("Website relaunch", "alice", 72, "On track"),
        ("Mobile app 2.0", "bob", 41, "At risk"),
        ("Billing migration", "carol", 90, "On track"),
        ("Support portal", "admin", 15, "Planning"),
    ]
    return render(request, "demo/projects.html", {"projects": rows})


@require_POST
@login_required
def send(request: HttpRequest) -> HttpResponse:
    """Send a notification to yourself, or (staff only) to everyone (the home page's form).

    A non-staff user may link only to a page of this site: otherwise anyone with
    a demo login could push a phishing link as a toast into everyone's tabs.
    """
    to_everyone = request.POST.get("to") == "everyone"
    title = request.POST.get("title", "").strip() or "Hello from the demo"
    url = request.POST.get("url", "").strip()
    staff = request.user.is_staff
    if not staff and (to_everyone or (url and not site_relative(url))):
        reason = (
            "Only staff can send to everyone."
            if to_everyone
            else "Only staff can link outside this site; use a path such as /projects/."
        )
        if request.headers.get("Accept") == "application/json":
            return JsonResponse({"error": "forbidden", "detail": {"__all__": [reason]}}, status=403)
        messages.error(request, reason)
        return redirect("demo:home")
    try:
        sent = send_notification(
            EVERYONE if to_everyone else request.user,
            title,
            body=request.POST.get("body", ""),
            level=request.POST.get("level", "info"),
            url=url,
            actor=request.user,
            category=request.POST.get("category") or None,
            group_key=request.POST.get("group_key", "").strip(),
        )
    except ValidationError as exc:
        if request.headers.get("Accept") == "application/json":
            return JsonResponse({"error": "invalid", "detail": exc.message_dict}, status=400)
        for field_errors in exc.message_dict.values():
            for error in field_errors:
                messages.error(request, error)
        return redirect("demo:home")
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"sent": len(sent)})
    messages.success(request, f"Sent to {len(sent)} user(s).")
    return redirect("demo:home")


async def stream_count(request: HttpRequest) -> HttpResponse:
    """How many streams this process holds (the browser tests count with it).

    DEBUG only, signed-in only: staff see every user's count, others only their own
    (who is connected is not something to show the world).
    """
    if not settings.DEBUG:
        raise Http404
    user = await request.auser()
    if not user.is_authenticated:
        raise PermissionDenied
    hub = get_hub()
    users = {str(k): len(v) for k, v in hub.users.items() if user.is_staff or k == user.pk}
    if user.is_staff:
        return JsonResponse({"streams": hub.count, "users": users})
    return JsonResponse({"users": users})
