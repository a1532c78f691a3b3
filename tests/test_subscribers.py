"""Subscribers: address validation, CSV import/export, and the CLI commands (incl. `send`)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.mail import importing, subscribers
from digest.mail.subscribers import AddressError, normalize_address
from digest.models import TOKEN_PLACEHOLDER
from digest.store import Store
from tests import configfile
from tests.helpers import stored_issue
from tests.smtpserver import LocalSMTPServer

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Ann@Example.ORG", "Ann@example.org"),
        ("  bob@x.org ", "bob@x.org"),
        ("a+tag@Sub.Example.com", "a+tag@sub.example.com"),
        ("leser@Bücher.de", "leser@xn--bcher-kva.de"),
    ],
)
def test_addresses_are_normalized(raw: str, normal: str) -> None:
    assert normalize_address(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "not-an-address",
        "a@b",
        "a b@x.org",
        "a@x.org\r\nBcc: y@z.org",
        '"quoted"@x.org',
        "jörg@x.org",
        "Name <a@x.org>",
        "a@[127.0.0.1]",
        "",
    ],
)
def test_invalid_addresses_are_refused(raw: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(raw)


def test_any_spelling_of_an_address_is_one_subscriber(store: Store) -> None:
    first, added = subscribers.add(store, "Bob@X.org", "Bob", now=NOW)
    second, changed = subscribers.add(store, "bob@x.ORG", now=NOW)
    assert added and not changed
    assert first.id == second.id
    # Shown as first written (domain lower-cased); compared on the whole address.
    assert [s.email for s in store.list_subscribers()] == ["Bob@x.org"]
    assert len(first.token) == len(TOKEN_PLACEHOLDER)
    removed = subscribers.remove(store, "BOB@x.org", now=NOW)
    assert removed is not None and removed.status == "unsubscribed" and removed.id == first.id
    assert store.get_subscriber(email="bOb@X.ORG") == removed
    assert [s.status for s in store.list_subscribers()] == ["unsubscribed"]


CSV = (
    "email,name\n"  # 1 header
    "ann@example.org,Ann\n"  # 2
    "not-an-address,Nobody\n"  # 3 bad
    "\n"  # 4 blank
    'bob@Example.org,"Bob, the\nBuilder"\n'  # 5-6, quoted newline in the name
    "carol@example.org,Carol,unsubscribed\n"  # 7
    "dave@example.org,Dave,vip\n"  # 8 bad status
    "ANN@example.org,Ann again\n"  # 9 the same mailbox as line 2
    "ann@EXAMPLE.org,Dup\n"  # 10 duplicate of line 2
    "a,b,c,d\n"  # 11 too many columns
    "erin@example.org\n"  # 12
)


def test_import_reports_bad_rows_by_line_and_imports_the_rest(store: Store) -> None:
    subscribers.add(store, "erin@example.org", now=NOW)
    store.set_subscriber_status(status="unsubscribed", now=NOW, email="erin@example.org")
    report = importing.import_csv(store, io.StringIO(CSV), now=NOW)
    assert [line for line, _ in report.errors] == [3, 8, 9, 10, 11]
    assert "not-an-address" in report.errors[0][1]
    assert "vip" in report.errors[1][1]
    assert "appears twice" in report.errors[2][1]
    assert (report.added, report.existing) == (3, 1)
    listed = {s.email: (s.name, s.status) for s in store.list_subscribers()}
    assert listed == {
        "erin@example.org": ("", "unsubscribed"),  # an import never re-subscribes anyone
        "ann@example.org": ("Ann", "active"),
        "bob@example.org": ("Bob, the Builder", "active"),
        "carol@example.org": ("Carol", "unsubscribed"),
    }


def test_export_round_trips_through_import(store: Store, tmp_path: Path) -> None:
    importing.import_csv(store, io.StringIO(CSV), now=NOW)
    text = importing.export_text(store)
    assert text.splitlines()[0] == "email,name,status,timezone,send_at,sections"
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    report = importing.import_csv(other, io.StringIO(text), now=NOW)
    assert report.ok
    strip = [(s.email, s.name, s.status) for s in store.list_subscribers()]
    assert [(s.email, s.name, s.status) for s in other.list_subscribers()] == strip
    # Tokens are per database: an exported list never carries them.
    assert "token" not in text and all(s.token not in text for s in store.list_subscribers())
    other.close()


# -- CLI -------------------------------------------------------------------------


def write_config(tmp_path: Path, port: int = 25) -> Path:
    return configfile.write_config(
        tmp_path, smtp_port=port, smtp={"backoff": 0.05, "max_attempts": 2}
    )


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)


def test_subscribers_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert run(config, "subscribers", "add", "Ann@Example.ORG", "--name", "Ann").exit_code == 0
    assert run(config, "subscribers", "add", "bob@example.org").exit_code == 0
    bad = run(config, "subscribers", "add", "bob@@example.org")
    assert bad.exit_code == 1 and "not a valid address" in bad.stderr
    listed = run(config, "subscribers", "list")
    assert listed.stdout == (
        "Ann@example.org\tAnn\tactive\t-\t-\t-\nbob@example.org\t\tactive\t-\t-\t-\n"
    )
    assert run(config, "subscribers", "remove", "bob@EXAMPLE.org").exit_code == 0
    assert run(config, "subscribers", "list", "--status", "unsubscribed").stdout == (
        "bob@example.org\t\tunsubscribed\t-\t-\t-\n"
    )
    missing = run(config, "subscribers", "remove", "zed@example.org")
    assert missing.exit_code == 1 and "not on the list" in missing.stderr

    csv_file = tmp_path / "list.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    imported = run(config, "subscribers", "import", str(csv_file))
    assert imported.exit_code == 1  # some rows were rejected; the rest are in
    assert f"{csv_file}:3:" in imported.stderr and f"{csv_file}:11:" in imported.stderr
    # ann@example.org is Ann@example.org, added above: one mailbox, one reader.
    assert "imported 2, already on the list 2, rejected 5" in imported.stdout
    exported = run(config, "subscribers", "export", "--status", "active")
    assert exported.exit_code == 0
    assert exported.stdout.splitlines()[0] == "email,name,status,timezone,send_at,sections"
    assert "Ann@example.org,Ann,active" in exported.stdout
    assert "bob@example.org" not in exported.stdout
    piped = run(config, "subscribers", "import", "-", stdin="zoe@example.org,Zoë\n")
    assert piped.exit_code == 0 and "imported 1" in piped.stdout


def test_send_command_dry_run_test_copy_and_exit_codes(tmp_path: Path) -> None:
    with LocalSMTPServer() as server:
        config = write_config(tmp_path, server.port)
        for i in range(3):
            assert run(config, "subscribers", "add", f"r{i}@example.org").exit_code == 0
        store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
        stored_issue(store, date="2026-11-24", created_at=NOW)
        dry = run(config, "send", "--dry-run", "--date", "2026-11-24")
        assert dry.exit_code == 0
        assert "r0@example.org\tsend" in dry.stdout and "send 3" in dry.stdout
        assert server.messages == []

        copy = run(config, "send", "--date", "2026-11-24", "--to", "Editor@Example.org")
        assert copy.exit_code == 0, copy.output
        assert [m.rcpt_tos for m in server.messages] == [("Editor@example.org",)]

        server.handler.rcpt_replies["r1@example.org"] = "450 4.2.1 mailbox busy"
        partial = run(config, "send", "--date", "2026-11-24")
        assert partial.exit_code == 3, partial.output  # one delivery remains to retry
        assert "sent 2" in partial.stdout and "to retry 1" in partial.stdout

        server.handler.rcpt_replies.clear()
        done = run(config, "send", "--date", "2026-11-24")
        assert done.exit_code == 0, done.output
        assert "sent 1, already sent 2" in done.stdout
        assert len(server.messages) == 4

        nothing = run(config, "send", "--date", "2026-01-01")
        assert nothing.exit_code == 1 and "no issue stored for 2026-01-01" in nothing.stderr
        store.close()


def test_mail_to_the_unsubscribe_address_unsubscribes_by_token(tmp_path: Path) -> None:
    from email import message_from_bytes, policy
    from urllib.parse import unquote, urlsplit

    from digest.config import SiteConfig, SmtpConfig
    from digest.mail.message import build_template
    from digest.models import RenderedIssue

    config = write_config(tmp_path)
    for who in ("ann@example.org", "bob@example.org"):
        assert run(config, "subscribers", "add", who).exit_code == 0
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    ann = store.get_subscriber(email="ann@example.org")
    store.close()
    assert ann is not None
    smtp = SmtpConfig(unsubscribe_mailto="leave@news.example.com")
    site = SiteConfig(name="The Daily Digest", url="https://news.example.com")
    template = build_template(
        RenderedIssue("2026-11-25", "S", "<p>x</p>", "x"), smtp=smtp, site=site
    )
    sent = template.render(
        to="<ann@example.org>",
        date="Wed, 25 Nov 2026 07:00:00 +0000",
        message_id="<m@x>",
        token=ann.token,
    )
    header = str(message_from_bytes(sent, policy=policy.default)["List-Unsubscribe"])
    mailto = next(u for u in header.replace(" ", "").strip("<>").split(">,<") if "mailto:" in u)
    parts = urlsplit(mailto)
    assert parts.path == "leave@news.example.com"
    subject = unquote(parts.query.removeprefix("subject="))
    # What a mail client sends when the reader clicks "Unsubscribe" in Gmail or Apple Mail.
    reply = (
        f"From: Someone Else <mallory@example.net>\r\nTo: {parts.path}\r\n"
        f"Subject: {subject}\r\n\r\nThis message will unsubscribe you.\r\n"
    )

    forged = run(
        config, "subscribers", "mail-unsubscribe", stdin=reply.replace(ann.token, "x" * 32)
    )
    assert forged.exit_code == 1 and "unknown unsubscribe token" in forged.stderr
    no_token = run(
        config,
        "subscribers",
        "mail-unsubscribe",
        stdin="From: bob@example.org\r\nSubject: unsubscribe\r\n\r\n",
    )
    assert no_token.exit_code == 1 and "no unsubscribe token" in no_token.stderr
    # A forged From: alone changes nothing: both are still active.
    assert run(config, "subscribers", "list", "--status", "active").stdout.count("active") == 2

    mail = tmp_path / "reply.eml"
    mail.write_bytes(reply.encode())
    done = run(config, "subscribers", "mail-unsubscribe", str(mail))
    assert done.exit_code == 0 and "ann@example.org: unsubscribed" in done.stdout
    assert run(config, "subscribers", "list", "--status", "active").stdout == (
        "bob@example.org\t\tactive\t-\t-\t-\n"
    )


def test_list_shows_counts_per_status_and_json_for_scripts(tmp_path: Path) -> None:
    import json

    config = write_config(tmp_path)
    for who in ("ann@example.org", "bob@example.org", "cy@example.org"):
        assert run(config, "subscribers", "add", who, "--name", who[:3]).exit_code == 0
    assert run(config, "subscribers", "remove", "BOB@example.org").exit_code == 0
    listed = run(config, "subscribers", "list")
    assert listed.stdout.count("\n") == 3  # the rows only: stdout stays a clean table
    assert listed.stderr.strip() == "active 2, unsubscribed 1, bounced 0, complained 0"
    data = json.loads(run(config, "subscribers", "list", "--json", "--status", "active").stdout)
    assert data["counts"] == {"active": 2, "unsubscribed": 1, "bounced": 0, "complained": 0}
    assert [(s["email"], s["name"], s["status"]) for s in data["subscribers"]] == [
        ("ann@example.org", "ann", "active"),
        ("cy@example.org", "cy@", "active"),
    ]
    assert data["subscribers"][0]["created_at"].endswith("+00:00")
