"""Read the subscriber list from an SQLite store without loading SQLAlchemy.

Importing SQLAlchemy costs 0.2-0.3 s, more than everything else `digest subscribers
list` does; sqlite3 is in the standard library and opens a file in a millisecond.
This path only ever reads, and only a database that exists and is at exactly this
code's schema: anything else (PostgreSQL, a missing file, an old or new schema, any
sqlite3 error) returns None and the caller opens the full `Store`, which creates,
refuses or explains as it always does.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from digest.models import Subscriber
from digest.store.rows import subscriber_from_row

# Every migration this code knows. `digest.store.schema` refuses to import unless its
# MIGRATIONS are exactly these, so the two cannot drift apart.
KNOWN_MIGRATIONS = frozenset({1, 2, 3, 4, 5, 7, 8, 9})

_DATETIMES = ("created_at", "updated_at", "confirm_sent_at", "confirm_expires")


def sqlite_file(url: str) -> str | None:
    """Return the file of an `sqlite:///path` URL, or None for any other kind of URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return path if path and path != ":memory:" else None


def _connect(url: str) -> sqlite3.Connection | None:
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        # mode=rw: never create a file (the full Store decides where a new one goes).
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30, isolation_level=None)
    except sqlite3.Error:
        return None
    conn.row_factory = sqlite3.Row
    try:
        versions = {int(v) for (v,) in conn.execute("SELECT version FROM schema_version")}
    except sqlite3.Error:
        versions = set()
    if versions != KNOWN_MIGRATIONS:
        conn.close()
        return None
    return conn


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(zip(row.keys(), row, strict=True))
    for name in _DATETIMES:  # as digest.store.schema.UTCDateTime writes them
        if out.get(name) is not None:
            out[name] = datetime.fromisoformat(out[name]).astimezone(UTC)
    return out


def subscribers_and_counts(
    url: str, status: str | None = None
) -> tuple[list[Subscriber], dict[str, int]] | None:
    """Return the subscribers (of one status, oldest first) and the count per status,
    or None when this path cannot answer (see the module docstring)."""
    conn = _connect(url)
    if conn is None:
        return None
    try:
        conn.execute("BEGIN")  # one read transaction: the list and the counts agree
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = conn.execute(f"SELECT * FROM subscribers {where} ORDER BY id", args)
        subs = [subscriber_from_row(_decoded(r)) for r in rows]
        counts = {
            str(s): int(n)
            for s, n in conn.execute("SELECT status, count(*) FROM subscribers GROUP BY status")
        }
    except (sqlite3.Error, ValueError):
        return None
    finally:
        conn.close()
    return subs, counts
