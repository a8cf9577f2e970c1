"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

Email tests send through Django's SMTP backend (or a child process does) to this
server, then read the parsed messages. Fault knobs:

- ``refuse``: recipient addresses answered ``550`` at RCPT (a refused message);
- ``defer``: recipient addresses answered ``451`` at RCPT ("try again later": not taken);
- ``close_after = n``: the server closes the connection once, right after accepting
  its n-th message (as servers do at a per-connection limit);
- ``hold_after = n``: the (n+1)-th message is *recorded* (the server has it) and then
  its final reply is withheld until ``release`` is set: the sender is left waiting
  exactly where a crash makes "was it delivered?" unknowable.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def header(self, name: str) -> str | None:
        value = self.message[name]
        # A long value is folded onto the next line; unfolded, it keeps the leading space.
        return None if value is None else str(value).strip()

    def part(self, content_type: str) -> str:
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type, f"no {content_type} part"
        return str(body.get_content()).replace("\r\n", "\n")  # the wire's line ends

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")


class SmtpSink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.close_after: int | None = None
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.held = threading.Event()
        self._cond = threading.Condition()
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._controller.stop()

    # aiosmtpd handler hooks -------------------------------------------------------------

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        if address in self.defer:
            return "451 4.7.1 Rate limited, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._cond:
            self.received.append(Received(list(envelope.rcpt_tos), message))
            hold = self.hold_after is not None and len(self.received) > self.hold_after
            self._cond.notify_all()
        if self.close_after is not None and len(self.received) == self.close_after:
            self.close_after = None
            asyncio.get_running_loop().call_soon(server.transport.close)  # once this reply is written
        if hold:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        return "250 Message accepted for delivery"

    # For tests ---------------------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """Block until ``count`` messages arrived (the timeout only guards a hang)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} expected messages arrived")
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if address in r.to]
