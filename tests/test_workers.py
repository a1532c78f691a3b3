"""`digest worker` processes on a real PostgreSQL server and a real local SMTP server.

One worker is SIGKILLed in the middle of its batch (the server has the message it
was sending, its other claims are unsent); two more drain the issue concurrently and
take over the dead one's claims when its lease runs out. Everyone gets exactly one
copy; the message in flight at the kill is reported uncertain, never resent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config.load import load_config
from digest.mail import workers
from digest.mail.claims import Lease
from digest.mail.report import SendReport
from digest.store import Store, StoredIssue
from tests import configfile
from tests.helpers import import_readers, stored_issue
from tests.smtpserver import LocalSMTPServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(tz=UTC)
DATE = "2026-11-25"


def write_config(tmp_path: Path, url: str, port: int, connections: int = 2) -> Path:
    return configfile.write_config(
        tmp_path,
        store_url=url,
        smtp_port=port,
        smtp={"connections": connections, "backoff": 0.05, "timeout": 5.0},
    )


def setup_issue(url: str, n: int) -> tuple[Store, StoredIssue]:
    store = Store.open(url)
    import_readers(store, n, now=NOW, address="reader{i:05d}@example.org")
    return store, stored_issue(store, date=DATE, created_at=NOW)


def worker(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "worker", "--date", DATE, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_two_workers_and_a_killed_one_deliver_exactly_one_copy_each(
    pg_url: str, tmp_path: Path
) -> None:
    n = 5000
    store, issue = setup_issue(pg_url, n)
    with LocalSMTPServer() as server:
        config = write_config(tmp_path, pg_url, server.port, connections=1)
        doomed = worker(config, "--batch", "200", "--lease", "3")
        server.handler.kill_at = (50, doomed.pid)  # SIGKILL while it awaits the 50th reply
        doomed.communicate(timeout=60)
        assert doomed.returncode == -9
        server.handler.kill_at = None
        assert store.ledger.delivery_counts(issue.id) == {
            "sent": 49,
            "sending": 1,
            "pending": n - 50,
        }

        config = write_config(tmp_path, pg_url, server.port, connections=2)
        started = time.monotonic()
        pair = [worker(config, "--batch", "100", "--lease", "3") for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0].decode() for p in pair]
        elapsed = time.monotonic() - started
        received = Counter(server.handler.recipients())

    # Exactly one copy each: the message in flight at the kill had reached the server.
    assert received == Counter(f"reader{i:05d}@example.org" for i in range(n))
    assert store.ledger.delivery_counts(issue.id) == {"sent": n - 1, "sending": 1}
    (uncertain,) = store.ledger.list_deliveries(issue.id, "sending")
    assert uncertain.email == "reader00049@example.org"
    for proc, out in zip(pair, outputs, strict=True):
        assert proc.returncode == 4, out  # done; one delivery is flagged uncertain
        assert "uncertain 1" in out
    claims = store.ledger.claims(issue.id)
    dead = [w for w in claims if f":{doomed.pid}:" in w]
    assert len(dead) == 1 and claims[dead[0]] == 50  # its 150 unsent claims were taken over
    survivors = sorted(n for w, n in claims.items() if w != dead[0])
    assert len(survivors) == 2 and sum(survivors) == n - 50
    assert survivors[0] > (n - 50) // 10, claims  # both really worked, concurrently
    assert elapsed < 90
    print(f"two workers: {n - 50} messages in {elapsed:.1f} s")
    store.close()


def test_send_with_local_workers_delivers_once_each(pg_url: str, tmp_path: Path) -> None:
    n = 300
    store, issue = setup_issue(pg_url, n)
    with LocalSMTPServer() as server:
        # Slow enough that the helpers, which take seconds to start, find work left.
        server.handler.delay = 0.02
        config = write_config(tmp_path, pg_url, server.port, connections=1)
        proc = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), "send", "--date", DATE]
            + ["--workers", "2"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=120,
        )
        received = Counter(server.handler.recipients())
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    assert f"{DATE}: sent {n}, already sent 0, failed 0, to retry 0, uncertain 0" in out
    assert received == Counter(f"reader{i:05d}@example.org" for i in range(n))
    claims = store.ledger.claims(issue.id)
    assert len(claims) >= 2 and sum(claims.values()) == n, claims
    store.close()


@pytest.mark.parametrize("args", [["worker"], ["send", "--workers", "2"], ["run", "--standby"]])
def test_workers_and_standbys_need_postgresql(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 25)
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 1
    assert "needs a PostgreSQL store" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no traceback


def test_a_following_worker_delivers_each_new_issue_then_stops_on_request(
    pg_url: str, tmp_path: Path
) -> None:
    store = Store.open(pg_url)
    with LocalSMTPServer() as server:
        config = load_config(write_config(tmp_path, pg_url, server.port))
        stop = threading.Event()
        reports: list[SendReport] = []
        follower = threading.Thread(
            target=workers.work,
            args=(config, store),
            kwargs={
                "lease": Lease(worker="follower", batch=10),
                "follow": True,
                "stop": stop,
                "idle": 0.1,
                "on_report": lambda _issue, report: reports.append(report),
            },
        )
        follower.start()
        try:
            time.sleep(0.5)  # no issue yet: it waits
            assert reports == [] and follower.is_alive()
            creator, issue = setup_issue(pg_url, 25)
            creator.close()
            deadline = time.monotonic() + 30
            while len(server.messages) < 25 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            follower.join(timeout=30)
        received = Counter(server.handler.recipients())
    assert not follower.is_alive()
    assert received == Counter(f"reader{i:05d}@example.org" for i in range(25))
    assert [r.sent for r in reports] == [25]  # one run: nothing pending afterwards
    assert store.ledger.claims(issue.id) == {"follower": 25}
    store.close()
