"""The floor: a bare Django async SSE view over in-process asyncio queues.

No channel layer, no database, no auth, no middleware: the cost of Django +
Daphne holding and feeding SSE streams, against which sse_notify is measured.
Frames have the same shape and size as sse_notify's notification events.

  GET  /stream/?u=<user>   the stream of user <user>
  POST /command/           {"op": "fanout"|"broadcast", "ids": [...]} or {"op": "burst", "uid": u, "m": M}
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

# BENCH_FLOOR_MIDDLEWARE=1 ("floor-mw" target): the same view behind the middleware
# stack of bench/settings.py (sessions, CSRF, auth), still without database access:
# what Django's default stack costs per connect before sse_notify does anything.
WITH_MIDDLEWARE = os.environ.get("BENCH_FLOOR_MIDDLEWARE") == "1"
if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="floor",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ]
        if WITH_MIDDLEWARE
        else [],
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
        if WITH_MIDDLEWARE
        else [],
        DATABASES={},
    )
    if WITH_MIDDLEWARE:
        import django

        django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

QUEUES: dict[int, set[asyncio.Queue[bytes]]] = {}
SEQ: dict[int, int] = {}


def frame(uid: int, data: str) -> bytes:
    seq = SEQ[uid] = SEQ.get(uid, 0) + 1
    created = datetime.now(UTC).isoformat()
    body = (
        f'{{"id":{seq},"seq":{seq},"unread":0,"title":"bench","body":"","level":"info","url":"",'
        f'"data":{data},"created":"{created}","actor":null}}'
    )
    return f"id: {seq}\nevent: notification\ndata: {body}\n\n".encode()


async def stream(request: HttpRequest) -> HttpResponse:
    uid = int(request.GET["u"])
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    QUEUES.setdefault(uid, set()).add(queue)

    async def events() -> Any:
        try:
            yield b'retry: 3000\nevent: ready\ndata: {"cursor":0,"unread":0}\n\n'
            while True:
                try:
                    first = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                out = [first]
                while not queue.empty():
                    out.append(queue.get_nowait())
                yield b"".join(out)
        finally:
            QUEUES[uid].discard(queue)

    response = StreamingHttpResponse(events(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


def put(uid: int, data: str) -> None:
    item = frame(uid, data)
    for queue in QUEUES.get(uid, ()):
        queue.put_nowait(item)


@csrf_exempt
async def command(request: HttpRequest) -> JsonResponse:
    cmd = json.loads(request.body)
    t0 = time.time()
    if cmd["op"] == "fanout":
        for uid in cmd["ids"]:
            put(uid, json.dumps({"t": t0, "u": uid}))
    elif cmd["op"] == "broadcast":
        data = json.dumps({"t": t0})
        for uid in cmd["ids"]:
            put(uid, data)
    elif cmd["op"] == "burst":
        for i in range(cmd["m"]):
            put(cmd["uid"], json.dumps({"t": t0, "i": i}))
    return JsonResponse({"t0": t0, "t_pub": t0, "t_end": time.time()})


urlpatterns = [path("stream/", stream), path("command/", command)]
application = get_asgi_application()
