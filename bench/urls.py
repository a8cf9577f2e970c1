"""The app under test, plus a control endpoint so the in-memory target can send in-process."""

import json

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from bench import actions


@csrf_exempt
async def command(request: HttpRequest) -> JsonResponse:
    # Runs on a worker thread; its after-commit publish reaches this process's hub.
    result = await sync_to_async(actions.handle, thread_sensitive=False)(json.loads(request.body))
    return JsonResponse(result)


urlpatterns = [
    path("notifications/", include("sse_notify.urls")),
    path("bench/command/", command),
]
