"""Sending over real local SMTP servers (aiosmtpd): the ledger, retries, faults, TLS and AUTH."""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from digest.config import Config, SiteConfig, SmtpConfig
from digest.errors import DeliveryError
from digest.mail.deliver import TEST_TOKEN, plan, send_issue, send_test
from digest.mail.report import SendReport
from digest.models import Subscriber
from digest.store import Store, StoredIssue
from tests.helpers import NOW, UNSUB, add_readers, stored_issue
from tests.smtpserver import LocalSMTPServer, Received, free_port

SITE = SiteConfig(name="The Daily Digest", url="https://news.example.com")


@pytest.fixture
def server() -> Iterator[LocalSMTPServer]:
    with LocalSMTPServer() as s:
        yield s


def config(tmp_path: Path, port: int, **smtp: Any) -> Config:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_": "The Daily Digest <digest@news.example.com>",
        "backoff": 0.05,
        "timeout": 5.0,
        "connections": 2,
        "max_attempts": 4,
    }
    values.update(smtp)
    return Config(path=tmp_path / "config.toml", site=SITE, sources=(), smtp=SmtpConfig(**values))


HOSTILE_SUBJECT = "The Daily Digest — Ünïcode\r\nBcc: x@evil.org"
LONG_HTML = (
    "<html><body><p>" + "A long paragraph without breaks. " * 100 + "</p>"
    f'<p><a href="{UNSUB}">Unsubscribe</a></p></body></html>'
)


def hostile_issue(store: Store) -> StoredIssue:
    """Store the issue sent here: a header injection in its subject, a line too long for SMTP."""
    return stored_issue(
        store,
        subject=HOSTILE_SUBJECT,
        html=LONG_HTML,
        text=f"Today's news.\n\nUnsubscribe: {UNSUB}\n",
    )


def counts(server: LocalSMTPServer) -> Counter[str]:
    return Counter(server.handler.recipients())


def check_message(received: Received, sub: Subscriber) -> None:
    msg = received.parse()
    assert received.rcpt_tos == (sub.email,)
    assert received.mail_from == "digest@news.example.com"
    assert msg["To"].addresses[0].addr_spec == sub.email
    assert msg["Subject"] == "The Daily Digest — Ünïcode Bcc: x@evil.org"
    assert msg["Bcc"] is None
    assert msg["List-Unsubscribe"] == f"<https://news.example.com/unsubscribe?token={sub.token}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<\S+@news\.example\.com>", msg["Message-ID"])
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert f"token={sub.token}" in part.get_content()
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))


def test_every_active_subscriber_gets_exactly_one_copy(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 6, named=True)
    store.set_subscriber_status(status="unsubscribed", now=NOW, email=subs[5].email)
    issue = hostile_issue(store)
    report = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert report == SendReport(issue.id, sent=5, already_sent=0, failed=0, to_retry=0, uncertain=0)
    assert report.exit_code == 0
    assert counts(server) == Counter(s.email for s in subs[:5])
    by_addr = {s.email: s for s in subs}
    for received in server.messages:
        check_message(received, by_addr[received.rcpt_tos[0]])
    ids = {m.parse()["Message-ID"] for m in server.messages}
    assert len(ids) == 5
    sent = store.ledger.list_deliveries(issue.id, "sent")
    assert {d.message_id for d in sent} == ids
    assert all(d.attempts == 1 for d in sent)

    again = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert (again.sent, again.already_sent, again.exit_code) == (0, 5, 0)
    assert len(server.messages) == 5


def test_late_joiner_gets_it_on_the_next_send_and_leaver_does_not(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 3, named=True)
    issue = hostile_issue(store)
    store.ledger.ensure_deliveries(issue.id, now=NOW)  # queued, then someone leaves before delivery
    store.set_subscriber_status(status="unsubscribed", now=NOW, email=subs[0].email)
    report = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert (report.sent, report.skipped) == (2, 1)
    late = add_readers(store, 1, start=10, named=True)[0]
    report = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert (report.sent, report.already_sent, report.skipped) == (1, 2, 1)
    assert counts(server) == Counter([subs[1].email, subs[2].email, late.email])


def test_unsubscribing_during_the_send_is_honoured_at_send_time(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 4, named=True)
    issue = hostile_issue(store)

    def progress(address: str, outcome: str) -> None:
        if address == subs[0].email:  # the first goes out; then the last reader leaves
            store.set_subscriber_status(status="unsubscribed", now=NOW, email=subs[3].email)

    report = send_issue(
        store, issue, config(tmp_path, server.port, connections=1), now=NOW, progress=progress
    )
    assert subs[3].email not in counts(server)
    assert (report.sent, report.to_retry, report.uncertain) == (3, 0, 0)


@pytest.mark.parametrize("reply", ["451 4.3.0 try again later", "421 4.3.2 closing, busy"])
def test_temporary_replies_are_retried_with_backoff(
    tmp_path: Path, store: Store, server: LocalSMTPServer, reply: str
) -> None:
    subs = add_readers(store, 4, named=True)
    issue = hostile_issue(store)
    server.handler.data_replies = [reply, reply]
    start = time.monotonic()
    report = send_issue(store, issue, config(tmp_path, server.port, connections=1), now=NOW)
    assert time.monotonic() - start >= 0.05 + 0.1  # two backoffs: 0.05 s, then doubled
    assert (report.sent, report.to_retry, report.exit_code) == (4, 0, 0)
    assert counts(server) == Counter(s.email for s in subs)
    (retried,) = [d for d in store.ledger.list_deliveries(issue.id) if d.attempts > 1]
    assert retried.attempts == 3 and retried.status == "sent"


def test_rejected_recipient_bounces_and_the_send_goes_on(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 4, named=True)
    issue = hostile_issue(store)
    server.handler.rcpt_replies[subs[1].email] = "550 5.1.1 no such mailbox"
    report = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert (report.sent, report.failed, report.to_retry, report.exit_code) == (3, 1, 0, 0)
    assert counts(server) == Counter(s.email for s in subs if s is not subs[1])
    bounced = store.get_subscriber(email=subs[1].email)
    assert bounced is not None and bounced.status == "bounced"
    (failed,) = store.ledger.list_deliveries(issue.id, "failed")
    assert failed.last_error is not None and "550 5.1.1" in failed.last_error
    send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert len(server.messages) == 3  # never retried


def test_connection_dropped_mid_data_is_retried_once_delivered(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 5, named=True)
    issue = hostile_issue(store)
    server.handler.drop_in_data = 2
    report = send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    assert (report.sent, report.uncertain, report.to_retry) == (5, 0, 0)
    assert counts(server) == Counter(s.email for s in subs)
    assert server.handler.drop_in_data == 0
    # The two interrupted transactions were tried again (the "." never went out).
    assert sum(d.attempts for d in store.ledger.list_deliveries(issue.id)) == 5 + 2


def test_lost_reply_after_end_of_data_is_uncertain_and_never_resent(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 3, named=True)
    issue = hostile_issue(store)
    server.handler.drop_after_data = 1
    cfg = config(tmp_path, server.port, connections=1)
    report = send_issue(store, issue, cfg, now=NOW)
    assert (report.sent, report.uncertain, report.exit_code) == (2, 1, 4)
    assert counts(server) == Counter(s.email for s in subs)  # the server did take it
    (row,) = store.ledger.list_deliveries(issue.id, "sending")
    assert row.email == subs[0].email and "uncertain" in (row.last_error or "")
    again = send_issue(store, issue, cfg, now=NOW)
    assert (again.sent, again.uncertain) == (0, 1)
    assert len(server.messages) == 3
    # The operator's explicit choice: requeue it (the reader now gets a second copy).
    forced = send_issue(store, issue, cfg, now=NOW, resend_uncertain=True)
    assert (forced.sent, forced.uncertain, forced.exit_code) == (1, 0, 0)
    assert counts(server)[subs[0].email] == 2


def test_too_many_temporary_failures_leave_the_rest_for_the_next_run(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 3, named=True)
    issue = hostile_issue(store)
    server.handler.data_replies = ["451 4.7.1 greylisted"] * 6
    cfg = config(tmp_path, server.port, connections=1, max_attempts=2)
    report = send_issue(store, issue, cfg, now=NOW)
    assert report.to_retry == 3 and report.exit_code == 3 and report.sent == 0
    pending = store.ledger.list_deliveries(issue.id, "pending")
    assert all(d.attempts == 2 and "451" in (d.last_error or "") for d in pending)
    report = send_issue(store, issue, cfg, now=NOW)
    assert (report.sent, report.to_retry, report.exit_code) == (3, 0, 0)
    assert counts(server) == Counter(s.email for s in subs)


def test_unreachable_server_gives_up_quickly_and_keeps_everything_pending(
    tmp_path: Path, store: Store
) -> None:
    add_readers(store, 5, named=True)
    issue = hostile_issue(store)
    start = time.monotonic()
    report = send_issue(store, issue, config(tmp_path, free_port(), max_attempts=3), now=NOW)
    assert time.monotonic() - start < 30  # no long back-off (3 tries: well under a second)
    assert (report.to_retry, report.sent, report.exit_code) == (5, 0, 3)


def test_parallel_connections_and_rate_limit(tmp_path: Path, store: Store) -> None:
    add_readers(store, 6, named=True)
    issue = hostile_issue(store)
    with LocalSMTPServer() as slow:
        slow.handler.delay = 0.3
        report = send_issue(store, issue, config(tmp_path, slow.port, connections=3), now=NOW)
    assert report.sent == 6
    assert slow.handler.max_in_data == 3  # three connections at once, never more

    add_readers(store, 6, start=100, named=True)
    with LocalSMTPServer() as server:
        start = time.monotonic()
        report = send_issue(
            store, issue, config(tmp_path, server.port, connections=3, rate=20.0), now=NOW
        )
        elapsed = time.monotonic() - start
    assert report.sent == 6
    assert elapsed >= 5 / 20.0 * 0.9, elapsed


def test_stop_event_finishes_in_flight_and_leaves_the_rest_pending(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    add_readers(store, 10, named=True)
    issue = hostile_issue(store)
    stop = threading.Event()
    with LocalSMTPServer() as slow:
        # The second message waits at the server until the stop has reached the send.
        slow.handler.hold_after = 1

        def stop_mid_send() -> None:
            deadline = time.monotonic() + 120
            while not slow.messages and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set()
            while "stop requested" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.01)
            slow.handler.release.set()

        threading.Thread(target=stop_mid_send, daemon=True).start()
        report = send_issue(
            store, issue, config(tmp_path, slow.port, connections=1), now=NOW, stop=stop
        )
        assert report.interrupted and report.exit_code == 3
        assert 1 <= report.sent < 10 and report.uncertain == 0
        assert report.sent + report.to_retry == 10
        assert len(slow.messages) == report.sent


def test_two_senders_at_once_never_duplicate(tmp_path: Path, store: Store) -> None:
    subs = add_readers(store, 20, named=True)
    issue = hostile_issue(store)
    other = Store.open(str(store.db.engine.url))
    reports: list[SendReport] = []
    with LocalSMTPServer() as slow:
        slow.handler.delay = 0.01
        cfg = config(tmp_path, slow.port)

        def run(s: Store) -> None:
            reports.append(send_issue(s, issue, cfg, now=NOW))

        threads = [threading.Thread(target=run, args=(s,)) for s in (store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    other.close()
    assert counts(slow) == Counter(s.email for s in subs)
    assert sum(r.sent for r in reports) == 20


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ctx, str(path)


def test_starttls_and_auth_with_a_trusted_ca(
    tmp_path: Path,
    store: Store,
    tls: tuple[ssl.SSLContext, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx, ca_file = tls
    subs = add_readers(store, 3, named=True)
    issue = hostile_issue(store)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-Pa55")
    with LocalSMTPServer(tls=ctx, users={"mailer": "s3cret-Pa55"}) as server:
        cfg = config(
            tmp_path,
            server.port,
            security="starttls",
            ca_file=ca_file,
            username="mailer",
            password_env="TEST_SMTP_PASSWORD",
        )
        with caplog.at_level(logging.DEBUG):
            report = send_issue(store, issue, cfg, now=NOW)
        assert report.sent == 3 and report.error is None
        assert counts(server) == Counter(s.email for s in subs)
        assert server.logins and set(server.logins) == {"mailer"}
    assert "s3cret-Pa55" not in caplog.text


def test_untrusted_certificate_is_refused_by_default(
    tmp_path: Path, store: Store, tls: tuple[ssl.SSLContext, str]
) -> None:
    ctx, _ca_file = tls
    add_readers(store, 2, named=True)
    issue = hostile_issue(store)
    with LocalSMTPServer(tls=ctx) as server:
        report = send_issue(
            store, issue, config(tmp_path, server.port, security="starttls"), now=NOW
        )
        assert server.messages == []
    assert report.error is not None and "certificate" in report.error
    assert "smtp.ca_file" in report.error
    assert report.to_retry == 2 and report.exit_code == 3


def test_wrong_password_is_reported_without_the_password(
    tmp_path: Path,
    store: Store,
    tls: tuple[ssl.SSLContext, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx, ca_file = tls
    add_readers(store, 2, named=True)
    issue = hostile_issue(store)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-Pa55word")
    with LocalSMTPServer(tls=ctx, users={"mailer": "right"}) as server:
        cfg = config(
            tmp_path,
            server.port,
            security="starttls",
            ca_file=ca_file,
            username="mailer",
            password_env="TEST_SMTP_PASSWORD",
        )
        with caplog.at_level(logging.DEBUG):
            report = send_issue(store, issue, cfg, now=NOW)
    assert report.error is not None and "refused the login" in report.error
    assert "TEST_SMTP_PASSWORD" in report.error
    assert "wrong-Pa55word" not in report.error + caplog.text
    monkeypatch.delenv("TEST_SMTP_PASSWORD")
    with pytest.raises(DeliveryError, match=r"\$TEST_SMTP_PASSWORD is empty"):
        send_issue(store, issue, cfg, now=NOW)


def test_implicit_tls(tmp_path: Path, store: Store, tls: tuple[ssl.SSLContext, str]) -> None:
    ctx, ca_file = tls
    subs = add_readers(store, 2, named=True)
    issue = hostile_issue(store)
    with LocalSMTPServer(tls=ctx, implicit_tls=True) as server:
        cfg = config(tmp_path, server.port, security="ssl", ca_file=ca_file)
        report = send_issue(store, issue, cfg, now=NOW)
        assert counts(server) == Counter(s.email for s in subs)
    assert report.sent == 2


def test_test_copy_does_not_touch_the_ledger(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    add_readers(store, 2, named=True)
    issue = hostile_issue(store)
    message_id = send_test(config(tmp_path, server.port), issue, "editor@example.org", now=NOW)
    (received,) = server.messages
    msg = received.parse()
    assert received.rcpt_tos == ("editor@example.org",)
    assert msg["Message-ID"] == message_id
    assert TEST_TOKEN in msg["List-Unsubscribe"]
    assert store.ledger.list_deliveries(issue.id) == []


def test_plan_shows_what_a_send_would_do_without_writing(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    subs = add_readers(store, 3, named=True)
    issue = hostile_issue(store)
    server.handler.rcpt_replies[subs[1].email] = "550 5.1.1 unknown"
    before = {p.subscriber.email: p.action for p in plan(store, issue)}
    assert set(before.values()) == {"send"}
    send_issue(store, issue, config(tmp_path, server.port), now=NOW)
    add_readers(store, 1, start=9, named=True)
    after = {p.subscriber.email: p.action for p in plan(store, issue)}
    assert after == {
        subs[0].email: "already sent",
        subs[1].email: "failed",
        subs[2].email: "already sent",
        "reader9@example.org": "send",
    }
    assert len(store.ledger.list_deliveries(issue.id)) == 3


def test_story_times_are_worded_when_the_message_is_sent(
    tmp_path: Path, store: Store, server: LocalSMTPServer
) -> None:
    """An issue rendered at 07:30 and sent two hours later says "2 hours ago", in both parts."""
    from dataclasses import replace as dc_replace

    from tests.test_golden import NOW as RENDERED
    from tests.test_golden import render_sample, sample_issue

    issue = sample_issue()
    undated = dc_replace(issue.roundup[2].article, published=None, first_seen=RENDERED)
    rendered = render_sample(
        dc_replace(
            issue, roundup=(*issue.roundup[:2], dc_replace(issue.roundup[2], article=undated))
        )
    )
    stored = store.create_issue(
        date=rendered.date, created_at=RENDERED, subject=rendered.subject, html=rendered.html,
        text=rendered.text, preheader=rendered.preheader, article_ids=[],
    )  # fmt: skip
    add_readers(store, 2, named=True)
    sent_at = RENDERED + timedelta(hours=2)
    report = send_issue(
        store, stored, config(tmp_path, server.port), now=sent_at, clock=lambda: sent_at
    )
    assert report.sent == 2
    for received in server.messages:
        text, html = (p.get_content().replace("\r\n", "\n") for p in received.parse().iter_parts())
        for part in (text, html):
            assert "just now" not in part and "DIGESTXTIMEX" not in part
            assert "Jane Doe · 2 hours ago" in part  # the lead, published 10 minutes before
            assert "Science Daily · 2 hours ago" in part and "Sport &" in part
        # The undated story shows no time at all (its source, nothing after it).
        assert "   City Desk\n" in text and "City Desk</p>" in html
    # A test copy is worded at its own send time too.
    later = RENDERED + timedelta(days=1, hours=2)
    send_test(config(tmp_path, server.port), stored, "me@example.org", now=later)
    text = server.messages[-1].parse().get_body(("plain",))
    assert text is not None and "Jane Doe · yesterday" in text.get_content()
