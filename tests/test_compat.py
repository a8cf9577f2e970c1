"""Each private internal in ``sse_notify.compat`` behaves as assumed. These tests FAIL
(never skip) when an upgrade changes one, and none needs Redis."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.test import RequestFactory

from sse_notify import compat


async def test_asgiref_per_request_thread_is_released():
    """Django runs a request's thread-sensitive code on a per-request executor; the stream
    shuts it down so an open stream holds no OS thread."""
    async with ThreadSensitiveContext():
        ident = await sync_to_async(threading.get_ident, thread_sensitive=True)()
        context = SyncToAsync.thread_sensitive_context.get(None)
        assert context is not None, "asgiref no longer exposes the per-request context"
        assert context in SyncToAsync.context_to_thread_executor
        executor = SyncToAsync.context_to_thread_executor[context]
        assert compat.release_request_thread() is True, "the per-request executor was not found"
        assert context not in SyncToAsync.context_to_thread_executor
        assert executor._shutdown
        # Sync code later in the request still runs (on a fresh thread).
        again = await sync_to_async(threading.get_ident, thread_sensitive=True)()
        assert again != ident


def test_csrf_failure_reason_comes_from_djangos_check(db):
    factory = RequestFactory()
    request = factory.post("/x", {})
    reason = compat.csrf_failure(request)
    assert reason is not None and "CSRF" in reason, reason
    ok = factory.get("/x")
    assert compat.csrf_failure(ok) is None


async def test_redis_read_timeout_is_recognised_by_its_text():
    """A server that accepts and never answers: redis-py's socket_timeout cuts the read."""
    import redis.asyncio
    import redis.exceptions

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        client = redis.asyncio.Redis(host="127.0.0.1", port=port, socket_timeout=0.2, retry=None)
        with pytest.raises(redis.exceptions.TimeoutError) as info:
            await client.ping()
        assert compat.is_read_timeout(info.value), str(info.value)
        await client.aclose()
        refused = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        assert not compat.is_read_timeout(refused)
    finally:
        listener.close()


async def test_daphne_send_leads_to_the_connection_transport():
    """Daphne hands the app ``partial(server.handle_reply, protocol)``; the protocol has
    the transport, whose buffer and socket the probe reads."""
    from daphne.server import Server
    from twisted.internet import abstract

    seen: dict[str, object] = {}

    async def app(scope: object, receive: object, send: object) -> None:
        seen["send"] = send

    server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never started

    class Protocol:
        transport = abstract.FileDescriptor()

    protocol = Protocol()
    server.connections = {protocol: {}}  # what Server.run() sets up
    server.create_application(protocol, {"type": "http"})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    send = seen["send"]
    assert isinstance(send, functools.partial) and send.args[0] is protocol
    probe = compat.connection_probe(send)
    assert probe is not None

    # The buffer attributes the probe reads: bytes written and not yet sent.
    transport = protocol.transport
    transport.connected = 1
    transport.startWriting = lambda: None  # no reactor: keep the bytes buffered
    transport.write(b"x" * 1000)
    assert probe.pending() == 1000
    assert probe.holds_bytes()
    transport.connected = 0
    transport.disconnected = 1
    assert probe.closed() and probe.pending() == 0


def test_smtplib_writes_a_message_body_in_one_call_after_its_commands():
    """The email pass tells "the connection broke before the body" (nothing lost: send again)
    from "after" (unknown: never again) by watching smtplib write the body."""
    import smtplib

    received: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer() -> None:
            peer, _ = server.accept()
            with peer, peer.makefile("rb") as lines:
                peer.sendall(b"220 ready\r\n")
                for line in lines:
                    received.append(line)
                    command = line[:4].upper()
                    if command == b"EHLO":
                        peer.sendall(b"250 ok\r\n")
                    elif command == b"DATA":
                        peer.sendall(b"354 go on\r\n")
                    elif line == b".\r\n" or command in (b"MAIL", b"RCPT"):
                        peer.sendall(b"250 ok\r\n")
                    elif command == b"QUIT":
                        peer.sendall(b"221 bye\r\n")
                        return

        answerer = threading.Thread(target=answer)
        answerer.start()
        smtp = smtplib.SMTP("127.0.0.1", server.getsockname()[1], timeout=10)
        seen: list[int] = []
        compat.watch_smtp_body(smtp, lambda: seen.append(len(received)))
        smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nbody\r\n")
        smtp.quit()
        answerer.join(10)
    assert len(seen) == 1, "smtplib no longer writes the body in one recognisable call"
    assert [line[:4].upper() for line in received[: seen[0]]] == [b"EHLO", b"MAIL", b"RCPT", b"DATA"]
