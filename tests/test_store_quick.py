"""The quick read of the subscriber list (sqlite3, no SQLAlchemy) agrees with the Store.

`digest subscribers list` answers from `digest.store.quick` on an up-to-date SQLite
store; anywhere that path cannot be sure, it must step aside for the full Store.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.store import Store, quick
from digest.store.schema import MIGRATIONS
from tests import configfile

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 29, 7, 30, 15, 123456, tzinfo=UTC)


def fill(store: Store) -> None:
    ann, _ = store.add_subscriber("ann@example.org", "Ann Ö", now=NOW)
    bob, _ = store.add_subscriber("bob@example.org", now=NOW + timedelta(minutes=1))
    store.add_subscriber("cy@example.org", "Cy", now=NOW + timedelta(minutes=2))
    assert ann.id is not None
    store.set_preferences(
        ann.id, now=NOW, timezone="Europe/Berlin", send_at="06:30", sections=("World", "Tech")
    )
    store.set_subscriber_status(
        email=bob.email, status="unsubscribed", now=NOW + timedelta(hours=1)
    )


def test_the_quick_read_returns_what_the_store_returns(store: Store, tmp_path: Path) -> None:
    fill(store)
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    for status in (None, "active", "unsubscribed", "bounced"):
        got = quick.subscribers_and_counts(url, status)
        assert got is not None, status
        assert got == (store.list_subscribers(status), store.subscriber_counts()), status
    subs, counts = quick.subscribers_and_counts(url) or ([], {})
    assert counts == {"active": 2, "unsubscribed": 1}
    assert subs[0].sections == ("Tech", "World") and subs[0].created_at == NOW


def test_it_steps_aside_where_it_cannot_be_sure(store: Store, tmp_path: Path) -> None:
    fill(store)
    missing = tmp_path / "elsewhere.db"
    assert quick.subscribers_and_counts(f"sqlite:///{missing}") is None
    assert not missing.exists()  # never creates a database
    assert quick.subscribers_and_counts("postgresql://u@127.0.0.1/digest") is None
    assert quick.subscribers_and_counts("sqlite:///:memory:") is None
    (tmp_path / "junk.db").write_text("not a database")
    assert quick.subscribers_and_counts(f"sqlite:///{tmp_path / 'junk.db'}") is None
    # A schema one migration behind (or ahead) is the full Store's to refuse.
    path = tmp_path / "digest.db"
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_version WHERE version = ?", (max(MIGRATIONS),))
    assert quick.subscribers_and_counts(f"sqlite:///{path}") is None


def test_subscribers_list_answers_without_loading_sqlalchemy(tmp_path: Path) -> None:
    config = configfile.write_config(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        fill(store)
    finally:
        store.close()
    code = (
        "import sys\n"
        "from digest.cli import cli\n"
        "try:\n"
        f"    cli(['--config', {str(config)!r}, 'subscribers', 'list'], prog_name='digest')\n"
        "finally:\n"
        "    print('sqlalchemy' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "ann@example.org\tAnn Ö\tactive\tEurope/Berlin\t06:30\tTech,World",
        "bob@example.org\t\tunsubscribed\t-\t-\t-",
        "cy@example.org\tCy\tactive\t-\t-\t-",
    ]
    assert out.stderr.splitlines()[-2:] == [
        "active 2, unsubscribed 1, bounced 0, complained 0",
        "False",
    ]
