"""The database: articles, per-source state, issues and subscribers.

SQLAlchemy Core over SQLite by default, so a PostgreSQL URL works the same way.
The tables and their numbered migrations live in `digest.store.schema`, the delivery
ledger's queries in `digest.store.ledger`; `Store` gathers them behind one object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from digest.errors import StoreError
from digest.models import Article, RenderedIssue, Subscriber
from digest.store.ledger import Ledger, LedgerWriter
from digest.store.readers import Confirmation, Readers, StoredVariant, sections_key
from digest.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Database,
    UTCDateTime,
    articles,
    deliveries,
    from_row,
    issues,
    metadata,
    schema_version,
    sources,
    subscriber_from_row,
    subscribers,
)
from digest.tokens import new_token

# Re-exported: callers import these from digest.store.
__all__ = [
    "MIGRATIONS",
    "Confirmation",
    "StoredVariant",
    "sections_key",
    "SCHEMA_VERSION",
    "LedgerWriter",
    "SourceState",
    "Store",
    "StoredIssue",
    "UTCDateTime",
    "articles",
    "deliveries",
    "issues",
    "metadata",
    "sources",
    "subscribers",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceState:
    """What the store remembers about a source between runs."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class StoredIssue:
    """A frozen, stored issue: exactly what was (or will be) sent."""

    id: int
    date: str
    created_at: datetime
    subject: str
    html: str
    text: str
    preheader: str
    article_ids: tuple[int, ...]

    def rendered(self) -> RenderedIssue:
        """Return the stored issue as the renderer gave it (for building messages)."""
        return RenderedIssue(
            date=self.date,
            subject=self.subject,
            html=self.html,
            text=self.text,
            preheader=self.preheader,
        )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (digest status, digest serve) work while a send writes;
    # busy_timeout makes concurrent writers wait instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store(Readers):
    """All database access; hand it an engine (tests use a temp SQLite file).

    A façade over its parts: `db` (the engine, transactions and migrations) and
    `ledger` (the delivery ledger). Articles, issues, sources and subscribers are
    its own methods; the named locks in `digest.store.locks` take a `Store`.
    """

    def __init__(self, engine: Engine) -> None:
        self.db = Database(engine)
        self.ledger = Ledger(self.db)

    @property
    def shared(self) -> bool:
        """Return True on a server database (PostgreSQL) that many processes can share."""
        return self.db.shared

    def close(self) -> None:
        """Release the connection pool."""
        self.db.close()

    def version(self) -> int:
        """Return the schema version of the database (0 when empty)."""
        return self.db.version()

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; return the versions applied."""
        return self.db.migrate()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the store at a SQLAlchemy URL, creating an empty database (unless told not to).

        Raises StoreError when the schema is older or newer than this code's
        (`digest db upgrade` brings an older one up to date).
        """
        try:
            engine = sa.create_engine(url)
        except Exception as exc:  # bad URL or missing driver
            raise StoreError(f"cannot open store {url!r}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            try:
                if store.version() == 0:
                    store.migrate()
                store.db.check_schema()
            except BaseException:
                store.close()
                raise
        return store

    def job_run_times(self, table_name: str) -> dict[str, datetime]:
        """Return each job's next run time from APScheduler's job table (UTC)."""
        with self.db.begin() as conn:
            if not sa.inspect(conn).has_table(table_name):
                return {}
            table = sa.table(table_name, sa.column("id"), sa.column("next_run_time"))
            rows = conn.execute(sa.select(table.c.id, table.c.next_run_time)).all()
        return {
            str(job_id): datetime.fromtimestamp(float(ts), tz=UTC)
            for job_id, ts in rows
            if ts is not None
        }

    def check_writable(self) -> None:
        """Fail with a clear StoreError unless the database accepts writes."""
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    sa.update(schema_version)
                    .where(schema_version.c.version == -1)
                    .values(applied_at=_now())
                )
                if self.db.engine.dialect.name == "sqlite":
                    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _w(x)")
                    conn.exec_driver_sql("DROP TABLE IF EXISTS main._digest_write_probe")
                    conn.exec_driver_sql("CREATE TABLE main._digest_write_probe(x)")
                    conn.exec_driver_sql("DROP TABLE main._digest_write_probe")
        except sa.exc.DBAPIError as exc:  # PostgreSQL says "read-only" as an InternalError
            raise StoreError(
                f"the store {self.db.where} is not writable ({exc.orig}); "
                "check the file and folder permissions and free disk space"
            ) from None

    # -- sources --------------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        """Return the remembered state of every source, by name."""
        with self.db.begin() as conn:
            rows = conn.execute(sa.select(sources)).mappings().all()
        return {
            r["name"]: from_row(SourceState, r, consecutive_failures=r["consecutive_failures"] or 0)
            for r in rows
        }

    def record_source_result(
        self,
        name: str,
        url: str,
        *,
        now: datetime,
        error: str | None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> SourceState:
        """Remember how a source fared: validators on success, failure streak on error."""
        with self.db.begin() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).mappings().first()
            if row is None:
                conn.execute(sources.insert().values(name=name, url=url, consecutive_failures=0))
                row = conn.execute(sources.select().where(sources.c.name == name)).mappings().one()
            values: dict[str, Any] = {"url": url, "last_run": now}
            if error is None:
                values.update(
                    last_success=now,
                    last_error=None,
                    failing_since=None,
                    consecutive_failures=0,
                )
                if etag is not None or last_modified is not None:
                    values.update(etag=etag, last_modified=last_modified)
            else:
                values.update(
                    last_error=error,
                    failing_since=row["failing_since"] or now,
                    consecutive_failures=(row["consecutive_failures"] or 0) + 1,
                )
            conn.execute(sources.update().where(sources.c.name == name).values(**values))
        return self.source_states()[name]

    # -- articles -------------------------------------------------------------

    def seen_keys(self) -> tuple[set[str], set[str], set[str]]:
        """Return the guids, canonical URLs and title keys already stored (for dedup)."""
        with self.db.begin() as conn:
            rows = conn.execute(sa.select(articles.c.guid, articles.c.url, articles.c.title_key))
            guids, urls, titles = set(), set(), set()
            for guid, url, title_key in rows:
                guids.add(guid)
                urls.add(url)
                if title_key:
                    titles.add(title_key)
        return guids, urls, titles

    def add_articles(self, items: Iterable[tuple[Article, str]]) -> list[Article]:
        """Insert (article, title_key) pairs, skipping duplicates; return those inserted."""
        added: list[Article] = []
        with self.db.begin() as conn:
            for art, key in items:
                exists = conn.execute(
                    sa.select(articles.c.id).where(
                        (articles.c.guid == art.guid) | (articles.c.url == art.url)
                    )
                ).first()
                if exists is not None:
                    continue
                res = conn.execute(
                    articles.insert().values(
                        source=art.source,
                        guid=art.guid,
                        url=art.url,
                        title=art.title,
                        title_key=key,
                        text=art.text,
                        feed_summary=art.feed_summary,
                        published=art.published,
                        first_seen=art.first_seen or _now(),
                        author=art.author,
                        image=art.image,
                        language=art.language,
                    )
                )
                pk = res.inserted_primary_key
                added.append(_replace_id(art, int(pk[0]) if pk else None))
        return added

    def unissued_articles(self, since: datetime) -> list[Article]:
        """Return articles in no issue yet, published (or first seen if undated) since `since`."""
        when = sa.func.coalesce(articles.c.published, articles.c.first_seen, type_=UTCDateTime)
        with self.db.begin() as conn:
            rows = (
                conn.execute(
                    sa.select(articles)
                    .where(articles.c.issue_id.is_(None))
                    .where(when >= since)
                    .order_by(when.desc(), articles.c.id)
                )
                .mappings()
                .all()
            )
        return [_article(r) for r in rows]

    def articles_by_ids(self, ids: Sequence[int]) -> list[Article]:
        """Return the stored articles with these ids, in the given order."""
        with self.db.begin() as conn:
            rows = conn.execute(sa.select(articles).where(articles.c.id.in_(ids))).mappings().all()
        by_id = {r["id"]: _article(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    # -- issues ---------------------------------------------------------------

    def last_issue(self) -> StoredIssue | None:
        """Return the most recent issue, if any."""
        with self.db.begin() as conn:
            row = (
                conn.execute(sa.select(issues).order_by(issues.c.created_at.desc()).limit(1))
                .mappings()
                .first()
            )
        return _issue(row) if row else None

    def issue_for_date(self, date: str) -> StoredIssue | None:
        """Return the issue of a given ISO date, if it was created."""
        with self.db.begin() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.date == date)).mappings().first()
        return _issue(row) if row else None

    def list_issues(self, limit: int = 30) -> list[StoredIssue]:
        """Return the latest issues, newest first."""
        with self.db.begin() as conn:
            rows = (
                conn.execute(sa.select(issues).order_by(issues.c.date.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [_issue(r) for r in rows]

    def create_issue(
        self,
        *,
        date: str,
        created_at: datetime,
        subject: str,
        html: str,
        text: str,
        preheader: str,
        article_ids: Sequence[int],
    ) -> StoredIssue:
        """Freeze an issue and claim its articles, or return the one already stored that day."""
        try:
            with self.db.begin() as conn:
                res = conn.execute(
                    issues.insert().values(
                        date=date,
                        created_at=created_at,
                        subject=subject,
                        html=html,
                        text=text,
                        preheader=preheader,
                        article_ids=json.dumps(list(article_ids)),
                    )
                )
                issue_id = int(res.inserted_primary_key[0])  # type: ignore[index]
                conn.execute(
                    articles.update()
                    .where(articles.c.id.in_(list(article_ids)))
                    .values(issue_id=issue_id)
                )
        except sa.exc.IntegrityError:
            pass  # another process created today's issue first: use theirs
        issue = self.issue_for_date(date)
        assert issue is not None
        return issue

    # -- subscribers ----------------------------------------------------------

    def add_subscriber(
        self, email: str, name: str = "", *, now: datetime
    ) -> tuple[Subscriber, bool]:
        """Add an active subscriber (or reactivate one); return it and whether it changed."""
        with self.db.begin() as conn:
            row = (
                conn.execute(sa.select(subscribers).where(subscribers.c.email == email))
                .mappings()
                .first()
            )
            if row is None:
                conn.execute(
                    subscribers.insert().values(
                        email=email,
                        name=name,
                        status="active",
                        token=new_token(),
                        created_at=now,
                        updated_at=now,
                    )
                )
                changed = True
            else:
                values: dict[str, Any] = {}
                if row["status"] != "active":
                    values["status"] = "active"
                if name and name != row["name"]:
                    values["name"] = name
                if values:
                    values["updated_at"] = now
                    conn.execute(
                        subscribers.update().where(subscribers.c.id == row["id"]).values(**values)
                    )
                changed = bool(values)
            out = (
                conn.execute(sa.select(subscribers).where(subscribers.c.email == email))
                .mappings()
                .one()
            )
        return subscriber_from_row(out), changed

    def set_subscriber_status(
        self, *, status: str, now: datetime, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Change a subscriber's status by address or token; None when unknown."""
        cond = subscribers.c.email == email if email is not None else subscribers.c.token == token
        with self.db.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().first()
            if row is None:
                return None
            if row["status"] != status:
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id == row["id"])
                    .values(status=status, updated_at=now)
                )
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().one()
        return subscriber_from_row(row)

    def get_subscriber(
        self, *, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Return one subscriber by address or token."""
        cond = subscribers.c.email == email if email is not None else subscribers.c.token == token
        with self.db.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().first()
        return subscriber_from_row(row) if row else None

    def list_subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Return subscribers (optionally of one status), oldest first."""
        q = sa.select(subscribers).order_by(subscribers.c.id)
        if status:
            q = q.where(subscribers.c.status == status)
        with self.db.begin() as conn:
            rows = conn.execute(q).mappings().all()
        return [subscriber_from_row(r) for r in rows]

    def import_subscribers(
        self, rows: Sequence[tuple[str, str, str]], *, now: datetime
    ) -> tuple[int, int]:
        """Insert new (email, name, status) rows in one transaction; return (added, existing)."""
        added = existing = 0
        with self.db.begin() as conn:
            known: set[str] = set()
            emails = [r[0] for r in rows]
            for i in range(0, len(emails), 500):
                chunk = emails[i : i + 500]
                known.update(
                    conn.execute(
                        sa.select(subscribers.c.email).where(subscribers.c.email.in_(chunk))
                    ).scalars()
                )
            new = []
            for email, name, status in rows:
                if email in known:
                    existing += 1
                    continue
                known.add(email)
                new.append(
                    {
                        "email": email,
                        "name": name,
                        "status": status,
                        "token": new_token(),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            if new:
                conn.execute(subscribers.insert(), new)
            added = len(new)
        return added, existing


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _replace_id(art: Article, pk: int | None) -> Article:
    from dataclasses import replace

    return replace(art, id=pk)


def _article(r: Any) -> Article:
    return from_row(Article, r)


def _issue(r: Any) -> StoredIssue:
    return from_row(StoredIssue, r, article_ids=tuple(json.loads(r["article_ids"])))
