"""Stopping the server is clean: open streams end at once and the process exits 0.

Real Daphne, a real open stream, a real signal. On Python 3.11.7 the hub's
pending reads used to be destroyed at interpreter teardown (exit 139).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from asgiref.sync import sync_to_async

from tests.sse_client import SSEStream
from tests.support import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_with_an_open_stream_ends_it_and_exits_0(daphne, user, sig):
    server = daphne()
    cookie = await sync_to_async(session_cookie)(user)
    async with SSEStream(server.url("/notifications/stream/?cursor=0"), cookie=cookie) as s:
        assert (await s.next_event()).event == "ready"
        assert server.proc is not None
        proc = server.proc
        started = time.monotonic()
        proc.send_signal(sig)
        # The stream ends at once (the client would resume on another process).
        with pytest.raises(StopAsyncIteration):
            await s.next_event(timeout=8)
        code = await asyncio.to_thread(proc.wait, 15)
        elapsed = time.monotonic() - started
    assert code == 0, f"exit code {code}:\n{server.output()[-3000:]}"
    assert elapsed < 12, "shutdown waited for Daphne's application close timeout"
    assert "Traceback" not in server.output(), server.output()[-3000:]
