"""One mailbox, one reader: address keys, migration 4 merging duplicates (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import cli
from digest.mail import importing, subscribers
from digest.mail.deliver import send_issue
from digest.store import Store, address_key
from digest.store.schema import MIGRATIONS, deliveries, issues
from digest.store.schema import subscribers as subscribers_table
from tests import configfile
from tests.smtpserver import LocalSMTPServer
from tests.test_deliver import config as smtp_config
from tests.test_schema import make_version_3

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Bob@Example.org", "bob@example.org"),
        ("BOB@example.ORG", "bob@example.org"),
        ("leser@Bücher.de", "leser@xn--bcher-kva.de"),
        ("a+Tag@x.org", "a+tag@x.org"),
    ],
)
def test_the_key_ignores_case_on_the_whole_address(raw: str, key: str) -> None:
    assert address_key(raw) == key
    assert address_key(subscribers.normalize_address(raw)) == key


def test_mixed_case_adds_imports_and_unsubscribes_are_one_reader(url: str) -> None:
    store = Store.open(url)
    try:
        bob, added = subscribers.add(store, "Bob@Example.org", "Bob", now=NOW)
        again, changed = subscribers.add(store, "bob@example.org", now=NOW)
        assert added and not changed and again.id == bob.id
        report = importing.import_csv(
            store,
            io.StringIO("email\nBOB@EXAMPLE.ORG\nann@example.org\nANN@example.org\n"),
            now=NOW,
        )
        assert (report.added, report.existing) == (1, 1)
        assert [line for line, _ in report.errors] == [4]  # ANN is ann, twice in the file
        assert [s.email for s in store.list_subscribers()] == ["Bob@example.org", "ann@example.org"]
        # An unsubscribe in any spelling stops all mail to the mailbox.
        assert subscribers.remove(store, "bOB@example.org", now=NOW) is not None
        assert [s.email for s in store.list_subscribers("active")] == ["ann@example.org"]
        # The index itself refuses a second spelling.
        with pytest.raises(sa.exc.IntegrityError), store.db.begin() as conn:
            conn.execute(
                subscribers_table.insert().values(
                    email="BoB@example.org",
                    email_key="bob@example.org",
                    name="",
                    status="active",
                    token="t" * 32,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    finally:
        store.close()


def _insert_old_reader(
    conn: sa.Connection, email: str, status: str, days_ago: int, name: str = ""
) -> int:
    conn.execute(
        sa.insert(sa.table("subscribers", *(sa.column(c) for c in _OLD_COLUMNS))).values(
            email=email,
            name=name,
            status=status,
            token=f"{email.replace('@', '_').replace('.', '_'):_<32}"[:32],
            created_at=(NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds"),
            updated_at=NOW.isoformat(timespec="microseconds"),
        )
    )
    found = conn.execute(sa.text("SELECT id FROM subscribers WHERE email = :e"), {"e": email})
    return int(found.scalar_one())


_OLD_COLUMNS = ("id", "email", "name", "status", "token", "created_at", "updated_at")


def _issue(store: Store, date: str) -> int:
    # Written as the code of schema 3 wrote it (no columns of later migrations).
    with store.db.begin() as conn:
        res = conn.execute(
            issues.insert().values(
                date=date, created_at=NOW, subject=f"Issue {date}", html="<p>news</p>",
                text="news\n", preheader="", article_ids="[]",
            )
        )  # fmt: skip
        return int(res.inserted_primary_key[0])  # type: ignore[index]


def _row(conn: sa.Connection, issue_id: int, sub_id: int, status: str, email: str) -> None:
    conn.execute(
        deliveries.insert().values(
            issue_id=issue_id,
            subscriber_id=sub_id,
            email=email,
            status=status,
            attempts=1 if status != "pending" else 0,
            message_id=f"<{issue_id}.{sub_id}@news.example.com>",
            updated_at=NOW,
        )
    )


def test_upgrading_merges_duplicates_keeping_the_strictest_status_and_the_ledger(
    url: str, tmp_path: Path
) -> None:
    make_version_3(url)  # a list kept by the code that compared local parts as written
    store = Store.open(url, migrate=False)
    first, second = _issue(store, "2026-11-23"), _issue(store, "2026-11-24")
    with store.db.begin() as conn:
        bob = _insert_old_reader(conn, "Bob@example.org", "active", 30)
        bob2 = _insert_old_reader(conn, "bob@example.org", "unsubscribed", 10, "Bob")
        bob3 = _insert_old_reader(conn, "BOB@example.org", "active", 5)
        dave = _insert_old_reader(conn, "dave@example.org", "active", 3, "Dave")
        dave2 = _insert_old_reader(conn, "Dave@example.org", "active", 20)
        carol = _insert_old_reader(conn, "carol@example.org", "active", 1, "Carol")
        _row(conn, first, bob, "sent", "Bob@example.org")
        _row(conn, first, bob2, "pending", "bob@example.org")
        _row(conn, second, bob3, "pending", "BOB@example.org")
        _row(conn, first, dave, "pending", "dave@example.org")  # one spelling got it,
        _row(conn, first, dave2, "sent", "Dave@example.org")  # the other still waits
        _row(conn, first, carol, "pending", "carol@example.org")
        tokens = {
            sub_id: token
            for sub_id, token in conn.execute(sa.text("SELECT id, token FROM subscribers")).all()
        }
    store.close()

    if url.startswith("sqlite"):
        config = configfile.write_config(tmp_path, store_url=url)
        result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
        assert result.exit_code == 0, result.output
        applied = ", ".join(str(v) for v in sorted(MIGRATIONS) if v > 3)
        assert f"(applied {applied})" in result.output
        out = result.stdout
    else:
        store = Store.open(url, migrate=False)
        assert store.migrate() == [v for v in sorted(MIGRATIONS) if v > 3]
        out = "\n".join(store.db.migration_notes)
        store.close()
    # It says what it merged: into the reader who signed up first, strictest status.
    assert (
        "merged bob@example.org, BOB@example.org into Bob@example.org (status unsubscribed)" in out
    )
    assert "merged dave@example.org into Dave@example.org (status active)" in out

    store = Store.open(url)
    try:
        listed = {s.email: s for s in store.list_subscribers()}
        assert sorted(listed) == ["Bob@example.org", "Dave@example.org", "carol@example.org"]
        merged_bob = listed["Bob@example.org"]
        assert (merged_bob.id, merged_bob.status, merged_bob.name) == (bob, "unsubscribed", "Bob")
        assert merged_bob.created_at == NOW - timedelta(days=30)
        merged_dave = listed["Dave@example.org"]
        assert (merged_dave.id, merged_dave.name) == (dave2, "Dave")
        assert merged_dave.created_at == NOW - timedelta(days=20)
        # Links in mail sent before the merge still find the reader.
        for old in (bob2, bob3):
            found = store.get_subscriber(token=tokens[old])
            assert found is not None and found.id == bob
        assert store.get_subscriber(token=tokens[dave]) == merged_dave
        # One ledger row per issue and reader: the one that went furthest.
        rows = {(d.subscriber_id, d.status) for d in store.ledger.list_deliveries(first)}
        assert rows == {(bob, "sent"), (dave2, "sent"), (carol, "pending")}
        assert [(d.subscriber_id, d.status) for d in store.ledger.list_deliveries(second)] == [
            (bob, "pending")
        ]
        # Every spelling now finds the one reader.
        assert subscribers.add(store, "DAVE@EXAMPLE.ORG", now=NOW)[0].id == dave2

        # The next send of the first issue: carol only; Dave already had it.
        issue = store.issue_for_date("2026-11-23")
        assert issue is not None
        with LocalSMTPServer() as server:
            report = send_issue(store, issue, smtp_config(tmp_path, server.port), now=NOW)
            assert server.handler.recipients() == ["carol@example.org"]
        assert (report.sent, report.already_sent) == (1, 2)
        second_issue = store.issue_for_date("2026-11-24")
        assert second_issue is not None
        with LocalSMTPServer() as server:
            report = send_issue(store, second_issue, smtp_config(tmp_path, server.port), now=NOW)
            # Bob left in one spelling: no spelling of him gets mail.
            assert sorted(server.handler.recipients()) == ["Dave@example.org", "carol@example.org"]
        assert report.skipped == 1
    finally:
        store.close()
