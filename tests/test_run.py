"""`digest run` for real: feeds on a local HTTP server, mail to a local SMTP server.

The daemon runs as a real process (signals, a second daemon, a restart) or, where
the test needs to look inside, in a thread of this one. Send times are "HH:MM:SS" a
few seconds ahead, so each test waits seconds, not minutes.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.config import Config
from digest.config.load import load_config
from digest.errors import EmptyIssueError, LockHeldError
from digest.schedule import daemon, daily
from digest.store import Store, locks
from tests.helpers import add_readers, stored_issue
from tests.httpserver import LocalHTTPServer, Response
from tests.smtpserver import LocalSMTPServer

ROOT = Path(__file__).resolve().parent.parent
ZONE = "Europe/Berlin"
LAUNCH = "from digest.cli import cli; cli(prog_name='digest')"

PARAGRAPHS = [
    "The city council approved a new budget on Tuesday that doubles spending on public "
    "transport over the next five years, the mayor's office said.",
    "The plan adds twelve bus lines, extends two tram routes to the northern suburbs and "
    "funds a night service that residents have requested for a decade.",
    "Council members voted 31 to 9 in favour after a debate that lasted more than six hours.",
    "Opposition members argued that the plan relies on optimistic forecasts of ticket revenue "
    "and could force cuts elsewhere if the economy slows.",
]
STORIES = [
    ("budget", "Council doubles transport budget"),
    ("trams", "Tram lines to reach the northern suburbs"),
    ("night", "Night buses start next spring"),
]


def page(title: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in [f"{title}: the details.", *PARAGRAPHS])
    return (
        f"<html><head><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    )


def serve_feed(server: LocalHTTPServer, stories: list[tuple[str, str]]) -> None:
    when = format_datetime(datetime.now(tz=UTC) - timedelta(hours=1))
    items = "".join(
        f"<item><title>{title}</title><link>{server.url('/' + slug)}</link><guid>{slug}</guid>"
        f"<pubDate>{when}</pubDate><description>About {title}.</description></item>"
        for slug, title in stories
    )
    server.routes["/feed"] = Response(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>City</title>{items}'
        "</channel></rss>",
        content_type="application/rss+xml",
    )
    for slug, title in stories:
        server.routes["/" + slug] = Response(page(title))


def write_config(
    tmp_path: Path,
    http: LocalHTTPServer,
    smtp: LocalSMTPServer,
    *,
    send_at: datetime,
    grace_minutes: float = 1.0,
    collect_seconds: float = 3.0,
    extra: str = "",
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[site]
name = "Test Daily"
url = "https://news.example.com"
timezone = "{ZONE}"

[[sources]]
name = "City"
url = "{http.url("/feed")}"

[store]
url = "sqlite:///digest.db"

[collect]
timeout = 5.0
deadline = 10.0

[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "Test Daily <digest@news.example.com>"
timeout = 5.0
backoff = 0.05
connections = 1
max_attempts = 2

[schedule]
send_at = "{send_at.astimezone(ZoneInfo(ZONE)):%H:%M:%S}"
collect_every_minutes = {collect_seconds / 60}
misfire_grace_minutes = {grace_minutes}
{extra}
""",
        encoding="utf-8",
    )
    return path


def soon(seconds: float) -> datetime:
    """Return a whole second at least `seconds` from now (send_at has 1 s resolution)."""
    t = datetime.now(tz=UTC) + timedelta(seconds=seconds)
    return t.replace(microsecond=0) + timedelta(seconds=1)


def wait_for(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)


def ledger(store: Store) -> Counter[str]:
    issue = store.last_issue()
    return Counter(store.ledger.delivery_counts(issue.id)) if issue else Counter()


@pytest.fixture
def smtp() -> Iterator[LocalSMTPServer]:
    with LocalSMTPServer() as server:
        yield server


@pytest.fixture
def site(http_server: LocalHTTPServer) -> LocalHTTPServer:
    serve_feed(http_server, STORIES)
    return http_server


# -- the lock -------------------------------------------------------------------------


def test_lock_refuses_a_live_holder_and_takes_over_stale_ones(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    t0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    host = "host-a"
    first = locks.acquire(store, "run", holder="a", now=t0, stale_after=60, host=host)
    assert first.pid == os.getpid()
    with pytest.raises(LockHeldError, match=r"already running .*pid \d+ on host-a"):
        locks.acquire(store, "run", holder="b", now=t0, stale_after=60, host=host)
    assert locks.heartbeat(store, "run", "a", now=t0 + timedelta(seconds=50))
    # 50 s later the heartbeat is 0 s old: still held.
    with pytest.raises(LockHeldError):
        locks.acquire(store, "run", holder="b", now=t0 + timedelta(seconds=100), stale_after=60)
    # Silent for more than stale_after: taken over, and the old holder learns it lost it.
    late = t0 + timedelta(seconds=111)
    taken = locks.acquire(store, "run", holder="b", now=late, stale_after=60, host="host-b")
    assert (taken.holder, taken.host) == ("b", "host-b")
    assert not locks.heartbeat(store, "run", "a", now=late)
    assert not locks.release(store, "run", "a")
    assert locks.read_lock(store, "run") == taken
    assert locks.release(store, "run", "b")
    assert locks.read_lock(store, "run") is None
    store.close()


def test_lock_of_a_crashed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: the pid is free
    now = datetime.now(tz=UTC)
    host = "this-host"
    locks.acquire(store, "run", holder="old", now=now, stale_after=60, host=host, pid=dead.pid)
    taken = locks.acquire(store, "run", holder="new", now=now, stale_after=60, host=host)
    assert taken.holder == "new" and taken.pid == os.getpid()
    # A live pid on another host is judged by its heartbeat only.
    with pytest.raises(LockHeldError):
        locks.acquire(store, "run", holder="x", now=now, stale_after=60, host="other-host")
    store.close()


# -- a real daemon process ------------------------------------------------------------


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--config", str(config), "run"],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )


def test_daemon_sends_once_stops_cleanly_and_a_restart_never_resends(
    tmp_path: Path, site: LocalHTTPServer, smtp: LocalSMTPServer
) -> None:
    # The first message goes out, the rest wait at the server until the daemon was told to
    # stop: the stop lands in the middle of the send however slowly this machine runs.
    smtp.handler.hold_after = 1
    path = write_config(tmp_path, site, smtp, send_at=soon(4.5), collect_seconds=2)
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 6, named=True, now=datetime.now(tz=UTC))
    log_a, log_b, log_c = (tmp_path / f"{name}.log" for name in "abc")
    a = start_daemon(path, log_a)
    try:
        wait_for(lambda: "digest run started" in log_a.read_text(), 120, "daemon A to start")
        b = start_daemon(path, log_b)  # a second daemon on the same database
        assert b.wait(timeout=120) == 1  # refused while A runs
        wait_for(lambda: len(smtp.messages) >= 1, 120, "the first message")
        a.send_signal(signal.SIGTERM)  # mid-send: the message in flight is finished
        wait_for(lambda: "stop requested" in log_a.read_text(), 120, "A's send to stop")
        smtp.handler.release.set()
        assert a.wait(timeout=120) == 0
    finally:
        for proc in (a, b):
            proc.kill()
            proc.wait()
    (refusal,) = log_b.read_text().splitlines()
    assert "error: another `digest run` is already running" in refusal
    assert f"pid {a.pid} on " in refusal
    text = log_a.read_text()
    assert "issue 2026" in text and " created: 3 article(s)" in text
    assert "stopping: finishing the delivery in flight" in text and "digest run stopped" in text
    counts = ledger(store)
    assert counts["sending"] == 0  # nothing left uncertain
    assert counts["sent"] == len(smtp.messages) >= 1
    assert counts["sent"] + counts["pending"] == 6
    assert counts["pending"] > 0  # the stop cut the send short; the restart must finish it

    # A restart later the same day finishes what is pending and resends nothing.
    feed_hits = sum(1 for p, _ in site.requests if p == "/feed")
    c = start_daemon(path, log_c)
    try:
        wait_for(lambda: ledger(store)["sent"] == 6, 120, "the restart to finish the send")
        wait_for(
            lambda: sum(1 for p, _ in site.requests if p == "/feed") >= feed_hits + 2,
            120,
            "two more collections",
        )
        c.send_signal(signal.SIGTERM)
        assert c.wait(timeout=120) == 0
    finally:
        c.kill()
        c.wait()
    recipients = smtp.handler.recipients()
    assert sorted(recipients) == sorted(f"reader{i}@example.org" for i in range(6))
    assert len(store.list_issues()) == 1
    assert "collected City" in log_c.read_text()
    store.close()


# -- the daemon in a thread: missed sends ---------------------------------------------


class Daemon:
    """run_daemon in a thread of this process, started and stopped by the test."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store.open(config.store.url)
        self.stop = threading.Event()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            daemon.run_daemon(self.config, self.store, stop=self.stop, ready=self.started.set)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Daemon:
        self.thread.start()
        assert self.started.wait(60), self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)
        self.store.close()
        assert not self.thread.is_alive() and self.error is None


@pytest.mark.parametrize(
    ("send_in", "down", "grace_minutes", "sent"),
    [(1, False, 1.0, 2), (1, True, 1.0, 2), (1, True, 1 / 60, 0), (-4, False, 1.0, 2)],
    ids=["on-time", "restart-within-grace", "restart-after-grace", "first-start-within-grace"],
)
def test_send_goes_out_on_time_or_late_within_grace_only(
    tmp_path: Path,
    site: LocalHTTPServer,
    smtp: LocalSMTPServer,
    caplog: pytest.LogCaptureFixture,
    send_in: float,
    down: bool,
    grace_minutes: float,
    sent: int,
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    send_at = soon(send_in)
    path = write_config(
        tmp_path, site, smtp, send_at=send_at, grace_minutes=grace_minutes, collect_seconds=60
    )
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 2, named=True, now=datetime.now(tz=UTC))
    store.close()
    if down:
        with Daemon(config):
            pass  # stopped before the send: the job store remembers it is due at send_at
        wait_for(lambda: datetime.now(tz=UTC) > send_at + timedelta(seconds=1.5), 60, "send time")
    with Daemon(config) as running:
        if sent:
            wait_for(lambda: len(smtp.messages) == sent, 120, "the send")
        else:
            wait_for(lambda: "was missed by" in caplog.text, 60, "the missed-send log line")
        time.sleep(0.5)
        assert sorted(smtp.handler.recipients()) == [f"reader{i}@example.org" for i in range(sent)]
        assert len(running.store.list_issues()) == (1 if sent else 0)
    # A first start after the send time has no stored run to catch up: due_send finds it.
    assert ("has not gone out; sending now" in caplog.text) == (send_in < 0)
    missed = [
        r.getMessage()
        for r in caplog.records
        if r.name == "digest.schedule.daemon" and "was missed by" in r.getMessage()
    ]
    if sent:
        assert missed == []
    else:
        (line,) = missed
        assert line.startswith(f"the send due at {daemon.local(config, send_at)} was missed by")
        assert re.search(r"missed by [\d.]+ s, more than the 1 s grace period; skipped", line)


# -- the minimum-content rule -------------------------------------------------------


@pytest.mark.parametrize("quiet_day", ["skip", "send"])
def test_quiet_day_is_skipped_or_sent_short(
    tmp_path: Path,
    site: LocalHTTPServer,
    smtp: LocalSMTPServer,
    caplog: pytest.LogCaptureFixture,
    quiet_day: str,
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    path = write_config(
        tmp_path,
        site,
        smtp,
        send_at=soon(3600),
        extra=f'quiet_day = "{quiet_day}"\n[compose]\nmin_articles = 5\n',
    )
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 1, named=True, now=datetime.now(tz=UTC))
    report = daily.send_today(config, store, now=datetime.now(tz=UTC))
    if quiet_day == "skip":
        assert report is None and store.list_issues() == [] and smtp.messages == []
        assert "quiet day" in caplog.text and "3 new article(s), fewer than" in caplog.text
    else:
        assert report is not None and report.sent == 1 and len(smtp.messages) == 1
        (issue,) = store.list_issues()
        assert len(issue.article_ids) == 3
        assert "a short issue with 3 article(s)" in caplog.text
    store.close()


@pytest.mark.parametrize("quiet_day", ["skip", "send"])
def test_digest_send_follows_the_same_quiet_day_rule(
    tmp_path: Path, site: LocalHTTPServer, smtp: LocalSMTPServer, quiet_day: str
) -> None:
    """`digest send` by hand decides a quiet day exactly as the daemon does."""
    path = write_config(
        tmp_path,
        site,
        smtp,
        send_at=soon(3600),
        extra=f'quiet_day = "{quiet_day}"\n[compose]\nmin_articles = 5\n',
    )
    store = Store.open(load_config(path).store.url)
    add_readers(store, 1, named=True, now=datetime.now(tz=UTC))
    done = CliRunner().invoke(cli, ["--config", str(path), "send"])
    if quiet_day == "skip":
        assert done.exit_code == EmptyIssueError.exit_code, done.output
        assert "nothing to send today" in done.stderr
        assert store.list_issues() == [] and smtp.messages == []
    else:
        assert done.exit_code == 0, done.output
        (issue,) = store.list_issues()
        assert len(issue.article_ids) == 3 and len(smtp.messages) == 1
    store.close()


def test_collection_retries_pending_deliveries(
    tmp_path: Path, site: LocalHTTPServer, smtp: LocalSMTPServer
) -> None:
    path = write_config(tmp_path, site, smtp, send_at=soon(3600), extra="")
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 2, named=True, now=datetime.now(tz=UTC))
    smtp.handler.data_replies = ["451 4.3.0 try later"] * 20  # the mail server is struggling
    now = datetime.now(tz=UTC)
    first = daily.send_today(config, store, now=now)
    assert first is not None and first.to_retry == 2 and smtp.messages == []
    smtp.handler.data_replies = []
    again = daily.retry_pending(config, store, now=now + timedelta(minutes=30))
    assert again is not None and again.sent == 2 and again.to_retry == 0
    assert sorted(smtp.handler.recipients()) == ["reader0@example.org", "reader1@example.org"]
    assert daily.retry_pending(config, store, now=now + timedelta(minutes=60)) is None
    store.close()


def test_the_scheduled_send_waits_for_a_running_digest_send(
    tmp_path: Path, site: LocalHTTPServer, smtp: LocalSMTPServer
) -> None:
    path = write_config(tmp_path, site, smtp, send_at=soon(3600))
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 2, named=True, now=datetime.now(tz=UTC))
    rt = daemon._runtime(str(path))
    try:
        # A `digest send` (this live process) holds the send lock.
        now = datetime.now(tz=UTC)
        locks.acquire(store, locks.SEND_LOCK, holder="by-hand", now=now, stale_after=60)
        job = threading.Thread(target=daemon.send_job, args=(str(path),))
        job.start()
        job.join(1.5)
        assert job.is_alive(), "the scheduled send should wait for the running send"
        assert smtp.handler.recipients() == []
        assert store.issue_for_date(pipeline.today(config, now)) is None
        assert locks.release(store, locks.SEND_LOCK, "by-hand")
        job.join(30)
        assert not job.is_alive()
        assert sorted(smtp.handler.recipients()) == ["reader0@example.org", "reader1@example.org"]

        # Stopping the daemon while it waits gives the wait up; nothing is sent.
        store.add_subscriber("late@example.org", "", now=now)
        locks.acquire(store, locks.SEND_LOCK, holder="by-hand", now=now, stale_after=60)
        job = threading.Thread(target=daemon.send_job, args=(str(path),))
        job.start()
        job.join(0.5)
        assert job.is_alive()
        rt.stop.set()
        job.join(5)
        assert not job.is_alive()
        assert len(smtp.handler.recipients()) == 2
    finally:
        with daemon._RUNTIMES_LOCK:
            daemon._RUNTIMES.pop(str(path), None)
        rt.store.close()
        store.close()


# -- digest status --------------------------------------------------------------------


def test_status_shows_daemon_schedule_issues_and_failing_sources(
    tmp_path: Path, site: LocalHTTPServer, smtp: LocalSMTPServer
) -> None:
    send_at = soon(3600)
    path = write_config(tmp_path, site, smtp, send_at=send_at, collect_seconds=1800)
    config = load_config(path)
    store = Store.open(config.store.url)
    add_readers(store, 3, named=True, now=datetime.now(tz=UTC))
    now = datetime.now(tz=UTC)
    issue = stored_issue(
        store, date="2026-11-24", created_at=now - timedelta(days=1), subject="Yesterday's news"
    )
    store.ledger.ensure_deliveries(issue.id, now=now)
    subs = store.list_subscribers()
    for sub, status in zip(subs[:2], ("sent", "failed"), strict=True):
        assert sub.id is not None
        store.ledger.finish_delivery(issue.id, sub.id, status=status, expect="pending", now=now)
    store.set_subscriber_status(email=subs[2].email, status="unsubscribed", now=now)
    for _ in range(3):
        store.record_source_result("City", "u", now=now - timedelta(hours=2), error="HTTP 503")
    runner = CliRunner()

    result = runner.invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "daemon:         not running" in out
    assert "next collect:   - (only while `digest run` runs)" in out
    assert "subscribers:    2 active" in out
    assert "2026-11-24" in out and "sent 1, failed 1, pending 1" in out and "Yesterday" in out
    assert "sending now:" not in out
    since = daemon.local(config, now - timedelta(hours=2))
    assert f"City: since {since}, 3 times in a row: HTTP 503" in out

    scheduler = daemon.build_scheduler(store)  # what a running daemon leaves behind
    scheduler.start(paused=True)
    daemon.sync_jobs(scheduler, config)
    nxt = scheduler.get_job(daemon.COLLECT_JOB).next_run_time
    scheduler.shutdown(wait=False)
    locks.acquire(store, daemon.RUN_LOCK, holder="me", now=now, stale_after=60)
    out = runner.invoke(cli, ["--config", str(path), "status"]).output
    assert f"daemon:         running (pid {os.getpid()} on " in out
    assert f"next collect:   {daemon.local(config, nxt)} {ZONE} (every 30 min)" in out
    send = daemon.local(config, send_at)
    assert f"next send:      {send} {ZONE} (every day at " in out
    assert "sending now:" not in out

    # A worker holding a live lease on the newest issue is listed; an expired one is not.
    assert len(store.ledger.claim_batch(issue.id, worker="w1:42", size=5, lease=600, now=now)) == 1
    out = runner.invoke(cli, ["--config", str(path), "status"]).output
    until = daemon.local(config, now + timedelta(seconds=600))[-5:]
    assert f"sending now:\n  w1:42: 1 delivery(ies) leased until {until} {ZONE}" in out
    assert store.ledger.live_leases(issue.id, now=now + timedelta(seconds=601)) == {}
    store.close()
