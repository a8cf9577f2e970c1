"""The demo's pages: sign-in with the demo users, two pages, a form to send yourself a notification."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from sse_notify.api import EVERYONE, send_notification
from sse_notify.hub import get_hub

LEVELS = ["info", "success", "warning", "error"]


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


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/home.html", {"levels": LEVELS})


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
    """Send a notification to yourself or everyone (the home page's form)."""
    to_everyone = request.POST.get("to") == "everyone"
    title = request.POST.get("title", "").strip() or "Hello from the demo"
    try:
        sent = send_notification(
            EVERYONE if to_everyone else request.user,
            title,
            body=request.POST.get("body", ""),
            level=request.POST.get("level", "info"),
            url=request.POST.get("url", "").strip(),
            actor=request.user,
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
    """How many streams this process holds (DEBUG only; the browser tests count with it)."""
    if not settings.DEBUG:
        raise Http404
    hub = get_hub()
    return JsonResponse({"streams": hub.count, "users": {str(k): len(v) for k, v in hub.users.items()}})
