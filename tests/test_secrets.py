"""The SMTP password never reaches any output, whatever a hostile mail server answers.

The server here is a small scripted one (plain sockets): it quotes back everything the
client sent during AUTH (base64 and decoded), and once logged in it puts the password
in its other replies too. `digest send` runs as a real process with -vv, so every log
line counts as output.
"""

from __future__ import annotations

import base64
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.mail.smtp import WITHHELD, Secrets
from digest.store import Store
from tests import configfile
from tests.helpers import stored_issue

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
USER = "mailer@news.example.com"
PASSWORD = "Tr0ub4dor&3-horse"


def forms(password: str, user: str = USER) -> list[str]:
    """The password as it travels in AUTH PLAIN and AUTH LOGIN."""
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
    ]


class HostileSMTP(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP; `mode` says how it misbehaves.

    echo-auth   refuses every login, quoting the client's AUTH lines, decoded too
    echo-after  accepts the login, then quotes the password in its greeting and its
                refusals (a 450 at RCPT, so the client retries and logs each)
    no-auth     offers no AUTH at all
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, password: str) -> None:
        self.mode = mode
        self.password = password
        self.received: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __enter__(self) -> HostileSMTP:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _decoded(line: str) -> str:
    try:
        return base64.b64decode(line.split()[-1]).decode("utf-8", "replace").replace("\0", " ")
    except ValueError:
        return line


class _Handler(socketserver.StreamRequestHandler):
    server: HostileSMTP

    def say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def line(self) -> str | None:
        raw = self.rfile.readline()
        if not raw:
            return None
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.server.received.append(text)
        return text

    def handle(self) -> None:
        srv = self.server
        echo_after = srv.mode == "echo-after"
        self.say(f"220 hostile ESMTP {srv.password if echo_after else ''}")
        while (cmd := self.line()) is not None:
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                if srv.mode == "no-auth":
                    self.say("250 hostile")
                else:
                    self.say("250-hostile")
                    self.say("250 AUTH PLAIN LOGIN")
            elif verb == "AUTH":
                self.auth(cmd)
            elif verb == "MAIL":
                self.say(f"250 sender ok {srv.password}" if echo_after else "250 ok")
            elif verb == "RCPT":
                self.say(f"450 4.2.0 {srv.password} {forms(srv.password)[1]} try later")
            elif verb == "RSET":
                self.say(f"250 reset {srv.password}")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say(f"502 {srv.password} unknown")

    def auth(self, cmd: str) -> None:
        parts = cmd.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        heard = [cmd]
        if mech == "PLAIN" and len(parts) == 2:
            self.say("334 ")
            heard.append(self.line() or "")
        elif mech == "LOGIN":
            self.say("334 VXNlcm5hbWU6")
            heard.append(self.line() or "")
            self.say("334 UGFzc3dvcmQ6")
            heard.append(self.line() or "")
        if self.server.mode == "echo-after":
            self.say("235 2.7.0 ok")
            return
        quoted = " ".join(heard + [_decoded(h) for h in heard])
        self.say(f"535-5.7.8 credentials rejected: {quoted}")
        self.say(f"535 5.7.8 you sent {quoted}")


def run_digest(tmp_path: Path, config: Path, *args: str, password: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOSTILE_PASSWORD": password, "COLUMNS": "300"}
    res = subprocess.run(
        [sys.executable, "-m", "digest", "-vv", "--config", str(config), *args],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    return res.stdout.decode("utf-8", "replace") + res.stderr.decode("utf-8", "replace")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Path]:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    store.add_subscriber("reader@example.org", now=NOW)
    store.close()
    yield tmp_path


def write_config(tmp_path: Path, port: int, **smtp: object) -> Path:
    return configfile.write_config(
        tmp_path,
        smtp_port=port,
        smtp={
            "username": USER,
            "password_env": "HOSTILE_PASSWORD",
            "connections": 1,
            "backoff": 0.01,
            "max_attempts": 3,
            "timeout": 10.0,
            **smtp,
        },
        extra='\n[compose]\nmin_articles = 0\n\n[schedule]\nquiet_day = "send"\n',
    )


def assert_no_password(output: str, password: str = PASSWORD) -> None:
    for form in forms(password):
        assert form not in output, (form, output)
    assert base64.b64encode(password.encode()).decode().rstrip("=")[:12] not in output


def make_issue(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    stored_issue(store)
    store.close()


def test_a_server_quoting_the_auth_exchange_never_gets_it_printed(setup: Path) -> None:
    with HostileSMTP("echo-auth", PASSWORD) as server:
        config = write_config(setup, server.port)
        make_issue(setup)
        out = run_digest(setup, config, "send", "--date", "2026-11-25", password=PASSWORD)
        # The client really sent it both ways (PLAIN, then LOGIN) and the server quoted it.
        assert any(forms(PASSWORD)[2] in line for line in server.received)
        assert any(forms(PASSWORD)[1] in line for line in server.received)
    assert "refused the login" in out and "reply 535" in out, out
    assert_no_password(out)


def test_a_server_quoting_the_password_after_login_never_gets_it_printed(setup: Path) -> None:
    with HostileSMTP("echo-after", PASSWORD) as server:
        config = write_config(setup, server.port)
        make_issue(setup)
        out = run_digest(setup, config, "send", "--date", "2026-11-25", password=PASSWORD)
        out += run_digest(setup, config, "status", password=PASSWORD)
        out += run_digest(setup, config, "send", "--dry-run", password=PASSWORD)
    assert WITHHELD in out and "reader@example.org" in out, out
    assert_no_password(out)


def test_a_one_letter_password_does_not_mangle_our_own_messages(setup: Path) -> None:
    """Masking "x" everywhere once printed "SMTP AUTH e***tension", giving the password away."""
    with HostileSMTP("no-auth", "x") as server:
        config = write_config(setup, server.port)
        make_issue(setup)
        out = run_digest(setup, config, "send", "--date", "2026-11-25", password="x")
    assert "does not offer SMTP AUTH" in out, out
    assert "***" not in out


def test_secrets_withhold_every_form_but_leave_other_text() -> None:
    secrets = Secrets(USER, PASSWORD)
    for form in forms(PASSWORD):
        assert secrets.clean(f"550 no {form} here") == WITHHELD
    # The password's base64 at another offset inside a longer AUTH string.
    shifted = base64.b64encode(b"ab" + PASSWORD.encode() + b"cd").decode()
    assert secrets.contains(shifted)
    assert secrets.clean("550 5.1.1 no such user") == "550 5.1.1 no such user"
    assert Secrets("", "").clean("anything") == "anything"
