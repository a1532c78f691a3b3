"""One SMTP connection for `deliver`: connect, secure, authenticate, and run transactions.

Each transaction has one recipient. The caller's `claim` callback runs after the
message content is sent and just before the final end-of-data, so the ledger can
record the delivery as in flight at the last possible moment. Outcomes are
exceptions that tell the caller exactly what the server may have received.
"""

from __future__ import annotations

import base64
import contextlib
import re
import select
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable

from digest.config import SmtpConfig

FINAL_REPLY_FACTOR = 10  # RFC 5321 allows 10 minutes for the end-of-data reply
_UNSAFE = re.compile(r"[\x00-\x20<>\x7f-\uffff]")  # anything that could bend an SMTP command


class Temporary(Exception):
    """A 4xx reply or a lost connection: try again later (`claimed`: the ledger says sending).

    `refused`: the server answered this recipient or message with a temporary refusal
    (not a lost connection or a 421 for the whole session), which is what
    [smtp].give_up_hours counts.
    """

    def __init__(
        self,
        message: str,
        *,
        reconnect: bool = False,
        claimed: bool = False,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.reconnect = reconnect
        self.claimed = claimed
        self.refused = refused


class Rejected(Exception):
    """A 5xx reply for this message or recipient (`bounce`: the address itself is dead)."""

    def __init__(self, message: str, *, bounce: bool, claimed: bool = False) -> None:
        super().__init__(message)
        self.bounce = bounce
        self.claimed = claimed


class Uncertain(Exception):
    """End-of-data was sent but no reply came: the server may or may not have the message."""


class Abandoned(Exception):
    """The ledger refused the claim: someone else has it, or the subscriber left."""


class Fatal(Exception):
    """A problem no retry fixes (login refused, untrusted certificate, sender refused)."""


WITHHELD = "(reply withheld: it contained the SMTP password)"


class Secrets:
    """The forms of the SMTP password that travel in an AUTH exchange, to keep out of output.

    The AUTH exchange itself is never quoted (its replies are replaced by their code);
    any other server reply that contains the password, literally or base64-encoded as
    AUTH PLAIN or LOGIN sent it, is withheld whole rather than edited: masking a
    substring in arbitrary text shows where the password was (and, for a short one,
    what it is).
    """

    def __init__(self, username: str, password: str) -> None:
        forms: set[str] = set()
        if password:
            secret = password.encode()
            forms.add(password)
            plain = b"\0" + username.encode() + b"\0" + secret
            for raw in (secret, plain, username.encode() + b"\0" + secret):
                forms.add(base64.b64encode(raw).decode().rstrip("="))
            # The password's bytes at any offset of a longer base64 text (a third of
            # the alignments each): the characters that depend on nothing else.
            for pad in (1, 2):
                encoded = base64.b64encode(b"\0" * pad + secret).decode().rstrip("=")
                inner = encoded[4:-4]
                if len(inner) >= 4:
                    forms.add(inner)
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def contains(self, text: str) -> bool:
        """Return True when `text` holds the password in any of its forms."""
        return any(form in text for form in self._forms)

    def clean(self, text: str) -> str:
        """Return `text`, or a note in its place when it holds the password."""
        return WITHHELD if self.contains(text) else text


def _reply(code: int, resp: bytes | str, secrets: Secrets) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
    return secrets.clean(f"{code} {' '.join(text.split())}"[:300])


class SmtpClient:
    """One SMTP connection that runs single-recipient transactions and reconnects on demand."""

    def __init__(self, smtp: SmtpConfig, *, password: str, local_hostname: str | None) -> None:
        self.cfg = smtp
        self._password = password
        self._secrets = Secrets(smtp.username, password)
        self._local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        """Return host:port for messages."""
        return f"{self.cfg.host}:{self.cfg.port}"

    @property
    def connected(self) -> bool:
        """Return True while a usable connection is open."""
        return self._conn is not None and self._conn.sock is not None

    def _scrub(self, text: str) -> str:
        return self._secrets.clean(text)

    def connect(self) -> None:
        """Open, secure and authenticate a connection; raise Temporary or Fatal."""
        self.drop()
        cfg = self.cfg
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise Fatal(f"cannot load smtp.ca_file {cfg.ca_file!r}: {exc}") from None
        conn: smtplib.SMTP | None = None
        logging_in = False
        try:
            if cfg.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    local_hostname=self._local_hostname,
                    timeout=cfg.timeout,
                    context=context,
                )
            else:
                conn = smtplib.SMTP(
                    cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout
                )
            conn.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise Fatal(
                        f'{self.where} does not offer STARTTLS; use security = "ssl" with '
                        'its TLS port, or "none" only for a trusted local relay'
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if cfg.username:
                logging_in = True
                conn.login(cfg.username, self._password)
                logging_in = False
            if conn.sock is not None:
                # The end-of-data is a separate 3-byte write; without this, Nagle's
                # algorithm holds it back until the server's delayed ACK (~40 ms).
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except ssl.SSLCertVerificationError as exc:
            self._close(conn)
            raise Fatal(
                f"the TLS certificate of {self.where} is not trusted ({exc.verify_message}); "
                "point smtp.ca_file at the CA that signed it"
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            # The server's text answers our credentials (some servers quote them back):
            # only its code is shown.
            self._close(conn)
            raise Fatal(
                f"{self.where} refused the login of {cfg.username!r} (reply {exc.smtp_code}); "
                f"check smtp.username and ${cfg.password_env}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._close(conn)
            if not logging_in:
                raise Fatal(f"{self.where}: {exc}") from None
            raise Fatal(
                f'{self.where} does not offer SMTP AUTH; set smtp.username = "" if it needs '
                "no login, or use the server's submission port"
            ) from None
        except Fatal:
            self._close(conn)
            raise
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            self._close(conn)
            if logging_in:  # mid-AUTH: whatever the server said may quote the credentials
                code = getattr(exc, "smtp_code", None)
                raise Temporary(
                    f"cannot log in to {self.where}: the connection failed during AUTH"
                    + (f" (reply {code})" if code else f" ({type(exc).__name__})")
                ) from None
            raise Temporary(f"cannot connect to {self.where}: {self._scrub(str(exc))}") from None
        self._conn = conn

    @staticmethod
    def _close(conn: smtplib.SMTP | None) -> None:
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def drop(self) -> None:
        """Close the connection without QUIT (aborts any transaction in progress)."""
        self._close(self._conn)
        self._conn = None

    def quit(self) -> None:
        """Say QUIT and close."""
        if self._conn is not None and self._conn.sock is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
        self.drop()

    def _rset(self) -> None:
        assert self._conn is not None
        try:
            code, _ = self._conn.rset()
            if code != 250:
                self.drop()
        except (OSError, smtplib.SMTPException):
            self.drop()

    def _peer_spoke(self) -> bool:
        """Return True if the server sent something (or closed) while we were in DATA."""
        assert self._conn is not None
        sock = self._conn.sock
        if sock is None:
            return True
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        if not isinstance(sock, ssl.SSLSocket):
            return True
        # A readable TLS socket may only hold protocol records (session tickets).
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            sock.recv(1)
            return True
        except ssl.SSLWantReadError:
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(timeout)

    def transact(
        self, sender: str, recipient: str, payload: bytes, claim: Callable[[], bool]
    ) -> str:
        """Send one message; call `claim` just before end-of-data; return the 250 reply.

        `payload` must end with CRLF and contain no line starting with "." (as
        `MessageTemplate.render` guarantees). Raises Temporary, Rejected,
        Uncertain, Abandoned or Fatal.
        """
        conn = self._conn
        if conn is None or conn.sock is None:
            raise Temporary("not connected", reconnect=True)
        if _UNSAFE.search(sender) or _UNSAFE.search(recipient):
            raise Rejected(f"refusing an unsafe address {recipient!r}", bounce=False)
        try:
            # Addresses were validated on the way in; smtplib's mail()/rcpt() would
            # re-parse them with email.utils on every message.
            conn.putcmd("mail", f"FROM:<{sender}>")
            code, resp = conn.getreply()
            if code != 250:
                self._fail("MAIL FROM", code, resp, fatal_5xx=True)
            conn.putcmd("rcpt", f"TO:<{recipient}>")
            code, resp = conn.getreply()
            if code not in (250, 251):
                # RFC 5321 4.5.3.1.10: treat 552 to RCPT as the temporary 452.
                self._fail("RCPT TO", code, resp, bounce=code != 552)
            conn.putcmd("data")
            code, resp = conn.getreply()
            if code != 354:
                self._fail("DATA", code, resp)
            conn.send(payload)
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            raise Temporary(f"connection lost: {self._scrub(str(exc))}", reconnect=True) from None
        try:
            claimed = claim()
        except BaseException:
            self.drop()  # never finish a message the ledger could not record
            raise
        if not claimed:
            self.drop()
            raise Abandoned()
        # From here on the ledger says "sending".
        if self._peer_spoke():
            self.drop()
            raise Temporary("server closed or spoke during DATA", reconnect=True, claimed=True)
        try:
            conn.send(b".\r\n")
        except smtplib.SMTPServerDisconnected as exc:
            # The 3-byte end-of-data could not be written, so the server cannot have it.
            self.drop()
            raise Temporary(
                f"connection lost before end-of-data: {self._scrub(str(exc))}", claimed=True
            ) from None
        sock = conn.sock
        if sock is not None:
            sock.settimeout(self.cfg.timeout * FINAL_REPLY_FACTOR)
        try:
            code, resp = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            raise Uncertain(f"no reply to end-of-data ({self._scrub(str(exc))})") from None
        if conn.sock is not None:
            conn.sock.settimeout(self.cfg.timeout)
        if code == 250:
            return _reply(code, resp, self._secrets)
        if 400 <= code < 500:
            if code == 421:
                self.drop()
            raise Temporary(
                f"end of data: {_reply(code, resp, self._secrets)}",
                claimed=True,
                refused=code != 421,
            )
        if 500 <= code < 600:
            text = _reply(code, resp, self._secrets)
            # Only a "bad destination mailbox" (5.1.x) says the address is dead.
            raise Rejected(f"end of data: {text}", bounce=text[4:].startswith("5.1."), claimed=True)
        self.drop()
        raise Uncertain(f"unexpected reply to end-of-data: {_reply(code, resp, self._secrets)}")

    def _fail(
        self, step: str, code: int, resp: bytes, *, fatal_5xx: bool = False, bounce: bool = False
    ) -> None:
        text = f"{step}: {_reply(code, resp, self._secrets)}"
        if code == 421 or code < 200:
            self.drop()
            raise Temporary(text, reconnect=True)
        self._rset()
        if 400 <= code < 500 or (step == "RCPT TO" and code == 552):
            raise Temporary(text, refused=True)
        if fatal_5xx:
            raise Fatal(f"{self.where} refused the sender: {text}; check smtp.from")
        raise Rejected(text, bounce=bounce)


class RateLimiter:
    """Space messages evenly to at most `rate` per second across all threads (0 = no limit)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> None:
        """Wait for the next send slot (or until `stop` is set)."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            stop.wait(slot - now)
