"""Real SMTP servers on 127.0.0.1 for tests (aiosmtpd), well-behaved or scripted to misbehave.

    with LocalSMTPServer() as server:          # records every accepted message
        ...                                     # server.port, server.handler.messages

Knobs on `server.handler` (a `Recorder`), set before or during a test:
    delay            seconds to wait before answering end-of-data
    max_in_data      (read) the most ends-of-data answered at once
    data_replies     replies for the next ends-of-data ("451 …", "421 …"); then 250
    rcpt_replies     address -> reply for RCPT TO (e.g. "550 5.1.1 no such user")
    drop_in_data     hang up right after the 354 reply to DATA for the next N messages
    drop_after_data  accept (record) the next N messages, then close without replying
    kill_at          (n, pid): SIGKILL pid when the n-th message arrives, before replying
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def parse(self) -> EmailMessage:
        """Return the message parsed with the modern `email` policy."""
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Recorder:
    """aiosmtpd handler: records accepted messages; knobs make it misbehave on purpose."""

    messages: list[Received] = field(default_factory=list)
    delay: float = 0.0
    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    drop_in_data: int = 0
    drop_after_data: int = 0
    kill_at: tuple[int, int] | None = None
    hold_after: int | None = None  # hold every message after this many until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    transactions: int = 0
    in_data: int = 0  # ends-of-data being answered right now
    max_in_data: int = 0  # the most seen at once: how many connections really ran together
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self) -> list[str]:
        """Return every recipient of every accepted message, in order."""
        with self.lock:
            return [r for m in self.messages for r in m.rcpt_tos]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.transactions += 1
        if self.hold_after is not None and self.transactions > self.hold_after:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 300)
        self.in_data += 1
        self.max_in_data = max(self.max_in_data, self.in_data)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_data -= 1
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if reply.startswith("421"):
                asyncio.get_running_loop().call_soon(_close, server)
            return reply
        data = envelope.original_content or b""
        assert isinstance(data, bytes)
        with self.lock:
            self.messages.append(
                Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(data))
            )
            count = len(self.messages)
        if self.drop_after_data > 0:
            self.drop_after_data -= 1
            _close(server)
            return "250 OK (never seen)"
        if self.kill_at is not None and count == self.kill_at[0]:
            os.kill(self.kill_at[1], signal.SIGKILL)
            await asyncio.sleep(0.3)  # the reply must go to a dead client
        return "250 OK queued"


def _close(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


class _SMTP(SMTP):
    """aiosmtpd's server with one extra fault: hanging up in the middle of DATA."""

    closing: threading.Event | None = None  # set by the controller as it stops

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Accepted as the server stops (a client retrying after an outage): hang up, so
        # no transport outlives the server (a ResourceWarning fails whichever test runs).
        if (
            self.closing is not None
            and self.closing.is_set()
            and isinstance(transport, asyncio.Transport)
        ):
            transport.abort()

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        handler = self.event_handler
        if handler.drop_in_data > 0 and self.envelope is not None and self.envelope.rcpt_tos:
            handler.drop_in_data -= 1
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            # Hang up at once, in the kernel, right behind the 354: the client has surely
            # seen the hang-up before its end-of-data however slowly this thread runs.
            assert self.transport is not None
            sock = self.transport.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            _close(self)
            return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: set[SMTP] = set()
        self._closing = threading.Event()

    def factory(self) -> SMTP:
        session = _SMTP(self.handler, **self.SMTP_kwargs)
        session.closing = self._closing
        self.sessions.add(session)
        return session

    def stop(self, no_assert: bool = False) -> None:
        """Stop, closing the connections still open: aiosmtpd closes only the listener,
        and a client's socket left behind was reported (ResourceWarning) whenever the
        collector found it, failing whichever test was running then."""
        self._closing.set()  # from now on a new connection hangs up as it is made
        if self._thread is not None and self.loop.is_running():

            async def close_all() -> None:
                # Stop accepting first: a client still sending (retrying after an
                # outage) could otherwise connect after the others were closed.
                if isinstance(self.server, asyncio.Server):
                    # Stop accepting, but leave the server whole: closed, it fails the
                    # set-up of a connection accepted a moment before (asyncio 3.11
                    # asserts the server is open), stranding that socket. aiosmtpd
                    # closes the server once the loop has stopped.
                    for sock in self.server.sockets:
                        self.loop.remove_reader(sock.fileno())
                # A connection accepted just before is still being set up: wait for
                # that to finish (it then hangs up by itself, see `_SMTP`), or stopping
                # the loop would strand its socket, open.
                for _ in range(500):
                    if not any(_accepting(t) for t in asyncio.all_tasks()):
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0)
                for session in list(self.sessions):
                    if isinstance(session.transport, asyncio.Transport):
                        session.transport.abort()
                for _ in range(5):  # the transports' connection_lost closes the sockets
                    await asyncio.sleep(0)

            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(60)
        self.sessions.clear()
        super().stop(no_assert)


def _accepting(task: asyncio.Task[Any]) -> bool:
    """True for asyncio's task that sets up a connection the server just accepted."""
    name: str = getattr(task.get_coro(), "__qualname__", "")
    return name.endswith("_accept_connection2")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalSMTPServer:
    """An aiosmtpd server on 127.0.0.1 in a background thread, optionally with TLS and AUTH."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        handler: Recorder | None = None,
    ) -> None:
        self.handler = handler or Recorder()
        self.port = free_port()
        self.users = users or {}
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": False}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if users:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            kwargs["auth_require_tls"] = tls is not None
        self.logins: list[str] = []
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            self.logins.append(user)
            ok = self.users.get(user) == password
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535
        return AuthResult(success=False, handled=False)

    @property
    def messages(self) -> list[Received]:
        """Return the accepted messages."""
        return self.handler.messages

    def start(self) -> LocalSMTPServer:
        """Start listening."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening and close connections."""
        self.controller.stop()

    def __enter__(self) -> LocalSMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
