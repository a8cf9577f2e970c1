"""Every reliance on another package's private internals, in one place.

Each function here uses something its owner does not promise to keep, says
what, and has a test in ``tests/test_compat.py`` that FAILS (not skips) when
the internal no longer behaves as assumed, so an upgrade of asgiref, Django,
redis-py, Daphne, Twisted or Python's smtplib cannot silently take a guarantee away. Each
degrades safely at run time (returns a "don't know" value) rather than raising.

Public APIs are used wherever they exist (``AdminSite.get_model_admin``,
``login_not_required``, ``django.contrib.auth.get_user``).
"""

from __future__ import annotations

import fcntl
import functools
import logging
import struct
import termios
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

logger = logging.getLogger("sse_notify")


# -- asgiref: the per-request thread -----------------------------------------------------------------


def release_request_thread() -> bool:
    """Stop the thread Django's ASGI handler keeps for this request (call from the loop).

    Django runs each request's thread-sensitive sync code (signals, middleware) on
    a one-thread executor that lives as long as the request: for a stream, one
    idle OS thread per open connection. Once the stream has made its last call
    there, that executor is shut down; if anything later in the request needs it
    (``request_finished`` receivers), asgiref creates a fresh one for that moment.

    Internal: ``SyncToAsync.thread_sensitive_context`` and
    ``SyncToAsync.context_to_thread_executor`` (asgiref 3.x). Returns whether a
    thread was released.
    """
    try:
        from asgiref.sync import SyncToAsync

        context = SyncToAsync.thread_sensitive_context.get(None)
        if context is None or getattr(context, "_executor", None) is not None:
            return False  # no per-request context, or an executor its owner manages
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    except (AttributeError, TypeError):
        return False
    if executor is None:
        return False
    executor.shutdown(wait=False)
    return True


# -- Django: CSRF failure reason ----------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, returning the failure reason instead of an HTML page.

    Internal: ``CsrfViewMiddleware._reject(request, reason)`` is what
    ``process_view`` returns on failure.
    """

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def csrf_failure(request: HttpRequest) -> str | None:
    """The reason Django's CSRF middleware would refuse ``request``, or None if it passes."""
    from django.http import HttpResponse

    check = _CsrfCheck(lambda _request: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, lambda _r: HttpResponse(), (), {})
    if reason is None:
        return None
    if isinstance(reason, str):
        return reason
    # Django stopped calling _reject: still refuse, without the detail.
    return "refused"


# -- redis-py: an idle read cut by socket_timeout ------------------------------------------------------


def is_read_timeout(exc: BaseException) -> bool:
    """An idle read cut by redis-py's ``socket_timeout`` ("Timeout reading from ...").

    Only that: a connect timeout or a refused connection is an outage. Internal:
    redis-py's exception message text (there is no distinct exception class).
    """
    return (
        type(exc).__name__ == "TimeoutError"
        and type(exc).__module__.startswith("redis")
        and str(exc).startswith("Timeout reading")
    )


# -- smtplib: when a message body goes out ----------------------------------------------------------


def watch_smtp_body(smtp: Any, on_body: Any) -> None:
    """Call ``on_body()`` when ``smtp`` (an ``smtplib.SMTP``) writes a message body.

    A connection that breaks before the body was written certainly lost nothing (the
    message may go again); after it, the server may have the message (at most once).
    Internal: ``sendmail`` sends commands as text through ``SMTP.send`` and, in
    ``data()``, the whole body in one ``send`` call, as bytes ending in CRLF.CRLF.
    If that changes, ``on_body`` is never called and every break counts as "before",
    which could send a message twice: the test fails then.
    """
    write = smtp.send

    def send(s: Any) -> None:
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            on_body()
        write(s)

    smtp.send = send  # this connection only


# -- Daphne / Twisted: what a finished response still holds ------------------------------------------


class ConnectionProbe:
    """What the server still holds for one HTTP connection, after the app is done with it.

    Daphne applies no backpressure and keeps the bytes a client has not read (in
    Twisted's buffer and the kernel's send queue) after the response ends, until
    the socket closes, and tells the application nothing then (its
    ``http.disconnect`` comes when the response finishes). The probe reads the
    connection's transport: closed, or bytes still pending.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def closed(self) -> bool:
        t = self._transport
        return bool(getattr(t, "disconnected", False)) or not getattr(t, "connected", False)

    def pending(self) -> int:
        """Bytes written for this connection and not yet taken by the client (0 if closed).

        Internal: Twisted's ``FileDescriptor`` buffer attributes (``dataBuffer``,
        ``offset``, ``_tempDataLen``) and, on Linux, ``SIOCOUTQ`` on the socket.
        """
        if self.closed():
            return 0
        t = self._transport
        size = len(t.dataBuffer) - t.offset + t._tempDataLen
        try:
            handle = t.getHandle()
            raw = fcntl.ioctl(handle.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
            size += struct.unpack("i", raw)[0]
        except (OSError, AttributeError, ValueError):
            pass
        return int(size)

    def holds_bytes(self) -> bool:
        """True while the connection is open and still holds unsent or unacknowledged bytes."""
        try:
            return self.pending() > 0
        except AttributeError:  # Twisted changed: count it until closed
            return not self.closed()


def connection_probe(send: Any) -> ConnectionProbe | None:
    """The probe for the connection Daphne serves through ``send``, or None elsewhere.

    Internal: Daphne's ``send`` is ``functools.partial(server.handle_reply, protocol)``
    and the protocol (a Twisted ``Request``) has the connection's ``transport``.
    """
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    if transport is None or not hasattr(transport, "connected"):
        return None
    return ConnectionProbe(transport)


# -- Daphne / Twisted: the server is stopping ------------------------------------------------------------


def served_by_twisted() -> bool:
    """True when running inside a running Twisted reactor (Daphne)."""
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    return bool(reactor is not None and getattr(reactor, "running", False))


def on_server_shutdown(callback: Any) -> bool:
    """Run ``callback()`` (a coroutine function) when a Twisted-based server (Daphne) stops.

    Daphne has no ASGI lifespan; on SIGINT/SIGTERM it cancels each request's outer
    task, which leaves Django's inner tasks (the stream, a pending ``receive()``)
    orphaned, and they were destroyed at interpreter teardown (a segfault on
    Python 3.11.7). A "before shutdown" trigger lets the hub end its streams
    cleanly first; Twisted waits for it. Public Twisted API; registered only if a
    reactor is already installed (importing one here would install the wrong one).
    Returns whether it was registered.
    """
    import sys

    if "twisted.internet.reactor" not in sys.modules:
        return False
    import asyncio

    from twisted.internet import defer
    from twisted.internet import reactor as installed

    reactor: Any = installed
    if not getattr(reactor, "running", False):
        return False

    def trigger() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(callback()))

    reactor.addSystemEventTrigger("before", "shutdown", trigger)
    return True


def tell_client_left(receive: Any) -> bool:
    """Make the next ``receive()`` of a Daphne request return ``http.disconnect``.

    Internal: Daphne's ``receive`` is the ``get`` of the request's ``asyncio.Queue``.
    Returns whether it could (the caller then cancels instead).
    """
    import asyncio

    queue = getattr(receive, "__self__", None)
    if not isinstance(queue, asyncio.Queue):
        return False
    queue.put_nowait({"type": "http.disconnect"})
    return True
