"""The store on a real PostgreSQL server: the same behaviour as SQLite, schema checks, leases."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest import pipeline
from digest.config.load import load_config
from digest.errors import StoreError
from digest.mail.claims import Lease
from digest.mail.deliver import send_issue
from digest.store import Store
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION, schema_version
from tests.helpers import add_readers
from tests.httpserver import LocalHTTPServer
from tests.smtpserver import LocalSMTPServer
from tests.test_deliver import config as smtp_config
from tests.test_deliver import hostile_issue
from tests.test_pipeline import NOW, site  # noqa: F401  (the feeds fixture)


def run_pipeline(cfg_path: Path, url: str) -> tuple[list[tuple[str, int, int]], list[str], str]:
    """Collect, build and store an issue with the store at `url`; return what came out."""
    text = cfg_path.read_text(encoding="utf-8").replace(
        'url = "sqlite:///state.db"', f'url = "{url}"'
    )
    cfg_path.write_text(text, encoding="utf-8")
    config = load_config(cfg_path)
    store = Store.open(config.store.url)
    try:
        report = pipeline.collect_articles(config, store, now=NOW)
        again = pipeline.collect_articles(config, store, now=NOW + timedelta(minutes=5))
        counts = [
            (s.source, s.new_articles, a.new_articles)
            for s, a in zip(report.sources, again.sources, strict=True)
        ]
        stored = pipeline.ensure_issue(config, store, now=NOW)
        assert pipeline.ensure_issue(config, store, now=NOW).id == stored.id  # one per day
        states = store.source_states()
        assert states["City"].last_success is not None and states["City"].last_error is None
        counts.append(("Broken failures", states["Broken"].consecutive_failures, 0))
        titles = [a.title for a in store.articles_by_ids(stored.article_ids)]
        return counts, titles, stored.subject
    finally:
        store.close()


def test_the_pipeline_gives_the_same_issue_on_postgresql_as_on_sqlite(
    site: tuple[LocalHTTPServer, Path],  # noqa: F811
    tmp_path: Path,
    pg_url: str,
) -> None:
    _server, cfg_path = site
    original = cfg_path.read_text(encoding="utf-8")
    on_sqlite = run_pipeline(cfg_path, f"sqlite:///{tmp_path / 'state.db'}")
    cfg_path.write_text(original, encoding="utf-8")
    on_postgres = run_pipeline(cfg_path, pg_url)
    assert on_postgres == on_sqlite
    counts, titles, _subject = on_postgres
    assert ("City", 2, 0) in counts and ("Broken failures", 3, 0) in counts
    assert len(titles) == 3


def test_subscribers_and_the_ledger_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    store = Store.open(pg_url)
    add_readers(store, 12, named=True)
    added, existing = store.import_subscribers(
        [("reader3@example.org", "", "active"), ("new@example.org", "New", "active")], now=NOW
    )
    assert (added, existing) == (1, 1)
    store.set_subscriber_status(status="unsubscribed", email="reader0@example.org", now=NOW)
    issue = hostile_issue(store)
    with LocalSMTPServer() as server:
        server.handler.rcpt_replies["reader5@example.org"] = "550 5.1.1 no such user"
        report = send_issue(store, issue, smtp_config(tmp_path, server.port), now=NOW)
        assert (report.sent, report.failed, report.uncertain) == (11, 1, 0)
        again = send_issue(store, issue, smtp_config(tmp_path, server.port), now=NOW)
        assert (again.sent, again.already_sent) == (0, 11)
        received = Counter(server.handler.recipients())
    assert max(received.values()) == 1 and len(received) == 11
    assert "reader0@example.org" not in received
    bounced = store.get_subscriber(email="reader5@example.org")
    assert bounced is not None and bounced.status == "bounced"
    assert store.ledger.delivery_counts(issue.id) == {"sent": 11, "failed": 1}
    store.close()


def test_a_schema_newer_than_the_code_is_refused_on_postgresql(pg_url: str) -> None:
    store = Store.open(pg_url)
    assert store.version() == SCHEMA_VERSION
    with store.db.begin() as conn:
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 1, applied_at=NOW))
    store.close()
    with pytest.raises(StoreError, match=r"schema version \d+, newer than this digest knows"):
        Store.open(pg_url)


def test_processes_starting_together_on_an_empty_database_create_it_once(pg_url: str) -> None:
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(Store.open(pg_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 4
    with opened[0].db.begin() as conn:
        versions = conn.execute(sa.select(schema_version.c.version)).scalars().all()
    assert sorted(versions) == sorted(MIGRATIONS)  # each applied once (numbers may skip)
    for s in opened:
        s.close()


def test_leases_split_the_work_and_only_unsent_claims_are_taken_over(pg_url: str) -> None:
    store = Store.open(pg_url)
    subs = add_readers(store, 30, named=True)
    issue = hostile_issue(store)
    store.ledger.ensure_deliveries(issue.id, now=NOW)
    a = store.ledger.claim_batch(issue.id, worker="a", size=10, lease=60, now=NOW)
    b = store.ledger.claim_batch(issue.id, worker="b", size=10, lease=60, now=NOW)
    ids_a = {s.id for s in a}
    ids_b = {s.id for s in b}
    assert len(ids_a) == len(ids_b) == 10 and not ids_a & ids_b
    # Worker a hands one delivery to SMTP ("sending"), then dies: its lease runs out.
    first = min(i for i in ids_a if i is not None)
    assert store.ledger.claim_delivery(issue.id, first, message_id="<m@x>", now=NOW)
    later = NOW + timedelta(seconds=61)
    assert store.ledger.next_lease_expiry(issue.id, worker="c", now=NOW) == NOW + timedelta(
        seconds=60
    )
    assert (
        store.ledger.renew_claims(issue.id, worker="b", lease=60, now=later - timedelta(seconds=30))
        == 10
    )
    c = store.ledger.claim_batch(issue.id, worker="c", size=100, lease=60, now=later)
    ids_c = {s.id for s in c}
    # c gets a's nine unsent rows and the ten nobody held, never b's renewed ones nor the
    # one a may have sent (it stays "sending": uncertain, not resent).
    assert ids_c == (ids_a - {first}) | ({s.id for s in subs} - ids_a - ids_b)
    assert store.ledger.claims(issue.id) == {"a": 1, "b": 10, "c": 19}
    # a's lease ran out: only b (renewed) and c hold live claims.
    assert store.ledger.live_leases(issue.id, now=later) == {
        "b": (10, later + timedelta(seconds=30)),
        "c": (19, later + timedelta(seconds=60)),
    }
    assert store.ledger.release_claims(issue.id, worker="c") == 19
    assert len(store.ledger.claim_batch(issue.id, worker="d", size=100, lease=60, now=later)) == 19
    store.close()


def test_a_lease_send_and_a_plain_send_of_one_issue_never_duplicate(
    pg_url: str, tmp_path: Path
) -> None:
    store = Store.open(pg_url)
    add_readers(store, 40, named=True)
    issue = hostile_issue(store)
    with LocalSMTPServer() as server:
        cfg = smtp_config(tmp_path, server.port)
        reports = []
        threads = [
            threading.Thread(
                target=lambda w=w: reports.append(
                    send_issue(store, issue, cfg, now=NOW, lease=Lease(worker=w, batch=3))
                )
            )
            for w in ("one", "two")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        received = Counter(server.handler.recipients())
    assert received == Counter(f"reader{i}@example.org" for i in range(40))
    assert sum(r.sent for r in reports) == 40
    assert set(store.ledger.claims(issue.id)) == {"one", "two"}
    store.close()
