"""Bounces and complaints by mail: VERP envelope senders, DSNs from real MTAs, ARF reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.config import SmtpConfig
from digest.errors import ReportError
from digest.mail import importing, subscribers
from digest.mail.bounces import parse_report, process_report
from digest.mail.deliver import send_issue
from digest.store import Store
from tests import configfile
from tests.helpers import NOW, add_readers, stored_issue
from tests.smtpserver import LocalSMTPServer
from tests.test_deliver import config as smtp_config

DATA = Path(__file__).parent / "data" / "mail"
BOUNCES = "bounces@news.example.com"
SMTP = SmtpConfig(bounce_address=BOUNCES)


def fixture(name: str, token: str = "T" * 32, message_id: str = "<m.1@news.example.com>") -> bytes:
    text = (DATA / name).read_text(encoding="utf-8")
    return text.replace("{{TOKEN}}", token).replace("{{MESSAGE_ID}}", message_id).encode()


@pytest.mark.parametrize(
    ("name", "kind", "severity", "status"),
    [
        ("postfix-bounce.eml", "dsn", "hard", "5.1.1"),
        ("postfix-delayed.eml", "dsn", "soft", "4.2.2"),
        ("exim-bounce.eml", "dsn", "hard", "5.0.0"),
        ("exim-delayed.eml", "dsn", "soft", "4.0.0"),
        ("gmail-bounce.eml", "dsn", "hard", "5.1.1"),
        ("microsoft-bounce.eml", "dsn", "hard", "5.1.10"),
        ("arf-yahoo.eml", "arf", "complaint", "abuse"),
        ("arf-redacted.eml", "arf", "complaint", "abuse"),
    ],
)
def test_real_report_formats_parse(name: str, kind: str, severity: str, status: str) -> None:
    token = "Ab3_" + "x" * 27 + "Z"
    report = parse_report(
        fixture(name, token, "<2026-11-25.abc@news.example.com>"), bounce_address=BOUNCES
    )
    assert (report.kind, report.severity, report.status) == (kind, severity, status)
    assert "<2026-11-25.abc@news.example.com>" in report.message_ids
    if name != "arf-redacted.eml":  # the redacted one names its reader by Message-ID only
        assert report.tokens[0] == token
    else:
        assert report.tokens == ()
    if kind == "dsn":
        assert report.detail  # the diagnostic, for the operator
        assert "\n" not in report.detail


def test_a_dsn_marks_that_reader_bounced_and_only_that_one(store: Store) -> None:
    subs = add_readers(store, 3)
    for name in ("postfix-bounce.eml", "exim-bounce.eml", "gmail-bounce.eml"):
        target = subs[1]
        done = process_report(store, fixture(name, target.token), smtp=SMTP, now=NOW)
        assert done.subscriber.id == target.id and done.subscriber.status == "bounced"
        assert done.outcome is not None and done.outcome.changed == (name == "postfix-bounce.eml")
    assert [s.status for s in store.list_subscribers()] == ["active", "bounced", "active"]
    done = process_report(store, fixture("microsoft-bounce.eml", subs[2].token), smtp=SMTP, now=NOW)
    assert done.subscriber.email == "reader2@example.org"
    history = store.bounce_history(subs[1].id or 0)
    assert [(h.kind, h.status) for h in history] == [
        ("hard", "5.1.1"),
        ("hard", "5.0.0"),
        ("hard", "5.1.1"),
    ]
    assert "User unknown" in history[0].detail


@pytest.mark.parametrize(
    "raw",
    [
        fixture("autoreply.eml"),  # carries a known token, but is no DSN
        b"From: someone@example.net\r\nSubject: hello\r\n\r\nStatus: 5.1.1\r\n",
        b"\x00\xff garbage \r\n\r\n",
        b"",
    ],
)
def test_mail_that_is_no_report_changes_nothing(store: Store, raw: bytes) -> None:
    subs = add_readers(store, 3)
    raw = raw.replace(b"T" * 32, subs[0].token.encode())
    with pytest.raises(ReportError, match="not a delivery status notification"):
        process_report(store, raw, smtp=SMTP, now=NOW)
    assert [s.status for s in store.list_subscribers()] == ["active"] * 3
    assert store.bounce_history(subs[0].id or 0) == []


def test_a_dsn_naming_no_known_token_changes_nothing(store: Store) -> None:
    add_readers(store, 3)
    with pytest.raises(ReportError, match="names no reader of ours"):
        process_report(store, fixture("postfix-bounce.eml", "Q" * 32), smtp=SMTP, now=NOW)
    assert {s.status for s in store.list_subscribers()} == {"active"}


def test_three_soft_bounces_on_issues_in_a_row_mark_a_reader_bounced(
    store: Store, tmp_path: Path
) -> None:
    subs = add_readers(store, 2)
    reader = subs[0]
    with LocalSMTPServer() as server:
        cfg = smtp_config(tmp_path, server.port, bounce_address=BOUNCES)

        def send(day: int) -> str:
            """Send an issue; return the Message-ID the reader got."""
            issue = stored_issue(store, date=f"2026-11-{day:02d}")
            send_issue(store, issue, cfg, now=NOW)
            got = [m for m in server.messages if m.rcpt_tos == (reader.email,)][-1]
            return str(got.parse()["Message-ID"])

        def soft(message_id: str, name: str = "postfix-delayed.eml") -> int:
            done = process_report(
                store, fixture(name, reader.token, message_id), smtp=SMTP, now=NOW
            )
            assert done.outcome is not None and done.outcome.kind == "soft"
            return done.outcome.streak

        first = send(25)
        assert soft(first) == 1
        assert soft(first, "exim-delayed.eml") == 1  # the same issue again: counted once
        second = send(26)
        assert soft(second) == 2
        assert store.get_subscriber(token=reader.token).status == "active"  # type: ignore[union-attr]
        third = send(27)
        assert soft(third) == 3
        assert store.get_subscriber(token=reader.token).status == "bounced"  # type: ignore[union-attr]
        send(28)
        assert [m.rcpt_tos for m in server.messages[-1:]] == [("reader1@example.org",)]
    # The other reader was never touched.
    assert store.get_subscriber(email="reader1@example.org").status == "active"  # type: ignore[union-attr]


def test_an_issue_without_a_soft_bounce_ends_the_run(store: Store, tmp_path: Path) -> None:
    reader = add_readers(store, 1)[0]
    with LocalSMTPServer() as server:
        cfg = smtp_config(tmp_path, server.port, bounce_address=BOUNCES)
        ids = []
        for day in (25, 26, 27, 28):
            send_issue(store, stored_issue(store, date=f"2026-11-{day:02d}"), cfg, now=NOW)
            ids.append(str(server.messages[-1].parse()["Message-ID"]))
    streaks = []
    for message_id in (ids[0], ids[1], ids[3]):  # the issue of the 27th went through
        done = process_report(
            store, fixture("postfix-delayed.eml", reader.token, message_id), smtp=SMTP, now=NOW
        )
        assert done.outcome is not None
        streaks.append(done.outcome.streak)
    assert streaks == [1, 2, 1]
    assert store.get_subscriber(token=reader.token).status == "active"  # type: ignore[union-attr]


def test_a_complaint_stops_all_mail_and_no_import_or_link_brings_it_back(store: Store) -> None:
    subs = add_readers(store, 3)
    done = process_report(store, fixture("arf-yahoo.eml", subs[0].token), smtp=SMTP, now=NOW)
    assert done.subscriber.status == "complained" and done.report.kind == "arf"
    # A redacted report finds its reader through the Message-ID in the ledger.
    issue = stored_issue(store)
    store.ledger.ensure_deliveries(issue.id, now=NOW)
    assert store.ledger.claim_delivery(issue.id, subs[2].id or 0, message_id="<x.9@n>", now=NOW)
    done = process_report(
        store, fixture("arf-redacted.eml", message_id="<x.9@n>"), smtp=SMTP, now=NOW
    )
    assert done.subscriber.id == subs[2].id and done.subscriber.status == "complained"
    assert [s.status for s in store.list_subscribers()] == ["complained", "active", "complained"]

    report = importing.import_csv(store, "email\nREADER0@example.org\n", now=NOW)
    assert (report.added, report.existing) == (0, 1)
    with pytest.raises(Exception, match="reported our mail as spam"):
        subscribers.add(store, "Reader0@Example.org", now=NOW)
    assert store.get_subscriber(email="reader0@example.org").status == "complained"  # type: ignore[union-attr]
    # A later bounce never makes a complaint any milder.
    again = process_report(store, fixture("postfix-bounce.eml", subs[0].token), smtp=SMTP, now=NOW)
    assert again.subscriber.status == "complained"


def test_the_complaint_command_takes_only_arf(store: Store) -> None:
    subs = add_readers(store, 1)
    with pytest.raises(ReportError, match="not a complaint report"):
        process_report(
            store, fixture("postfix-bounce.eml", subs[0].token), smtp=SMTP, now=NOW, only="arf"
        )
    assert store.list_subscribers()[0].status == "active"


# -- end to end: the real send, the real envelope, the CLI -----------------------------


def run(config: Path, *args: str, stdin: bytes | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin, env=env)


def test_end_to_end_a_bounce_for_the_verp_sender_stops_the_next_send(tmp_path: Path) -> None:
    with LocalSMTPServer() as server:
        config = configfile.write_config(
            tmp_path,
            smtp_port=server.port,
            smtp={"bounce_address": BOUNCES, "backoff": 0.05, "max_attempts": 2},
        )
        for who in ("ann@example.org", "Bob@Example.org", "carol@example.org"):
            assert run(config, "subscribers", "add", who).exit_code == 0
        store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
        stored_issue(store, date="2026-11-24")
        stored_issue(store, date="2026-11-25")
        subs = {s.email: s for s in store.list_subscribers()}
        store.close()

        sent = run(config, "send", "--date", "2026-11-24")
        assert sent.exit_code == 0, sent.output
        # Each message's envelope sender carries its reader's token (VERP).
        envelope = {m.rcpt_tos[0]: m.mail_from for m in server.messages}
        assert envelope == {
            email: f"bounces+{sub.token}@news.example.com" for email, sub in subs.items()
        }
        # The relay's bounce comes back hours later to bob's VERP address.
        to_bob = next(m for m in server.messages if m.rcpt_tos == ("Bob@example.org",))
        original = to_bob.parse()
        token = to_bob.mail_from.split("+", 1)[1].split("@", 1)[0]
        headers = "".join(
            f"{k}: {v}\n" for k, v in original.items() if k in ("From", "Message-ID", "Date")
        )
        dsn = fixture("postfix-bounce.eml", token, str(original["Message-ID"]))
        dsn = dsn.replace(b"Message-ID: " + str(original["Message-ID"]).encode() + b"\n", b"")
        dsn = dsn.replace(
            b"Content-Type: text/rfc822-headers\n\n",
            b"Content-Type: text/rfc822-headers\n\n" + headers.encode(),
        )
        bounced = run(config, "subscribers", "bounce", stdin=dsn)
        assert bounced.exit_code == 0, bounced.output
        assert "Bob@example.org: bounce 5.1.1; bounced" in bounced.stdout

        # Not a DSN: exit 1 (the MTA returns it), nothing changed.
        other = fixture("autoreply.eml", subs["ann@example.org"].token)
        refused = run(config, "subscribers", "bounce", stdin=other)
        assert refused.exit_code == 1 and "not a delivery status notification" in refused.stderr

        # A DSN that only the MTA's pipe environment ties to a reader (Postfix sets
        # ORIGINAL_RECIPIENT): a soft bounce for carol.
        bare = fixture("postfix-delayed.eml", "nobody", "<none@x>")
        carol = subs["carol@example.org"].token
        soft = run(
            config,
            "subscribers",
            "bounce",
            stdin=bare,
            ORIGINAL_RECIPIENT=f"bounces+{carol}@news.example.com",
        )
        assert soft.exit_code == 0, soft.output
        assert "carol@example.org: soft bounce 4.2.2 (1 of 3 in a row); active" in soft.stdout

        listed = run(config, "subscribers", "list")
        assert "active 2, unsubscribed 0, bounced 1, complained 0" in listed.stderr
        status = run(config, "status")
        assert "subscribers:    2 active, 1 bounced" in status.stdout

        before = len(server.messages)
        again = run(config, "send", "--date", "2026-11-25")
        assert again.exit_code == 0, again.output
        assert sorted(m.rcpt_tos[0] for m in server.messages[before:]) == [
            "ann@example.org",
            "carol@example.org",
        ]
        assert "skipped" not in again.stdout or "skipped 0" in again.stdout


def test_the_complaint_command_end_to_end(tmp_path: Path) -> None:
    config = configfile.write_config(tmp_path)  # no [smtp] on this machine: still works
    assert run(config, "subscribers", "add", "reader@example.net").exit_code == 0
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    token = store.list_subscribers()[0].token
    store.close()
    not_arf = run(config, "subscribers", "complaint", stdin=fixture("postfix-bounce.eml", token))
    assert not_arf.exit_code == 1 and "not a complaint report" in not_arf.stderr
    done = run(config, "subscribers", "complaint", stdin=fixture("arf-yahoo.eml", token))
    assert done.exit_code == 0, done.output
    assert "reader@example.net: complaint abuse; complained" in done.stdout
    readded = run(config, "subscribers", "add", "Reader@example.net")
    assert readded.exit_code == 1 and "reported our mail as spam" in readded.stderr


def test_adding_a_bounced_reader_again_starts_the_soft_count_afresh(store: Store) -> None:
    reader = add_readers(store, 1)[0]
    for _ in range(3):  # nothing was ever sent: each report counts
        process_report(store, fixture("exim-delayed.eml", reader.token), smtp=SMTP, now=NOW)
    assert store.get_subscriber(token=reader.token).status == "bounced"  # type: ignore[union-attr]
    back, changed = subscribers.add(store, "READER0@example.org", now=NOW)
    assert changed and back.status == "active"
    done = process_report(store, fixture("exim-delayed.eml", reader.token), smtp=SMTP, now=NOW)
    assert done.outcome is not None and done.outcome.streak == 1
    assert done.subscriber.status == "active"


def test_reports_that_quote_no_message_id_count_as_separate_issues(
    store: Store, tmp_path: Path
) -> None:
    reader, other = add_readers(store, 2)
    with LocalSMTPServer() as server:
        cfg = smtp_config(tmp_path, server.port, bounce_address=BOUNCES)
        send_issue(store, stored_issue(store), cfg, now=NOW)
        # One issue sent: however many notices come, that is one issue's soft bounce.
        for _ in range(3):
            done = process_report(
                store, fixture("postfix-delayed.eml", other.token, "<?@x>"), smtp=SMTP, now=NOW
            )
            assert done.outcome is not None and done.outcome.streak == 1
        for day in (26, 27):
            send_issue(store, stored_issue(store, date=f"2026-11-{day:02d}"), cfg, now=NOW)
    # Three issues sent, three notices naming none of them: three issues in a row.
    streaks = []
    for _ in range(3):
        done = process_report(
            store, fixture("postfix-delayed.eml", reader.token, "<?@x>"), smtp=SMTP, now=NOW
        )
        assert done.outcome is not None
        streaks.append(done.outcome.streak)
    assert streaks == [1, 2, 3]
    assert store.get_subscriber(token=reader.token).status == "bounced"  # type: ignore[union-attr]


def test_bounces_and_complaints_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    store = Store.open(pg_url)
    try:
        soft, hard, spam, fine = add_readers(store, 4)
        with LocalSMTPServer() as server:
            cfg = smtp_config(tmp_path, server.port, bounce_address=BOUNCES)
            sent: dict[str, list[str]] = {}
            for day in (25, 26, 27):
                send_issue(store, stored_issue(store, date=f"2026-11-{day:02d}"), cfg, now=NOW)
                for m in server.messages[-4:]:
                    sent.setdefault(m.rcpt_tos[0], []).append(str(m.parse()["Message-ID"]))
            assert {m.mail_from for m in server.messages} == {
                f"bounces+{s.token}@news.example.com" for s in (soft, hard, spam, fine)
            }
        for message_id in sent[soft.email]:
            process_report(
                store, fixture("exim-delayed.eml", soft.token, message_id), smtp=SMTP, now=NOW
            )
        process_report(store, fixture("gmail-bounce.eml", hard.token), smtp=SMTP, now=NOW)
        redacted = fixture("arf-redacted.eml", message_id=sent[spam.email][1])
        assert process_report(store, redacted, smtp=SMTP, now=NOW).subscriber.id == spam.id
        assert {s.email: s.status for s in store.list_subscribers()} == {
            soft.email: "bounced",
            hard.email: "bounced",
            spam.email: "complained",
            fine.email: "active",
        }
        assert store.subscriber_counts() == {"active": 1, "bounced": 2, "complained": 1}
    finally:
        store.close()
