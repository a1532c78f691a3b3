"""A hostile world, mail side: a mail server that goes away, a read-only store, two senders.

All against real local servers (aiosmtpd on 127.0.0.1), real SQLite files and, where
processes matter, real `digest send` subprocesses. The rule each time: every active
subscriber ends up with exactly one copy (nothing lost, nothing doubled), and a
problem that must stop the send stops it before the first message leaves.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import IO, Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config
from digest.errors import StoreError
from digest.mail.deliver import send_issue
from digest.store import Store
from tests import configfile
from tests.helpers import NOW, import_readers, stored_issue
from tests.httpserver import LocalHTTPServer
from tests.smtpserver import LocalSMTPServer, Recorder, _Controller
from tests.test_deliver import config as deliver_config

ROOT = Path(__file__).resolve().parent.parent


def smtp_config(tmp_path: Path, port: int, **smtp: Any) -> Config:
    return deliver_config(tmp_path, port, **{"max_attempts": 8, **smtp})


# --- the mail server goes away in the middle of a 5,000-subscriber send -------------------


class GoingAway(Recorder):
    """Accepts mail until the count reaches the next of `down_at`, then answers 421 to all."""

    def __init__(self, down_at: list[int]) -> None:
        super().__init__()
        self.down_at = list(down_at)
        self.going_down = threading.Event()

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.going_down.is_set():
            return "421 4.3.2 service shutting down"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.going_down.is_set():
            return "421 4.3.2 service shutting down"
        reply = await super().handle_DATA(server, session, envelope)
        if self.down_at and len(self.messages) >= self.down_at[0]:
            self.down_at.pop(0)
            self.going_down.set()
        return reply


class Outages:
    """Take a LocalSMTPServer down each time its handler starts refusing; bring it back later.

    Down means down: the port is closed and connections are refused. It comes back on the
    same port with the same mailbox after the next of `down_for`: a number of seconds, or
    an event that the test sets (an outage that lasts as long as the test needs, however
    slow the machine).
    """

    def __init__(
        self, server: LocalSMTPServer, handler: GoingAway, down_for: list[float | threading.Event]
    ):
        self.server = server
        self.handler = handler
        self.down_for = list(down_for)
        self.went_down: list[int] = []  # messages accepted when each outage began
        self.back = [threading.Event() for _ in down_for]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for seconds, back in zip(self.down_for, self.back, strict=True):
            self.handler.going_down.wait()
            time.sleep(0.1)  # replies already on their way get out
            self.server.stop()
            self.went_down.append(len(self.handler.messages))
            if isinstance(seconds, threading.Event):
                seconds.wait(120)
            else:
                time.sleep(seconds)
            self.handler.going_down.clear()
            self.server.controller = _Controller(
                self.handler, hostname="127.0.0.1", port=self.server.port, enable_SMTPUTF8=False
            )
            self.server.start()
            back.set()


def exactly_once(server: LocalSMTPServer, emails: list[str]) -> None:
    received = Counter(server.handler.recipients())
    assert max(received.values()) == 1, received.most_common(3)  # nothing doubled
    assert set(received) == set(emails)  # nothing lost


N = 5000


def test_smtp_server_away_during_a_5000_subscriber_send(tmp_path: Path, store: Store) -> None:
    emails = import_readers(store, N)
    issue = stored_issue(store)
    handler = GoingAway(down_at=[N // 3, 2 * N // 3])
    server = LocalSMTPServer(handler=handler).start()
    # Reconnects wait 0.05, 0.1, 0.2 … 1.6 s: a send gives up on a server after ~3.2 s.
    # The first outage (0.6 s) spans several of those rounds and the same send resumes;
    # the second ("minutes") lasts until the send has given up: it ends with the rest
    # pending (exit code 3) and a later run, once the server is back, finishes.
    given_up = threading.Event()
    outages = Outages(server, handler, down_for=[0.6, given_up])
    cfg = smtp_config(tmp_path, server.port, max_attempts=7)
    try:
        first = send_issue(store, issue, cfg, now=NOW)
        given_up.set()
        assert len(outages.went_down) == 2 and outages.back[0].is_set()
        assert outages.went_down[0] == N // 3 and outages.went_down[1] >= 2 * N // 3
        assert first.sent == len(server.messages) == outages.went_down[1]
        assert (first.failed, first.uncertain, first.exit_code) == (0, 0, 3)
        assert first.sent + first.to_retry == N
        assert outages.back[1].wait(60)
        again = send_issue(store, issue, cfg, now=NOW + timedelta(minutes=5))
    finally:
        server.stop()
    assert (again.sent, again.already_sent, again.to_retry, again.uncertain) == (
        N - first.sent,
        first.sent,
        0,
        0,
    )
    assert again.exit_code == 0
    exactly_once(server, emails)
    assert store.ledger.delivery_counts(issue.id) == {"sent": N}
    # Whoever the 421s cut off was tried again; nobody needed more than a few tries.
    retried = [d for d in store.ledger.list_deliveries(issue.id) if d.attempts > 1]
    assert retried and max(d.attempts for d in retried) <= 3


# --- a read-only store: one clear error, before any mail leaves ---------------------------


def read_only_url(db: Path) -> str:
    """A SQLite URL that opens `db` read-only (chmod does not stop root; this does)."""
    return f"sqlite:///file:{db}?mode=ro&uri=true"


def test_read_only_store_stops_the_send_before_the_first_message(
    tmp_path: Path, store: Store
) -> None:
    import_readers(store, 5)
    issue = stored_issue(store)
    read_only = Store.open(read_only_url(tmp_path / "digest.db"))
    with LocalSMTPServer() as server:
        with pytest.raises(StoreError, match=r"is not writable \(attempt to write a readonly"):
            send_issue(read_only, issue, smtp_config(tmp_path, server.port), now=NOW)
        assert server.messages == [] and server.handler.transactions == 0
    read_only.close()
    assert store.ledger.list_deliveries(issue.id) == []  # nothing queued, nothing claimed


def write_config(tmp_path: Path, *, smtp_port: int | None, source: str, db: Path) -> Path:
    return configfile.write_config(
        tmp_path,
        store_url=f"sqlite:///{db}",
        source=source,
        source_name="Feed",
        source_keys={"fetch_pages": False},
        smtp_port=smtp_port,
        smtp={"connections": 1, "backoff": 0.05, "timeout": 30.0},
    )


def test_digest_send_on_a_read_only_store_prints_one_line_and_sends_nothing(
    tmp_path: Path, store: Store, http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_readers(store, 3)
    db = tmp_path / "digest.db"
    opened = Store.open

    def open_read_only(url: str, *, migrate: bool = True) -> Store:
        # The disk holding the store went read-only: every connection is read-only.
        assert url == f"sqlite:///{db}"
        return opened(read_only_url(db), migrate=migrate)

    monkeypatch.setattr(Store, "open", open_read_only)
    with LocalSMTPServer() as server:
        path = write_config(tmp_path, smtp_port=server.port, source=http_server.url("/feed"), db=db)
        result = CliRunner().invoke(cli, ["--config", str(path), "send"])
        assert server.messages == [] and server.handler.transactions == 0
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: the store ") and "is not writable" in line
    assert http_server.requests == []  # it stopped before collecting anything
    assert store.list_issues() == []


# --- two `digest send` processes started at the same moment -------------------------------


def feed_file(tmp_path: Path) -> Path:
    when = format_datetime(datetime.now(tz=UTC) - timedelta(hours=1))
    items = "".join(
        f"<item><title>Story {i}</title><link>https://news.example.com/{i}</link>"
        f"<pubDate>{when}</pubDate><description>Story {i} happened today. It matters."
        "</description></item>"
        for i in range(3)
    )
    path = tmp_path / "feed.xml"
    path.write_text(f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>")
    return path


class Gated(Recorder):
    """Holds every RCPT (before any ledger claim) until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await super().handle_RCPT(server, session, envelope, address, options)


class Drain:
    """Read a pipe to its end in a thread; `text()` is what arrived so far."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        self._pipe = pipe
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._pipe:
            self._chunks.append(line)

    def text(self) -> str:
        return b"".join(list(self._chunks)).decode()

    def close(self) -> None:
        self._thread.join(timeout=30)
        self._pipe.close()


def test_two_sends_started_together_one_sends_the_other_waits_no_duplicates(
    tmp_path: Path, store: Store
) -> None:
    n = 40
    emails = import_readers(store, n)
    gate = Gated()
    with LocalSMTPServer(handler=gate) as server:
        path = write_config(
            tmp_path,
            smtp_port=server.port,
            source=str(feed_file(tmp_path)),
            db=tmp_path / "digest.db",
        )
        command = [sys.executable, "-m", "digest", "--config", str(path), "send"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        streams = [Drain(p.stdout) for p in procs] + [Drain(p.stderr) for p in procs]
        # The first message is held at the server until the other process says it waits,
        # so the two runs surely overlap (however slowly this machine starts Python).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "waiting for it to finish" in d.text() for d in streams[2:]
        ):
            time.sleep(0.05)
        gate.gate.set()
        for proc in procs:
            proc.wait(timeout=120)
        for stream in streams:
            stream.close()
        received = Counter(server.handler.recipients())
    texts = [(streams[i].text(), streams[i + 2].text()) for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], texts
    assert received == Counter(emails)  # exactly one copy each
    (issue,) = store.list_issues()  # one issue, composed once
    summaries = sorted(out.strip().splitlines()[-1] for out, _ in texts)
    assert summaries == [
        f"{issue.date}: sent 0, already sent {n}, failed 0, to retry 0, uncertain 0, skipped 0",
        f"{issue.date}: sent {n}, already sent 0, failed 0, to retry 0, uncertain 0, skipped 0",
    ]
    waited = [err for _, err in texts if "another `digest send` is running" in err]
    assert len(waited) == 1, texts
    assert "waiting for it to finish" in waited[0] and "Traceback" not in waited[0]


# --- operator mistakes: one clear line, exit code 2 ---------------------------------------

GOOD = """
[site]
name = "The Daily Digest"
url = "https://news.example.com"
timezone = "Europe/Berlin"

[[sources]]
name = "Feed"
url = "{feed}"

[store]
url = "sqlite:///digest.db"

[collect]
timeout = 2.0
"""


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("timeout = 2.0", "timeout = 2.0\nretries = 3"), "collect.retries: unknown key"),
        (("timeout = 2.0", 'timeout = "fast"'), "collect.timeout: expected a number"),
        (('name = "Feed"', "name = 7"), "sources[0].name: expected a string"),
        (("Europe/Berlin", "Europe/Berlín"), "site.timezone: unknown time zone"),
        (('url = "{feed}"', 'url = "htps://news.example.com/feed"'), "sources[0].url:"),
        (('url = "{feed}"', 'url = "http//news.example.com/feed"'), "sources[0].url:"),
        (("[store]", "[stores]"), 'stores: unknown table; did you mean "store"?'),
    ],
)
def test_config_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, http_server: LocalHTTPServer, change: tuple[str, str], needle: str
) -> None:
    text = GOOD.replace(*change, 1).replace("{feed}", http_server.url("/feed"))
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    for command in (["send"], ["collect"], ["status"]):
        result = CliRunner().invoke(cli, ["--config", str(path), *command])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert needle in line and str(path) in line
    assert http_server.requests == []


def test_send_without_smtp_fails_before_collecting(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    path = write_config(
        tmp_path, smtp_port=None, source=http_server.url("/feed"), db=tmp_path / "digest.db"
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "send"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "[smtp] is missing" in line
    assert http_server.requests == []  # no feed fetched for a send that cannot happen
