"""What many tests need, said once: a stored plain issue and readers to send it to."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from digest.models import TOKEN_PLACEHOLDER, Subscriber
from digest.store import Store, StoredIssue

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
DATE = "2026-11-25"
UNSUB = f"https://news.example.com/unsubscribe?token={TOKEN_PLACEHOLDER}"
READER = "reader{i}@example.org"


def stored_issue(
    store: Store,
    *,
    date: str = DATE,
    created_at: datetime | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
) -> StoredIssue:
    """Store a plain issue for `date`, composed at 07:00 UTC that day unless `created_at` says.

    Unless given, the subject names the date and both parts carry the unsubscribe link with
    the token placeholder, as a rendered issue does, so each copy sent names its reader.
    """
    return store.create_issue(
        date=date,
        created_at=created_at or _seven_utc(date),
        subject=f"The Daily Digest — {date}" if subject is None else subject,
        html=f'<p>News.</p><p><a href="{UNSUB}">Unsubscribe</a></p>' if html is None else html,
        text=f"News.\n\nUnsubscribe: {UNSUB}\n" if text is None else text,
        preheader="",
        article_ids=[],
    )


def _seven_utc(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(7, 0), tzinfo=UTC)


def add_readers(
    store: Store,
    n: int,
    *,
    start: int = 0,
    named: bool = False,
    now: datetime = NOW,
    address: str = READER,
) -> list[Subscriber]:
    """Add readers `start`…`start+n-1` one at a time, as `subscribers add` does; return them.

    `address` is a format string with `{i}`; `named` gives each a name ("Reader 3").
    """
    return [
        store.add_subscriber(address.format(i=i), f"Reader {i}" if named else "", now=now)[0]
        for i in range(start, start + n)
    ]


def import_readers(
    store: Store, n: int, *, named: bool = False, now: datetime = NOW, address: str = READER
) -> list[str]:
    """Add `n` active readers in one bulk import (sends to thousands); return their addresses."""
    emails = [address.format(i=i) for i in range(n)]
    store.import_subscribers(
        [(email, f"Reader {i}" if named else "", "active") for i, email in enumerate(emails)],
        now=now,
    )
    return emails
