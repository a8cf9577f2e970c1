"""Database access for streams and the hub, on a small fixed pool of threads.

Django's async ORM runs each request's queries in that request's own thread,
and a connection opened there stays open until the request ends, which for a
stream means hours. 10,000 streams would hold 10,000 connections. Instead all
stream and hub queries run here, on ``DB_THREADS`` threads whose connections
are reused: a process holds at most that many connections for all its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from .compat import release_request_thread
from .conf import app_settings

logger = logging.getLogger("sse_notify")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_last_error_log = 0.0


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, int(app_settings.DB_THREADS)), thread_name_prefix="sse_notify-db"
            )
        return _executor


def pool_size() -> int | None:
    """Threads of the current pool (None before the first query)."""
    executor = _executor
    return None if executor is None else int(executor._max_workers)


def reset_if_resized() -> None:
    """``DB_THREADS`` changed (``setting_changed``): the next query gets a pool of the new size."""
    size = pool_size()
    try:
        wanted = max(1, int(app_settings.DB_THREADS))
    except (TypeError, ValueError):
        return  # a bad value: the system checks report it (E004)
    if size is not None and size != wanted:
        shutdown()


def _close_broken() -> None:
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def _call(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except (OperationalError, InterfaceError):
        # A connection that died (database restarted) is reopened once.
        _close_broken()
        return fn(*args)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the shared database threads, in a copy of the caller's context.

    A plain executor call, not ``sync_to_async``: the functions run here need no more
    than the caller's context variables (the active language), and every connect
    makes two of these calls (measured: about half the CPU of ``sync_to_async`` per call).
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_executor(), contextvars.copy_context().run, _call, fn, *args)


def log_error(what: str, exc: BaseException) -> None:
    """Log a database failure once per 10 s per process: no traceback storm in an outage."""
    global _last_error_log
    now = time.monotonic()
    if now - _last_error_log >= 10.0:
        _last_error_log = now
        logger.warning("sse_notify: %s failed: %s: %s", what, type(exc).__name__, exc)


def close_request_connections() -> None:
    """Close connections the current (request) thread opened, outside transactions.

    Middleware (session, auth) may have opened one in the request's own thread;
    a stream would otherwise pin it for its whole life.
    """
    _close_broken()


def shutdown() -> None:
    """Close the pool's connections and stop its threads (tests, graceful exit)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    workers = len(getattr(executor, "_threads", ())) or 1
    barrier = threading.Barrier(workers, timeout=5)

    def close_here() -> None:
        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    for _ in range(workers):
        executor.submit(close_here)
    executor.shutdown(wait=True)


__all__ = ["DatabaseError", "close_request_connections", "log_error", "release_request_thread", "run", "shutdown"]
