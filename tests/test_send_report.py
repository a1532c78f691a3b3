"""What `digest send` says and decides at the end: give-ups, uncertain rows, Ctrl-C, progress."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from digest.cli import cli
from digest.cli.mail import send_progress, uncertain_text
from digest.mail.deliver import send_issue
from digest.mail.report import SendReport
from digest.models import Delivery
from digest.store import Store
from tests import configfile
from tests.helpers import NOW, add_readers, stored_issue
from tests.smtpserver import LocalSMTPServer
from tests.test_deliver import config, hostile_issue

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("reply", ["552 5.2.2 mailbox full", "450 4.2.1 try again later"])
def test_a_refusal_that_persists_give_up_hours_ends_as_failed_reported_once(
    tmp_path: Path, store: Store, reply: str
) -> None:
    subs = add_readers(store, 2, named=True)
    full = subs[0].email
    issue = hostile_issue(store)
    with LocalSMTPServer() as server:
        server.handler.rcpt_replies[full] = reply
        cfg = config(tmp_path, server.port, max_attempts=2, backoff=0.01, give_up_hours=24.0)

        def at(hours: float) -> SendReport:
            when = NOW + timedelta(hours=hours)
            return send_issue(store, issue, cfg, now=when, clock=lambda: when)

        first = at(0)
        assert (first.sent, first.to_retry, first.failed, first.gave_up) == (1, 1, 0, ())
        assert first.exit_code == 3
        later = at(23.5)  # still inside the window: retried, still pending
        assert (later.to_retry, later.failed, later.gave_up) == (1, 0, ())
        over = at(24.1)
        assert (over.to_retry, over.failed, over.exit_code) == (0, 1, 0)
        (line,) = over.gave_up
        assert line.startswith(f"{full}: RCPT TO: {reply[:3]}")
        again = at(30)  # reported once: later runs neither retry nor report it
        assert (again.failed, again.gave_up, again.exit_code) == (1, (), 0)
        attempts = [r for r in server.handler.recipients() if r == full]
        assert attempts == []  # never accepted
    (row,) = store.ledger.list_deliveries(issue.id, "failed")
    assert row.email == full and "given up" in (row.last_error or "")
    # A full mailbox is not a dead address: the reader stays subscribed.
    assert {s.email: s.status for s in store.list_subscribers()}[full] == "active"


def test_connection_trouble_does_not_count_toward_giving_up(tmp_path: Path, store: Store) -> None:
    add_readers(store, 1, named=True)
    issue = hostile_issue(store)
    with LocalSMTPServer() as server:
        server.handler.data_replies = ["421 4.3.0 shutting down"] * 2
        cfg = config(tmp_path, server.port, max_attempts=1, backoff=0.01, give_up_hours=1.0)
        first = send_issue(store, issue, cfg, now=NOW, clock=lambda: NOW)
        late = NOW + timedelta(hours=5)
        second = send_issue(store, issue, cfg, now=late, clock=lambda: late)
        third = send_issue(store, issue, cfg, now=late, clock=lambda: late)
    assert first.to_retry == 1 and second.failed == 0 and third.sent == 1


def test_give_up_hours_is_validated(tmp_path: Path) -> None:
    path = configfile.write_config(tmp_path, smtp_port=25, smtp={"give_up_hours": 0})
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2 and "smtp.give_up_hours" in result.stderr


def test_send_reports_a_give_up_once(tmp_path: Path, store: Store) -> None:
    add_readers(store, 1, named=True)
    stored_issue(store)
    with LocalSMTPServer() as server:
        server.handler.rcpt_replies["reader0@example.org"] = "552 5.2.2 mailbox full"
        path = configfile.write_config(
            tmp_path,
            smtp_port=server.port,
            smtp={"give_up_hours": 0.0001, "backoff": 0.5, "max_attempts": 2},
        )
        runner = CliRunner()
        args = ["--config", str(path), "send", "--date", "2026-11-25"]
        first = runner.invoke(cli, args)
        second = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.stderr.count("gave up on reader0@example.org") == 1, first.stderr
    assert "failed 1" in first.stdout
    assert "gave up" not in second.output and "failed 1" in second.stdout


def test_uncertain_after_a_lost_connection_is_not_blamed_on_a_stopped_process(
    tmp_path: Path, store: Store
) -> None:
    add_readers(store, 2, named=True)
    stored_issue(store)
    with LocalSMTPServer() as server:
        server.handler.drop_after_data = 1  # takes the message, hangs up before the reply
        path = configfile.write_config(
            tmp_path, smtp_port=server.port, smtp={"connections": 1, "backoff": 0.01}
        )
        result = CliRunner().invoke(cli, ["--config", str(path), "send", "--date", "2026-11-25"])
    assert result.exit_code == 4, result.output
    assert "1 lost the connection (or the server's answer)" in result.stderr
    assert "stopped" not in result.stderr
    assert "--resend-uncertain" in result.stderr


def test_uncertain_text_tells_the_two_causes_apart() -> None:
    rows = [
        Delivery(1, 1, "a@x.org", "sending", last_error="uncertain: no reply to end-of-data"),
        Delivery(1, 2, "b@x.org", "sending", last_error=None),
    ]
    text = uncertain_text(rows)
    assert text.startswith("2 delivery(ies) may or may not have been accepted")
    assert "1 lost the connection" in text and "1 were being sent by a process that stopped" in text


def test_progress_shows_the_total_and_the_time_left() -> None:
    out = io.StringIO()
    where = Console(file=out, force_terminal=True, width=120)
    bar = send_progress(where)
    task = bar.add_task("send", total=10)
    for _ in range(3):
        bar.advance(task)
    where.print(bar.get_renderable())
    text = out.getvalue()
    assert "3/10" in text and "eta" in text


def test_ctrl_c_says_to_run_send_again(tmp_path: Path, store: Store) -> None:
    add_readers(store, 30, named=True)
    stored_issue(store)
    with LocalSMTPServer() as server:
        server.handler.delay = 0.3
        path = configfile.write_config(tmp_path, smtp_port=server.port, smtp={"connections": 1})
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(path), "send", "--date", "2026-11-25"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
            # As from a terminal: a suite started in the background (`cmd &` in a script)
            # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 120
        while not server.handler.messages:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    assert "interrupted:" in err and "run `digest send` again" in err, err
    assert len(server.handler.messages) < 30
