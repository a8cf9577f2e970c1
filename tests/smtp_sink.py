"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

Email tests send through Django's SMTP backend (or a child process does) to this
server, then read the parsed messages. Fault knobs:

- ``refuse``: recipient addresses answered ``550`` at RCPT (a refused message);
- ``defer``: recipient addresses answered ``451`` at RCPT ("try again later": not taken);
- ``defer_data``: recipient addresses whose DATA command is answered ``451``, leaving the
  transaction open (as Postfix's and Exim's DATA restrictions do);
- ``drop_at_rcpt``: recipient addresses whose RCPT gets no answer: the connection is cut
  (once per address; the message never reached the server);
- ``drop_after_body``: recipient addresses whose message is *recorded* and then the
  connection is cut before the final reply (once per address: taken, but the sender
  cannot know);
- ``garble_mail = n``: the next n MAIL commands get a line that is no SMTP reply;
- ``hang_rset``: RSET is never answered (``rsets`` counts them);
- ``drop_mail_after = n``: once it has accepted n messages, the server cuts every
  connection at its next MAIL (a server that stopped taking mail);
- ``hang_up_after = n``: on every connection, once it has accepted n messages there, the
  server answers the next MAIL ``421`` and closes it (as Postfix and Exim do at a
  per-connection message limit);
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
from aiosmtpd.smtp import SMTP, syntax


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
        self.defer_data: set[str] = set()
        self.drop_at_rcpt: set[str] = set()
        self.drop_after_body: set[str] = set()
        self.drop_mail_after: int | None = None
        self.garble_mail = 0
        self.hang_rset = False
        self.rsets = 0
        self.hang_up_after: int | None = None
        self._per_session: dict[int, int] = {}  # messages accepted on each connection
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.held = threading.Event()
        self._cond = threading.Condition()
        self._controller = _Controller(self, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._controller.stop()

    # aiosmtpd handler hooks -------------------------------------------------------------

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.rsets += 1
        if self.hang_rset:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        return "250 OK"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any) -> str:
        if self.drop_mail_after is not None and len(self.received) >= self.drop_mail_after:
            server.transport.abort()  # no answer: the reply below is never written
            return "250 OK"
        if self.garble_mail:
            self.garble_mail -= 1
            return "hello there"
        if self.hang_up_after is not None and self._per_session.get(id(session), 0) >= self.hang_up_after:
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            server.transport.abort()  # no answer: the reply below is never written
            return "250 OK"
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
        dropped = self.drop_after_body & set(envelope.rcpt_tos)
        if dropped:
            self.drop_after_body -= dropped
            server.transport.abort()  # recorded above; the final reply is never written
            return "250 Message accepted for delivery"
        self._per_session[id(session)] = self._per_session.get(id(session), 0) + 1
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


class _SinkSMTP(SMTP):
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        sink = self.event_handler
        if self.envelope is not None and set(self.envelope.rcpt_tos) & sink.defer_data:
            await self.push("451 4.3.0 Not now, try again later")  # the transaction stays open
            return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SinkSMTP(self.handler, **self.SMTP_kwargs)
