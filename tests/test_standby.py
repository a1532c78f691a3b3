"""`digest run` on PostgreSQL: one leader, a standby that takes over when the leader dies.

Real daemon processes, a real PostgreSQL server, feeds on a local HTTP server and mail
to a local SMTP server. The standby's config has a send time a few seconds past, so
once it takes over it finds that send missed (within the grace period) and makes it:
proof that it runs the jobs, from the job store kept in PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.schedule import daemon
from digest.store import Store
from tests.helpers import add_readers
from tests.httpserver import LocalHTTPServer
from tests.smtpserver import LocalSMTPServer
from tests.test_run import LAUNCH, ROOT, STORIES, serve_feed, wait_for, write_config


def config_for(
    tmp: Path, url: str, http: LocalHTTPServer, smtp: LocalSMTPServer, send_at: datetime
) -> Path:
    tmp.mkdir()
    path = write_config(tmp, http, smtp, send_at=send_at, grace_minutes=2, collect_seconds=60)
    path.write_text(path.read_text().replace('url = "sqlite:///digest.db"', f'url = "{url}"'))
    return path


def start_daemon(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--config", str(config), "run", *extra],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )


def test_the_standby_takes_over_when_the_leader_dies(
    tmp_path: Path, http_server: LocalHTTPServer, pg_url: str
) -> None:
    serve_feed(http_server, STORIES)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    with LocalSMTPServer() as smtp:
        # The leader sends in hours; the standby, once in charge, at once (a send it missed).
        leader_cfg = config_for(tmp_path / "a", pg_url, http_server, smtp, now + timedelta(hours=3))
        standby_cfg = config_for(
            tmp_path / "b", pg_url, http_server, smtp, now - timedelta(seconds=5)
        )
        store = Store.open(pg_url)
        add_readers(store, 5, now=now)
        log_a, log_b, log_c = (tmp_path / f"{n}.log" for n in "abc")
        leader = start_daemon(leader_cfg, log_a)
        standby: subprocess.Popen[bytes] | None = None
        try:
            wait_for(lambda: "digest run started" in log_a.read_text(), 30, "the leader")
            standby = start_daemon(standby_cfg, log_b, "--standby")
            wait_for(lambda: "waiting to take over" in log_b.read_text(), 30, "the standby")
            # Without --standby a second daemon still refuses at once.
            third = start_daemon(leader_cfg, log_c)
            assert third.wait(timeout=120) == 1
            (refusal,) = log_c.read_text().splitlines()
            assert "error: another `digest run` is already running" in refusal
            assert f"pid {leader.pid} on " in refusal and "--standby" in refusal
            assert smtp.messages == []

            leader.send_signal(signal.SIGKILL)
            leader.wait(timeout=60)
            killed = time.monotonic()
            wait_for(lambda: "digest run started" in log_b.read_text(), 60, "the takeover")
            took = time.monotonic() - killed
            wait_for(lambda: len(smtp.messages) >= 5, 30, "the standby's send")
            time.sleep(0.5)  # nothing more may come
            jobs = daemon.next_run_times(store)
            standby.send_signal(signal.SIGTERM)
            assert standby.wait(timeout=120) == 0
        finally:
            for proc in (leader, standby):
                if proc is None:
                    continue
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        received = Counter(smtp.handler.recipients())
    text = log_b.read_text()
    assert took < 10, text  # polls every 2 s; "within a minute" with room to spare
    assert "the leading `digest run` is gone; taking over" in text
    assert received == Counter(f"reader{i}@example.org" for i in range(5))
    assert set(jobs) == {daemon.COLLECT_JOB, daemon.SEND_JOB, daemon.DUE_JOB}  # in PostgreSQL
    assert jobs[daemon.SEND_JOB] > now + timedelta(hours=12)  # the standby's time, tomorrow
    issue = store.last_issue()
    assert issue is not None and store.ledger.delivery_counts(issue.id) == {"sent": 5}
    store.close()
